//! jemalloc heap profiles: switch sampling on and off, dump a profile to a
//! private temporary file (never a path from a request), and turn it into
//! pprof, a flame graph, or collapsed stacks; and the growth between two.
//!
//! What the service renders leaves out the allocator's own frames (jemalloc's
//! profiler and internals, the global-allocator shims at the leaf of every
//! sampled stack), and symbolisation gives its caches back after each render
//! (`render_done`): the diagnostics must not leave heap behind that the
//! growth verdict would then call a leak.

use pprof_util::{Mapping, StackProfile, WeightedStack, parse_jeheap};
use std::collections::HashMap;
use std::ffi::CString;
use std::path::PathBuf;
use tikv_jemalloc_ctl::raw;

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("heap profiling is not enabled in this process (MALLOC_CONF has prof:false)")]
    Disabled,
    #[error("jemalloc refused `{0}`: {1}")]
    Ctl(&'static str, tikv_jemalloc_ctl::Error),
    #[error("cannot write or read the profile: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot parse the profile: {0}")]
    Parse(String),
}

/// Whether profiling was compiled in and enabled at start (`opt.prof`).
pub fn enabled() -> bool {
    // SAFETY: `opt.prof` is a bool.
    unsafe { raw::read::<bool>(b"opt.prof\0") }.unwrap_or(false)
}

/// Whether allocations are being sampled now (`prof.active`).
pub fn active() -> bool {
    // SAFETY: `prof.active` is a bool.
    unsafe { raw::read::<bool>(b"prof.active\0") }.unwrap_or(false)
}

pub fn set_active(on: bool) -> Result<(), ProfileError> {
    if !enabled() {
        return Err(ProfileError::Disabled);
    }
    // SAFETY: `prof.active` is a writable bool.
    unsafe { raw::write(b"prof.active\0", on) }.map_err(|e| ProfileError::Ctl("prof.active", e))
}

/// Average bytes between samples (2^`opt.lg_prof_sample`).
pub fn sample_bytes() -> u64 {
    // SAFETY: `opt.lg_prof_sample` is a size_t.
    unsafe { raw::read::<usize>(b"opt.lg_prof_sample\0") }.map_or(0, |lg| 1u64 << lg)
}

/// Dumps the current heap profile (jemalloc's `heap_v2` text format) through
/// a file in a fresh private directory, which is removed afterwards.
/// Blocking.
pub fn dump() -> Result<Vec<u8>, ProfileError> {
    if !enabled() {
        return Err(ProfileError::Disabled);
    }
    let dir = tempfile::Builder::new().prefix("imaginator-prof-").tempdir()?;
    let path: PathBuf = dir.path().join("heap.prof");
    let c_path = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| ProfileError::Parse(e.to_string()))?;
    // SAFETY: `prof.dump` takes a NUL-terminated path that outlives the call.
    unsafe { raw::write(b"prof.dump\0", c_path.as_ptr()) }.map_err(|e| ProfileError::Ctl("prof.dump", e))?;
    let bytes = std::fs::read(&path)?;
    drop(dir);
    Ok(bytes)
}

/// Executable file-backed mappings of this process, for symbolization.
fn mappings() -> Vec<Mapping> {
    let text = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let range = f.next()?;
            let perms = f.next()?;
            let offset = usize::from_str_radix(f.next()?, 16).ok()?;
            let path = f.nth(2)?;
            if !perms.contains('x') || !path.starts_with('/') {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            Some(Mapping {
                memory_start: usize::from_str_radix(start, 16).ok()?,
                memory_end: usize::from_str_radix(end, 16).ok()?,
                memory_offset: offset,
                file_offset: offset as u64,
                pathname: PathBuf::from(path),
                build_id: None,
            })
        })
        .collect()
}

pub fn parse(raw: &[u8]) -> Result<StackProfile, ProfileError> {
    let maps = mappings();
    parse_jeheap(raw, Some(&maps)).map_err(|e| ProfileError::Parse(e.to_string()))
}

/// gzip-compressed pprof protobuf, symbolized in-process.
pub fn to_pprof(profile: &StackProfile) -> Vec<u8> {
    profile.to_pprof(("inuse_space", "bytes"), ("space", "bytes"), None)
}

/// A flame graph (SVG) of `profile`.
pub fn to_flamegraph(profile: &StackProfile, title: &str) -> Result<Vec<u8>, ProfileError> {
    if profile.stacks.is_empty() {
        // The flame graph renderer refuses empty input; say so in a picture.
        return Ok(format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"800\" height=\"60\"><text x=\"10\" y=\"30\">{title}: no allocation sampled (sampling every {} KiB on average)</text></svg>\n",
            sample_bytes() / 1024
        )
        .into_bytes());
    }
    let mut options = pprof_util::FlamegraphOptions::default();
    options.title = title.to_string();
    options.count_name = "bytes".to_string();
    profile
        .to_flamegraph(&mut options)
        .map_err(|e| ProfileError::Parse(e.to_string()))
}

/// Stacks that hold more in `after` than in `before`, weighted by the growth.
pub fn growth(before: &StackProfile, after: &StackProfile) -> StackProfile {
    let mut base: HashMap<&[usize], f64> = HashMap::new();
    for (stack, _) in before.iter() {
        *base.entry(stack.addrs.as_slice()).or_default() += stack.weight;
    }
    let mut grown: HashMap<&[usize], f64> = HashMap::new();
    for (stack, _) in after.iter() {
        *grown.entry(stack.addrs.as_slice()).or_default() += stack.weight;
    }
    let mut out = StackProfile::default();
    let mut entries: Vec<(&[usize], f64)> = grown
        .into_iter()
        .map(|(addrs, w)| (addrs, w - base.get(addrs).copied().unwrap_or(0.0)))
        .filter(|(_, delta)| *delta >= 1.0)
        .collect();
    entries.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (addrs, delta) in entries {
        out.push_stack(
            WeightedStack {
                addrs: addrs.to_vec(),
                weight: delta,
            },
            None,
        );
    }
    for m in &after.mappings {
        out.push_mapping(m.clone());
    }
    out
}

/// Collapsed stacks (`root;caller;callee bytes`, one line a stack, largest
/// first), the input format of most flame graph tools. The profile's stacks
/// are root first (pprof_util reverses jemalloc's leaf-first order); each
/// address expands to its inlined frames, outermost first, so a function
/// the optimiser inlined into its caller still has its own frame, and
/// allocator frames are cut from the leaf end.
pub fn collapsed(profile: &StackProfile) -> String {
    let mut names: HashMap<usize, Vec<String>> = HashMap::new();
    let mut lines: HashMap<String, f64> = HashMap::new();
    for (stack, _) in profile.iter() {
        let mut frames: Vec<String> = Vec::new();
        for &addr in &stack.addrs {
            frames.extend(
                names
                    .entry(addr)
                    .or_insert_with(|| inlined_frames(addr))
                    .iter()
                    .cloned(),
            );
        }
        while frames.len() > 1 && frames.last().is_some_and(|f| allocator_frame(f)) {
            frames.pop();
        }
        *lines.entry(frames.join(";")).or_default() += stack.weight;
    }
    let mut lines: Vec<(String, i64)> = lines.into_iter().map(|(s, w)| (s, w as i64)).collect();
    lines.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    lines.into_iter().map(|(s, w)| format!("{s} {w}\n")).collect()
}

/// Whether a frame belongs to the allocator rather than to the code that
/// allocated: jemalloc's profiler and internals, the C allocation entry
/// points, and Rust's global-allocator shims.
pub fn allocator_frame(name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "prof_",
        "_rjem_",
        "je_",
        "imalloc",
        "ialloc",
        "iralloc",
        "arena_",
        "tcache_",
        "tikv_jemallocator::",
        "<tikv_jemallocator::",
        "__rust_alloc",
        "__rust_realloc",
        "__rdl_",
        "__rg_",
        "alloc::alloc::",
        "alloc::raw_vec::",
        "<alloc::raw_vec::",
        "<alloc::alloc::Global",
        "std::alloc::",
    ];
    const EXACT: &[&str] = &[
        "malloc",
        "calloc",
        "realloc",
        "free",
        "posix_memalign",
        "aligned_alloc",
        "memalign",
        "valloc",
        "mallocx",
        "rallocx",
        "xallocx",
        "do_rallocx",
        // Rust's allocation helpers as DWARF names them when inlined.
        "alloc",
        "alloc_zeroed",
        "exchange_malloc",
        "__rust_alloc",
        "__rust_alloc_zeroed",
    ];
    // Rust's allocation paths as DWARF names their inlined frames: bare
    // names, with generic arguments after `<`.
    const INLINED: &[&str] = &[
        "alloc_impl",
        "allocate",
        "allocate_zeroed",
        "allocate_in",
        "try_allocate_in",
        "with_capacity_in",
        "grow",
        "grow_amortized",
        "grow_one",
        "finish_grow",
        "do_reserve_and_handle",
    ];
    let base = name.split('<').next().unwrap_or(name);
    PREFIXES.iter().any(|p| name.starts_with(p)) || EXACT.contains(&name) || INLINED.contains(&base)
}

/// The profile with the allocator's frames cut from the leaf end of every
/// stack (at least one frame is kept).
pub fn without_allocator_frames(profile: &StackProfile) -> StackProfile {
    let mut names: HashMap<usize, bool> = HashMap::new();
    let mut out = StackProfile::default();
    for (stack, annotation) in profile.iter() {
        let mut addrs = stack.addrs.clone();
        while addrs.len() > 1 {
            let leaf = addrs[addrs.len() - 1];
            if !*names.entry(leaf).or_insert_with(|| allocator_frame(&symbol(leaf))) {
                break;
            }
            addrs.pop();
        }
        out.push_stack(
            WeightedStack {
                addrs,
                weight: stack.weight,
            },
            annotation,
        );
    }
    for m in &profile.mappings {
        out.push_mapping(m.clone());
    }
    out
}

/// Gives back the memory symbolisation cached (parsed debug information of
/// every mapped file: tens of MiB), once a render is done.
pub fn render_done() {
    backtrace::clear_symbol_cache();
}

/// Every frame at `addr`, outermost first: the function the address is in,
/// then the functions inlined into it down to the innermost.
fn inlined_frames(addr: usize) -> Vec<String> {
    let mut names = Vec::new();
    backtrace::resolve(addr.saturating_sub(1) as *mut std::ffi::c_void, |s| {
        if let Some(n) = s.name() {
            names.push(format!("{n:#}").replace([';', ' '], "_"));
        }
    });
    if names.is_empty() {
        names.push(format!("{addr:#x}"));
    }
    names.reverse();
    names
}

/// The function `addr` is in (outermost of its inlined frames). An address
/// is the allocator's only if that function is: an allocation inlined into
/// its caller keeps the caller's frames.
fn symbol(addr: usize) -> String {
    inlined_frames(addr).swap_remove(0)
}
