//! The compat profile: a drop-in replacement for imaginator 2018. A YAML
//! config file (`--config imaginator.yml`) in the original's schema turns it
//! on; every URL the original accepted is then read with its grammar
//! (`grammar`), its aliases are expanded its way (`expand`), its filters
//! are lowered to native plans with the original's dialect (`lower`), which
//! run as every plan runs, and its caches,
//! signatures, status codes and filter log header behave as they did
//! (`http`). Our own limits, deadlines, pool, address rules and metrics
//! stay in force underneath. `migrate` writes the native configuration.

pub mod config;
pub mod expand;
pub mod grammar;
pub mod http;
pub mod lower;
pub mod migrate;

pub use config::Compat;
