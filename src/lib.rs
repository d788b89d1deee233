//! imaginator: a fast, safe HTTP interface to ImageMagick.

pub mod app;
pub mod cache;
pub mod compat;
pub mod config;
pub mod crash;
pub mod error;
pub mod fast;
pub mod fetch;
pub mod http;
pub mod inflight;
pub mod load;
pub mod magick;
pub mod memory;
pub mod metrics;
pub mod pipeline;
pub mod render;
pub mod server;
pub mod service;
pub mod signature;
pub mod storage;
pub mod telemetry;

pub use app::App;
pub use config::Settings;
