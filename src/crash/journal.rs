//! The crash journal: a small memory-mapped file under `data_dir` naming the
//! inputs each worker thread is decoding right now.
//!
//! A worker writes the content ids of its job's inputs into its slot before
//! ImageMagick (or libjpeg) sees a byte, and clears the slot when the job
//! ends. The mapping is shared with the file, so what is written survives the
//! process: after a crash, the page cache (and later the disk) still holds it.
//!
//! A fatal signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT) also marks the
//! header with the crashing thread's id before the signal does what it would
//! have done. That tells a crash inside a decoder (the input's fault) from an
//! unclean stop with nothing to blame on an input (SIGKILL, an OOM kill, a
//! power cut), which leaves slots filled but no mark.
//!
//! A crash on a thread that holds no slot (a decoder's helper thread, such
//! as dav1d's for AVIF) cannot be pinned on one job. Then only the inputs
//! in flight that had never been decoded successfully are blamed: an input
//! that decoded before (a stored original was decoded when it was uploaded)
//! is not what crashes the decoder, and an attacker with one crashing file
//! must not be able to quarantine every image that happened to be decoding
//! beside it.
//!
//! Layout (little-endian): a 64-byte header (magic, crashing thread id,
//! signal), then `SLOTS` slots of `SLOT_LEN` bytes (thread id, 0 when idle;
//! a word with the number of ids in its low byte and, from bit 8, one bit
//! per id that has decoded successfully before; up to `IDS_PER_SLOT` ids of
//! 64 hex digits).

use std::cell::RefCell;
use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock};

const MAGIC: &[u8; 8] = b"IMJRNL02";
/// Worker threads that can hold a slot at once.
pub const SLOTS: usize = 256;
const IDS_PER_SLOT: usize = 4;
const ID_LEN: usize = 64;
const HEADER_LEN: usize = 64;
const SLOT_LEN: usize = 8 + IDS_PER_SLOT * ID_LEN;
const FILE_LEN: usize = HEADER_LEN + SLOTS * SLOT_LEN;
/// Header offsets.
const CRASHED_TID: usize = 8;
const SIGNAL: usize = 12;

/// What the journal held when this process opened it: the previous run's end.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PreviousRun {
    /// A fatal signal was caught: (thread id, signal number).
    pub crash: Option<(u32, i32)>,
    /// Inputs in flight when the previous process ended: (thread id, ids).
    pub in_flight: Vec<(u32, Vec<String>)>,
    /// Those of them that had decoded successfully before.
    pub proven: Vec<String>,
}

impl PreviousRun {
    /// The inputs to blame for a crash: those of the thread that crashed, or,
    /// when the crash was on a thread holding no slot (a helper thread of a
    /// decoder), the inputs in flight that had never decoded successfully.
    /// Nothing when there was no crash.
    pub fn suspects(&self) -> Vec<String> {
        let Some((tid, _)) = self.crash else {
            return Vec::new();
        };
        let own: Vec<&(u32, Vec<String>)> = self.in_flight.iter().filter(|(t, _)| *t == tid).collect();
        let mut ids: Vec<String> = if own.is_empty() {
            self.in_flight
                .iter()
                .flat_map(|(_, ids)| ids.iter())
                .filter(|id| !self.proven.contains(id))
                .cloned()
                .collect()
        } else {
            own.into_iter().flat_map(|(_, ids)| ids.iter().cloned()).collect()
        };
        ids.sort();
        ids.dedup();
        ids
    }

    /// Whether the crash was on a thread that held no slot (a decoder's
    /// helper thread).
    pub fn on_helper_thread(&self) -> bool {
        self.crash
            .is_some_and(|(tid, _)| !self.in_flight.iter().any(|(t, _)| *t == tid))
    }

    /// Slots left filled: jobs that were running when the process ended.
    pub fn unclean(&self) -> bool {
        !self.in_flight.is_empty() || self.crash.is_some()
    }

    fn parse(bytes: &[u8]) -> PreviousRun {
        if bytes.len() < FILE_LEN || &bytes[..8] != MAGIC {
            return PreviousRun::default();
        }
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let tid = u32_at(CRASHED_TID);
        let crash = (tid != 0).then(|| (tid, u32_at(SIGNAL) as i32));
        let mut in_flight = Vec::new();
        let mut proven = Vec::new();
        for slot in 0..SLOTS {
            let at = HEADER_LEN + slot * SLOT_LEN;
            let tid = u32_at(at);
            if tid == 0 {
                continue;
            }
            let word = u32_at(at + 4);
            let count = ((word & 0xFF) as usize).min(IDS_PER_SLOT);
            let mut ids = Vec::new();
            for n in 0..count {
                let start = at + 8 + n * ID_LEN;
                let Some(id) = std::str::from_utf8(&bytes[start..start + ID_LEN])
                    .ok()
                    .and_then(crate::storage::ImageId::parse)
                else {
                    continue;
                };
                if word & (1 << (8 + n)) != 0 {
                    proven.push(id.to_string());
                }
                ids.push(id.to_string());
            }
            in_flight.push((tid, ids));
        }
        PreviousRun {
            crash,
            in_flight,
            proven,
        }
    }
}

struct Mapping {
    base: NonNull<u8>,
    path: PathBuf,
    /// Slot indexes no thread holds.
    free: Mutex<Vec<usize>>,
    /// Index in `REGISTRY`, so a fatal signal marks this file.
    registered: Option<usize>,
}

// SAFETY: the mapping lives as long as `Mapping`; every access goes through
// atomics (ids are written by the one thread holding the slot).
unsafe impl Send for Mapping {}
unsafe impl Sync for Mapping {}

impl Mapping {
    fn atomic_u32(&self, offset: usize) -> &AtomicU32 {
        debug_assert!(offset % 4 == 0 && offset + 4 <= FILE_LEN);
        // SAFETY: in bounds, 4-aligned (the mapping is page-aligned), and the
        // mapping outlives the reference.
        unsafe { AtomicU32::from_ptr(self.base.as_ptr().add(offset).cast()) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if let Some(i) = self.registered {
            REGISTRY[i].store(std::ptr::null_mut(), Ordering::SeqCst);
        }
        // A clean end: nothing in flight, no crash.
        // SAFETY: the mapping was made by `open` with this length and no
        // reference into it outlives `self`.
        unsafe {
            std::ptr::write_bytes(self.base.as_ptr().add(8), 0, FILE_LEN - 8);
            libc::munmap(self.base.as_ptr().cast(), FILE_LEN);
        }
    }
}

/// The open journal of this process. Cloning shares it.
#[derive(Clone)]
pub struct Journal(Arc<Mapping>);

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("path", &self.0.path).finish()
    }
}

thread_local! {
    /// The slot this thread writes to, claimed on its first job.
    static CLAIM: RefCell<Option<Claim>> = const { RefCell::new(None) };
}

struct Claim {
    journal: Arc<Mapping>,
    index: usize,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut free = self.journal.free.lock().unwrap_or_else(|e| e.into_inner());
        free.push(self.index);
    }
}

/// Clears its slot when dropped: the job ended, normally or by a panic.
#[must_use = "the inputs count as in flight until this is dropped"]
pub struct InFlight {
    slot: Option<(Arc<Mapping>, usize)>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some((journal, index)) = self.slot.take() {
            journal
                .atomic_u32(HEADER_LEN + index * SLOT_LEN)
                .store(0, Ordering::SeqCst);
        }
    }
}

impl Journal {
    /// Opens (or creates) `dir/crash-journal`, returns what the previous
    /// process left in it, and starts this run with an empty journal. Installs
    /// the fatal-signal hooks once per process.
    pub fn open(dir: &Path) -> io::Result<(Journal, PreviousRun)> {
        let path = dir.join("crash-journal");
        let previous = match std::fs::read(&path) {
            Ok(bytes) => PreviousRun::parse(&bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => PreviousRun::default(),
            Err(e) => return Err(e),
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        file.set_len(FILE_LEN as u64)?;
        // SAFETY: a fresh shared mapping of a file of FILE_LEN bytes; the fd
        // may be closed afterwards.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                FILE_LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                std::os::fd::AsRawFd::as_raw_fd(&file),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(base.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        // SAFETY: FILE_LEN bytes are mapped writable at `base`.
        unsafe {
            std::ptr::write_bytes(base.as_ptr(), 0, FILE_LEN);
            std::ptr::copy_nonoverlapping(MAGIC.as_ptr(), base.as_ptr(), MAGIC.len());
        }
        install_signal_hooks();
        let registered = REGISTRY.iter().position(|slot| {
            slot.compare_exchange(std::ptr::null_mut(), base.as_ptr(), Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        });
        if registered.is_none() {
            tracing::warn!(
                "more than {} crash journals in one process: crashes go unmarked",
                REGISTRY.len()
            );
        }
        let mapping = Mapping {
            base,
            path,
            free: Mutex::new((0..SLOTS).rev().collect()),
            registered,
        };
        Ok((Journal(Arc::new(mapping)), previous))
    }

    /// Marks `ids` as in flight on this thread until the guard is dropped,
    /// each with whether it has decoded successfully before. Ids beyond
    /// `IDS_PER_SLOT` are not recorded (a chain composing more images than
    /// that blames only its first ones).
    pub fn enter<'a>(&self, ids: impl IntoIterator<Item = (&'a str, bool)>) -> InFlight {
        let index = CLAIM.with(|claim| {
            let mut claim = claim.borrow_mut();
            if let Some(c) = claim.as_ref().filter(|c| Arc::ptr_eq(&c.journal, &self.0)) {
                return Some(c.index);
            }
            let index = self.0.free.lock().unwrap_or_else(|e| e.into_inner()).pop()?;
            *claim = Some(Claim {
                journal: Arc::clone(&self.0),
                index,
            });
            Some(index)
        });
        let Some(index) = index else {
            static WARNED: Once = Once::new();
            WARNED.call_once(|| tracing::warn!("more than {SLOTS} worker threads: some jobs are not journalled"));
            return InFlight { slot: None };
        };
        let at = HEADER_LEN + index * SLOT_LEN;
        let mut count = 0u32;
        for (n, (id, proven)) in ids.into_iter().take(IDS_PER_SLOT).enumerate() {
            if proven {
                count |= 1 << (8 + n);
            }
            let id = id.as_bytes();
            let len = id.len().min(ID_LEN);
            // SAFETY: in bounds of this thread's own slot, which no other
            // thread writes.
            unsafe {
                let dst = self.0.base.as_ptr().add(at + 8 + n * ID_LEN);
                std::ptr::write_bytes(dst, b' ', ID_LEN);
                std::ptr::copy_nonoverlapping(id.as_ptr(), dst, len);
            }
            count += 1;
        }
        self.0.atomic_u32(at + 4).store(count, Ordering::SeqCst);
        self.0.atomic_u32(at).store(current_tid(), Ordering::SeqCst);
        InFlight {
            slot: Some((Arc::clone(&self.0), index)),
        }
    }
}

fn current_tid() -> u32 {
    // SAFETY: gettid has no preconditions.
    (unsafe { libc::syscall(libc::SYS_gettid) }) as u32
}

/// Headers of the open journals, for the signal handler (no locks there).
static REGISTRY: [AtomicPtr<u8>; 8] = [const { AtomicPtr::new(std::ptr::null_mut()) }; 8];

const FATAL: [libc::c_int; 5] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE, libc::SIGABRT];

/// The actions that were in place before ours, in `FATAL`'s order.
static PREVIOUS: OnceLock<[libc::sigaction; 5]> = OnceLock::new();

fn install_signal_hooks() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: plain sigaction calls with zeroed, then filled, structs.
        unsafe {
            let mut previous: [libc::sigaction; 5] = std::mem::zeroed();
            for (n, &sig) in FATAL.iter().enumerate() {
                libc::sigaction(sig, std::ptr::null(), &mut previous[n]);
            }
            let _ = PREVIOUS.set(previous);
            for &sig in &FATAL {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_fatal_signal as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(sig, &action, std::ptr::null_mut());
            }
        }
    });
}

/// Async-signal-safe: atomic stores, then the previous action.
extern "C" fn on_fatal_signal(sig: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let tid = current_tid();
    for header in &REGISTRY {
        let base = header.load(Ordering::SeqCst);
        if !base.is_null() {
            // SAFETY: a registered mapping is FILE_LEN bytes long; it is
            // unregistered before it is unmapped.
            unsafe {
                AtomicU32::from_ptr(base.add(SIGNAL).cast()).store(sig as u32, Ordering::SeqCst);
                AtomicU32::from_ptr(base.add(CRASHED_TID).cast()).store(tid, Ordering::SeqCst);
            }
        }
    }
    let previous = PREVIOUS
        .get()
        .and_then(|p| FATAL.iter().position(|&s| s == sig).map(|n| p[n]));
    // SAFETY: the previous action is called as it was registered, or the
    // default action is restored and the signal raised again.
    unsafe {
        match previous {
            Some(p) if p.sa_sigaction != libc::SIG_DFL && p.sa_sigaction != libc::SIG_IGN => {
                if p.sa_flags & libc::SA_SIGINFO != 0 {
                    let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                        std::mem::transmute(p.sa_sigaction);
                    f(sig, info, context);
                } else {
                    let f: extern "C" fn(libc::c_int) = std::mem::transmute(p.sa_sigaction);
                    f(sig);
                }
            }
            _ => {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = libc::SIG_DFL;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(sig, &action, std::ptr::null_mut());
                libc::raise(sig);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn what_is_in_flight_is_on_disk_and_cleared_when_done() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, previous) = Journal::open(dir.path()).unwrap();
        assert_eq!(previous, PreviousRun::default());
        let read = || PreviousRun::parse(&std::fs::read(dir.path().join("crash-journal")).unwrap());
        let guard = journal.enter([(A, false), (B, true)]);
        let seen = read();
        assert_eq!(
            seen.in_flight,
            vec![(current_tid(), vec![A.to_string(), B.to_string()])]
        );
        assert_eq!(seen.proven, vec![B.to_string()]);
        assert_eq!(seen.crash, None);
        // No crash mark: an unclean stop blames nobody.
        assert!(seen.suspects().is_empty());
        drop(guard);
        assert!(read().in_flight.is_empty());
    }

    #[test]
    fn a_crash_blames_the_crashing_threads_inputs_only() {
        let mut run = PreviousRun {
            crash: Some((7, libc::SIGSEGV)),
            in_flight: vec![(7, vec![A.to_string()]), (8, vec![B.to_string()])],
            proven: Vec::new(),
        };
        assert_eq!(run.suspects(), vec![A.to_string()]);
        assert!(!run.on_helper_thread());
        // Crashed on a helper thread: every input in flight that never
        // decoded before is suspect, and only those.
        run.crash = Some((9, libc::SIGABRT));
        assert!(run.on_helper_thread());
        assert_eq!(run.suspects(), vec![A.to_string(), B.to_string()]);
        run.proven = vec![B.to_string()];
        assert_eq!(run.suspects(), vec![A.to_string()]);
        // On the worker's own thread, a proven input is still to blame.
        run.crash = Some((8, libc::SIGSEGV));
        assert_eq!(run.suspects(), vec![B.to_string()]);
    }

    #[test]
    fn a_reopened_journal_reports_the_previous_run_then_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crash-journal");
        // What a crashed process leaves: a mark and a filled slot.
        let mut bytes = vec![0u8; FILE_LEN];
        bytes[..8].copy_from_slice(MAGIC);
        bytes[CRASHED_TID..CRASHED_TID + 4].copy_from_slice(&42u32.to_le_bytes());
        bytes[SIGNAL..SIGNAL + 4].copy_from_slice(&(libc::SIGSEGV as u32).to_le_bytes());
        let slot = HEADER_LEN + 3 * SLOT_LEN;
        bytes[slot..slot + 4].copy_from_slice(&42u32.to_le_bytes());
        bytes[slot + 4..slot + 8].copy_from_slice(&1u32.to_le_bytes());
        bytes[slot + 8..slot + 8 + ID_LEN].copy_from_slice(A.as_bytes());
        std::fs::write(&path, &bytes).unwrap();

        let (journal, previous) = Journal::open(dir.path()).unwrap();
        assert_eq!(previous.crash, Some((42, libc::SIGSEGV)));
        assert_eq!(previous.suspects(), vec![A.to_string()]);
        let now = PreviousRun::parse(&std::fs::read(&path).unwrap());
        assert_eq!(now, PreviousRun::default());
        drop(journal);
    }
}
