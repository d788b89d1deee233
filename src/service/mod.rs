//! The service layer: what every front end (the native routes and the
//! compat profile) calls, so that each decision is made in one place: who
//! may do what (`policy`), and the shared state with the one job runner
//! (`state`: sources by content, prechecks, admission, the quarantine, the
//! worker pool, deadlines and timing). It knows requests only as headers, a
//! peer address and a URL; it knows nothing of routers or extractors.

pub mod delivery;
pub mod policy;
mod state;
pub mod timing;

pub use policy::{Access, Policy};
pub use state::{AppState, BoundPlan, BoundPlans, ChainPlans, CompiledChain, NamedSource, Shared, execute};
