//! jemalloc is the allocator of the whole process: Rust through
//! `#[global_allocator]`, and C (ImageMagick, libjpeg, libpng, ...) because the
//! `unprefixed_malloc_on_supported_platforms` feature makes jemalloc export
//! `malloc`/`free` themselves. One allocator means one set of statistics and
//! heap profiles that include ImageMagick.

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
