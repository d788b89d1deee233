//! The service layer: what every front end (the native routes and the
//! compat profile) calls, so that each decision is made in one place.
//! It knows requests only as headers, a peer address and a URL; it knows
//! nothing of routers or extractors.

pub mod policy;

pub use policy::{Access, Policy};
