//! jemalloc heap profiles: switch sampling on and off, dump a profile to a
//! private temporary file (never a path from a request), and turn it into
//! pprof, a flame graph, or collapsed stacks; and the growth between two.
//!
//! What the service renders is named from the ELF symbol tables
//! (`symbols`: bounded, no debug information read), leaves out the
//! allocator's frames at the leaf end of every stack (`allocator_frame`), and
//! gives its symbol tables back after each render (`render_done`): the
//! diagnostics must not leave heap behind that the growth verdict would then
//! call a leak.

use pprof_util::{StackProfile, WeightedStack, parse_jeheap};
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

pub fn parse(raw: &[u8]) -> Result<StackProfile, ProfileError> {
    parse_jeheap(raw, None).map_err(|e| ProfileError::Parse(e.to_string()))
}

/// A profile's stacks by name, root first, with the allocator's frames cut
/// from the leaf end: what every rendering shows.
pub struct Named {
    /// (addresses root first, bytes).
    stacks: Vec<(Vec<usize>, f64)>,
    names: HashMap<usize, String>,
}

/// Names every address of `profile` once (`symbols`: ELF symbol tables,
/// bounded) and cuts the allocator's frames from the leaf end of every
/// stack (`cut_allocator`).
pub fn name(profile: &StackProfile) -> Named {
    let names = super::symbols::names(profile.iter().flat_map(|(s, _)| s.addrs.iter().copied()));
    let stacks = profile
        .iter()
        .map(|(stack, _)| {
            let mut addrs = stack.addrs.clone();
            cut_allocator(&mut addrs, &names);
            (addrs, stack.weight)
        })
        .collect();
    Named { stacks, names }
}

impl Named {
    pub fn is_empty(&self) -> bool {
        self.stacks.is_empty()
    }

    /// Each distinct stack as `root;caller;callee` with its bytes, largest first.
    fn lines(&self) -> Vec<(String, i64)> {
        let mut lines: HashMap<String, f64> = HashMap::new();
        for (addrs, weight) in &self.stacks {
            let frames: Vec<&str> = addrs.iter().map(|a| self.names[a].as_str()).collect();
            *lines.entry(frames.join(";").replace(' ', "_")).or_default() += weight;
        }
        let mut lines: Vec<(String, i64)> = lines.into_iter().map(|(s, w)| (s, w as i64)).collect();
        lines.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        lines
    }
}

/// Collapsed stacks (`root;caller;callee bytes`, one line a stack, largest
/// first), the input format of most flame graph tools.
pub fn collapsed(named: &Named) -> String {
    named.lines().into_iter().map(|(s, w)| format!("{s} {w}\n")).collect()
}

/// A flame graph (SVG) of `named`; `empty` is what it says when there is
/// no stack to draw.
pub fn to_flamegraph(named: &Named, title: &str, empty: &str) -> Result<Vec<u8>, ProfileError> {
    if named.is_empty() {
        // The flame graph renderer refuses empty input; say so in a picture.
        return Ok(format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"800\" height=\"60\"><text x=\"10\" y=\"30\">{title}: {empty} (sampling every {} KiB on average)</text></svg>\n",
            sample_bytes() / 1024
        )
        .into_bytes());
    }
    let mut options = inferno::flamegraph::Options::default();
    options.title = title.to_string();
    options.count_name = "bytes".to_string();
    let lines: Vec<String> = named.lines().into_iter().map(|(s, w)| format!("{s} {w}")).collect();
    let mut svg = Vec::new();
    inferno::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), &mut svg)
        .map_err(|e| ProfileError::Parse(e.to_string()))?;
    Ok(svg)
}

/// A gzip-compressed pprof profile (`perftools.profiles.Profile`), with
/// the names of `named`: one location per address, one function per name.
pub fn to_pprof(named: &Named) -> Vec<u8> {
    super::pprof::encode(&named.stacks, &named.names, sample_bytes())
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

/// Whether a frame is where code enters the allocator: the C allocation
/// functions, Rust's allocation shims and global allocator, jemalloc's
/// API, and the allocation wrappers of ImageMagick and the codec
/// libraries. Everything a stack does below such a frame is the
/// allocator's own work, whatever its functions are named (jemalloc's
/// internals, its profiler).
pub fn allocator_entry(name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        // Rust's allocation shims (`__rust_try` and the like are not).
        "__rust_alloc",
        "__rust_realloc",
        "__rust_dealloc",
        "__rustc::__rust_alloc",
        "__rustc::__rust_realloc",
        "__rustc::__rust_dealloc",
        "__rdl_",
        "__rg_",
        "tikv_jemallocator::",
        "<tikv_jemallocator::",
        "tikv_jemalloc_sys::",
        "_rjem_",
        // ImageMagick's allocation wrappers (`AcquireAlignedMemory_POSIX`...).
        "AcquireAlignedMemory",
        "AcquireMagickMemory",
        "AcquireQuantumMemory",
        "AcquireVirtualMemory",
        "AcquireCriticalMemory",
        "ResizeMagickMemory",
        "ResizeQuantumMemory",
        // Codec libraries' wrappers.
        "png_malloc",
        "png_calloc",
        "png_realloc",
        "jpeg_get_",
        "WebPSafe",
        "_cmsMalloc",
        "_cmsCalloc",
        "_cmsRealloc",
        "_cmsDupMem",
    ];
    const EXACT: &[&str] = &[
        "malloc",
        "calloc",
        "realloc",
        "reallocarray",
        "free",
        "posix_memalign",
        "aligned_alloc",
        "memalign",
        "valloc",
        "pvalloc",
        "mallocx",
        "rallocx",
        "xallocx",
        "sdallocx",
        "strdup",
        "strndup",
        "AcquireString",
        "CloneString",
        "ConstantString",
        "WebPMalloc",
        "_Znwm",
        "_Znam",
        "_ZnwmRKSt9nothrow_t",
        "_ZnamRKSt9nothrow_t",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p)) || EXACT.contains(&name)
}

/// Whether a frame is Rust's standard library (collections, formatting,
/// `RawVec`): between our code and the allocator, cut from the leaf end so
/// that a stack ends in the first frame of ours or of another crate.
pub fn std_frame(name: &str) -> bool {
    ["alloc::", "<alloc::", "core::", "<core::", "std::", "<std::"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// Whether a frame is the allocator's rather than the code's that
/// allocated (an entry point or the standard library around it).
pub fn allocator_frame(name: &str) -> bool {
    allocator_entry(name) || std_frame(name)
}

/// Cuts a stack (root first) at its first allocator entry point, then the
/// standard library's frames from the new leaf end; at least one frame is
/// kept.
fn cut_allocator(addrs: &mut Vec<usize>, names: &HashMap<usize, String>) {
    if let Some(entry) = addrs.iter().position(|a| allocator_entry(&names[a])) {
        addrs.truncate(entry.max(1));
    }
    while addrs.len() > 1 && std_frame(&names[&addrs[addrs.len() - 1]]) {
        addrs.pop();
    }
}

/// Gives back what symbolisation cached (the ELF symbol tables of the
/// mapped files), once a render is done: the diagnostics must not leave
/// heap behind that the growth verdict would then call a leak.
pub fn render_done() {
    super::symbols::clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_are_cut_at_the_allocator_entry_whatever_its_internals_are_called() {
        let names: HashMap<usize, String> = [
            (1, "start_thread"),
            (2, "imaginator::magick::job::run"),
            (3, "alloc::raw_vec::finish_grow"),
            (4, "__rustc::__rust_realloc"),
            (5, "realloc"),
            (6, "irealloc_prof"),
            (7, "prof_backtrace_impl"),
        ]
        .into_iter()
        .map(|(a, n)| (a, n.to_string()))
        .collect();
        let mut stack = vec![1, 2, 3, 4, 5, 6, 7];
        cut_allocator(&mut stack, &names);
        assert_eq!(stack, vec![1, 2]);
        let names: HashMap<usize, String> = names.into_iter().chain([(8, "__rust_try".to_string())]).collect();
        let mut unwinding = vec![1, 8, 2, 4, 5];
        cut_allocator(&mut unwinding, &names);
        assert_eq!(unwinding, vec![1, 8, 2], "`__rust_try` is not an allocation shim");
        let mut only_allocator = vec![5, 6];
        cut_allocator(&mut only_allocator, &names);
        assert_eq!(only_allocator, vec![5], "a frame is always kept");
    }
}
