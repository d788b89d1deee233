//! imaginator: a fast, safe HTTP interface to ImageMagick.

pub mod config;
pub mod pipeline;
