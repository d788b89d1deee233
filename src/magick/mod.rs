//! The only module that touches ImageMagick: process-wide set-up and limits,
//! the worker pool, and applying a `pipeline::Plan` to an image.

mod animation;
mod apply;
mod error;
mod estimate;
mod info;
mod job;
mod options;
mod original;
pub mod policy;
mod smart;
mod wand;

pub use error::JobError;
pub use info::{ImageInfo, info};
pub use original::knows_composite;

/// The pixel cache an animation of `frames` frames of `canvas` needs when its
/// steps make `output`-sized frames (admission checks it before queueing).
pub fn animation_need(
    frames: usize,
    canvas: crate::pipeline::ops::Size,
    output: crate::pipeline::ops::Size,
    format: crate::pipeline::format::ImageFormat,
) -> u64 {
    animation::need(frames, canvas, output, format)
}
pub use animation::check_cost as check_animation_cost;
pub use estimate::check_plan_cost;
pub use job::{Probe, probe, resolve_dpr, run, validate};

/// The ICC profiles `profile(src,dst)` offers, compiled in (see `profiles/README.md`).
mod profiles {
    use crate::pipeline::ops::IccProfile;

    pub fn icc(profile: IccProfile) -> &'static [u8] {
        match profile {
            IccProfile::Srgb => include_bytes!("profiles/sRGB.icc"),
            IccProfile::Fogra39 => include_bytes!("profiles/FOGRA39L.icc"),
        }
    }
}

use crate::config::Limits;
use magick_rust::bindings as im;
use std::ffi::CStr;
use std::sync::Once;

static GENESIS: Once = Once::new();

/// Largest width or height ImageMagick itself will accept: a process-wide
/// backstop behind the per-request checks (`limits.max_width` and friends are
/// enforced on the header before ImageMagick sees the image).
const HARD_MAX_SIDE: u64 = 65_535;

/// Starts ImageMagick, installs the security policy and applies the
/// process-wide resource limits, once per process (the first settings win; a
/// process runs one service). ImageMagick's own thread count is pinned to 1:
/// concurrency comes from our pool, and nested OpenMP threads would
/// oversubscribe the cores. A policy that is refused or not in force is an
/// error: the service must not start without it.
pub fn init(limits: &Limits) -> Result<(), String> {
    GENESIS.call_once(magick_rust::magick_wand_genesis);
    static INIT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    INIT.get_or_init(|| {
        policy::install(policy::POLICY)?;
        tracing::info!("ImageMagick security policy in force: only JPEG, PNG, GIF, WebP, TIFF, HEIC/AVIF coders");
        let set = |resource: im::ResourceType, value: u64| {
            // SAFETY: after genesis; setting a resource limit has no other precondition.
            unsafe { im::SetMagickResourceLimit(resource, value as im::MagickSizeType) };
        };
        set(im::ResourceType::Thread, 1);
        set(im::ResourceType::Width, HARD_MAX_SIDE);
        set(im::ResourceType::Height, HARD_MAX_SIDE);
        // ImageMagick refuses a list whose length reaches its limit; ours
        // admits `max_frames` frames, so its limit is one more.
        set(im::ResourceType::ListLength, u64::from(limits.max_frames) + 1);
        set(im::ResourceType::Memory, limits.magick_memory.0);
        set(im::ResourceType::Map, limits.magick_map.0);
        set(im::ResourceType::Disk, limits.magick_disk.0);
        // ImageMagick 7 puts a pixel cache in memory, else in a disk file
        // (memory-mapped when the map limit allows): `map` is no third pool.
        crate::render::budget::set(limits.magick_memory.0 + limits.magick_disk.0);
        Ok(())
    })
    .clone()
}

/// ImageMagick's version line, e.g. `ImageMagick 7.1.1-43 Q16 x86_64 ...`.
pub fn version() -> String {
    let mut number = 0usize;
    // SAFETY: returns a static string owned by ImageMagick.
    unsafe {
        let text = im::MagickGetVersion(&mut number);
        if text.is_null() {
            String::new()
        } else {
            CStr::from_ptr(text).to_string_lossy().into_owned()
        }
    }
}

/// ImageMagick's own accounting of what it holds now (bytes; area in pixels).
pub fn resources() -> crate::memory::report::ImageMagickMemory {
    // SAFETY: reading resource counters has no precondition beyond genesis.
    let get = |r: im::ResourceType| unsafe { im::GetMagickResource(r) };
    crate::memory::report::ImageMagickMemory {
        memory: get(im::ResourceType::Memory),
        map: get(im::ResourceType::Map),
        disk: get(im::ResourceType::Disk),
        area: get(im::ResourceType::Area),
        reserved: crate::render::budget::get().map_or(0, |b| b.in_use()),
    }
}

/// Whether memory ImageMagick allocates (`AcquireMagickMemory`, its malloc)
/// is counted by jemalloc.
pub fn allocations_tracked() -> bool {
    GENESIS.call_once(magick_rust::magick_wand_genesis);
    crate::memory::allocation_is_tracked(
        // SAFETY: a block from ImageMagick's allocator, released by its own free.
        |n| unsafe { im::AcquireMagickMemory(n) as *mut u8 },
        |p| unsafe {
            im::RelinquishMagickMemory(p as *mut std::ffi::c_void);
        },
    )
}

/// ImageMagick's resource limits as it reports them (bytes; width/height in pixels).
pub fn resource_limits() -> serde_json::Value {
    // SAFETY: reading resource limits has no precondition beyond genesis.
    let get = |r: im::ResourceType| unsafe { im::GetMagickResourceLimit(r) };
    serde_json::json!({
        "thread": get(im::ResourceType::Thread),
        "width": get(im::ResourceType::Width),
        "height": get(im::ResourceType::Height),
        "memory": get(im::ResourceType::Memory),
        "map": get(im::ResourceType::Map),
        "disk": get(im::ResourceType::Disk),
        "list_length": get(im::ResourceType::ListLength),
    })
}
