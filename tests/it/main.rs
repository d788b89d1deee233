//! The end-to-end tests in one test binary: each binary links the whole
//! crate (ImageMagick's bindings included), so thirty of them cost the
//! test build most of its time. Tests that need a process of their own
//! (a process-wide pixel budget, heap measurements) are `tests/budget.rs`
//! and `tests/memory.rs`.

#[path = "../common/mod.rs"]
mod common;

mod access;
mod animation;
mod chain;
mod cli;
mod colour;
mod compat;
mod corpus;
mod crash;
mod delivery;
mod dpr;
mod encoders;
mod fast_path;
mod fuzz_regressions;
mod hostile;
mod info;
mod layers;
mod load;
mod ops_reference;
mod quarantine;
mod readme;
mod release;
mod replicas;
mod s3;
mod security;
mod service;
mod smart_crop;
mod sources;
mod storage;
mod transform;
mod ui;
