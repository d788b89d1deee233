//! Names for the addresses in heap profiles, from the ELF symbol tables of
//! the files mapped into this process (`.symtab`, else `.dynsym`), read
//! section by section: a 116 MB binary is never read whole, and no debug
//! information is parsed. Symbolising with DWARF (the `backtrace` crate's
//! way) cost about 85 MiB of RSS for 2.5 s per render; a table here is the
//! symbols' addresses, sizes and demangled names (about 5 MiB for this
//! binary's 49,000 symbols), kept per file in a cache bounded by
//! `CACHE_BYTES`.
//!
//! An address inside no symbol (a stripped library's internal function:
//! Debian's libjpeg ships only its exported symbols) is named by its file
//! and offset, `libjpeg.so.62+0x1a2b3`, never by the nearest symbol, which
//! would be another function's name.

use object::read::elf::{ElfFile64, ProgramHeader};
use object::{Object, ObjectSymbol, ObjectSymbolTable, ReadCache};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Bytes of symbol tables kept between renders at most; past it the cache
/// is emptied before the next table is added.
pub const CACHE_BYTES: usize = 32 << 20;

/// One file's symbols: sorted by address, names in one string.
struct Table {
    /// (virtual address, size, offset of the name in `names`, its length).
    symbols: Vec<(u64, u64, u32, u32)>,
    names: String,
    /// Loadable segments: (file offset, virtual address, size in the file).
    segments: Vec<(u64, u64, u64)>,
    /// The file's name, for addresses inside no symbol.
    short: String,
}

impl Table {
    fn bytes(&self) -> usize {
        self.symbols.len() * std::mem::size_of::<(u64, u64, u32, u32)>() + self.names.len()
    }

    fn read(path: &Path) -> Option<Table> {
        let file = std::fs::File::open(path).ok()?;
        let cache = ReadCache::new(file);
        let elf = ElfFile64::<object::Endianness, _>::parse(&cache).ok()?;
        let endian = elf.endian();
        let segments = elf
            .elf_program_headers()
            .iter()
            .filter(|p| p.p_type(endian) == object::elf::PT_LOAD)
            .map(|p| (p.p_offset(endian), p.p_vaddr(endian), p.p_filesz(endian)))
            .collect();
        let mut symbols = Vec::new();
        let mut names = String::new();
        let table = elf.symbol_table().or_else(|| elf.dynamic_symbol_table())?;
        for symbol in table.symbols() {
            if symbol.kind() != object::SymbolKind::Text || symbol.address() == 0 {
                continue;
            }
            let Ok(raw) = symbol.name() else { continue };
            let name = format!("{:#}", rustc_demangle::demangle(raw));
            let at = names.len() as u32;
            names.push_str(&name);
            symbols.push((symbol.address(), symbol.size(), at, name.len() as u32));
        }
        symbols.sort_unstable_by_key(|s| s.0);
        symbols.shrink_to_fit();
        names.shrink_to_fit();
        Some(Table {
            symbols,
            names,
            segments,
            short: path
                .file_name()
                .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned()),
        })
    }

    /// The symbol `vaddr` is inside, if any.
    fn name_at(&self, vaddr: u64) -> Option<&str> {
        let i = self.symbols.partition_point(|s| s.0 <= vaddr).checked_sub(1)?;
        let (start, size, at, len) = self.symbols[i];
        // Symbols of unknown size (a few assembly routines) own the bytes
        // up to the next symbol.
        let end = if size > 0 {
            start + size
        } else {
            self.symbols.get(i + 1).map_or(start + 1, |next| next.0)
        };
        (vaddr < end).then(|| &self.names[at as usize..(at + len) as usize])
    }

    /// The virtual address of a file offset, through the loadable segments.
    fn vaddr_of(&self, file_offset: u64) -> Option<u64> {
        self.segments
            .iter()
            .find(|(off, _, size)| (*off..off + size).contains(&file_offset))
            .map(|(off, vaddr, _)| vaddr + (file_offset - off))
    }
}

/// An executable mapping of this process.
#[derive(Clone, Debug)]
struct Mapped {
    start: usize,
    end: usize,
    offset: u64,
    path: PathBuf,
}

fn mapped() -> Vec<Mapped> {
    let text = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let range = f.next()?;
            let perms = f.next()?;
            let offset = u64::from_str_radix(f.next()?, 16).ok()?;
            let path = f.nth(2)?;
            if !perms.contains('x') || !path.starts_with('/') {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            Some(Mapped {
                start: usize::from_str_radix(start, 16).ok()?,
                end: usize::from_str_radix(end, 16).ok()?,
                offset,
                path: PathBuf::from(path),
            })
        })
        .collect()
}

static CACHE: Mutex<Option<HashMap<PathBuf, Arc<Table>>>> = Mutex::new(None);

fn table(path: &Path) -> Option<Arc<Table>> {
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some(t) = cache.get(path) {
        return Some(Arc::clone(t));
    }
    let table = Arc::new(Table::read(path)?);
    let held: usize = cache.values().map(|t| t.bytes()).sum();
    if held + table.bytes() > CACHE_BYTES {
        cache.clear();
    }
    cache.insert(path.to_path_buf(), Arc::clone(&table));
    Some(table)
}

/// Forgets every table (after a render).
pub fn clear() {
    *CACHE.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Bytes the symbol tables cached now hold.
pub fn cached_bytes() -> usize {
    let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache.as_ref().map_or(0, |c| c.values().map(|t| t.bytes()).sum())
}

/// Names `addrs` (return addresses, as in stack traces: the call is the
/// byte before). Every address gets a name: its function's, or its file
/// and offset, or the bare address outside any mapped file.
pub fn names(addrs: impl IntoIterator<Item = usize>) -> HashMap<usize, String> {
    let maps = mapped();
    let mut out = HashMap::new();
    for addr in addrs {
        if out.contains_key(&addr) {
            continue;
        }
        let pc = addr.saturating_sub(1);
        let name = maps
            .iter()
            .find(|m| (m.start..m.end).contains(&pc))
            .map(|m| {
                let file_offset = (pc - m.start) as u64 + m.offset;
                let Some(table) = table(&m.path) else {
                    let short = m
                        .path
                        .file_name()
                        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                    return format!("{short}+{file_offset:#x}");
                };
                let named = table.vaddr_of(file_offset).and_then(|v| table.name_at(v));
                match named {
                    Some(name) => name.to_string(),
                    None => format!("{}+{file_offset:#x}", table.short),
                }
            })
            .unwrap_or_else(|| format!("{addr:#x}"));
        out.insert(addr, name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn a_function_of_ours() -> usize {
        // The address of a call inside this function, as a stack holds it.
        // An address inside this function, as a return address would be.
        std::hint::black_box(a_function_of_ours as *const () as usize + 1)
    }

    #[test]
    fn addresses_of_this_binary_are_named_and_of_libc_too() {
        let ours = a_function_of_ours();
        let libc_malloc = libc::malloc as *const () as usize + 1;
        let names = names([ours, libc_malloc, 8]);
        assert!(names[&ours].contains("a_function_of_ours"), "{}", names[&ours]);
        assert!(names[&libc_malloc].contains("malloc"), "{}", names[&libc_malloc]);
        assert_eq!(names[&8], "0x8", "outside every mapping");
        assert!(cached_bytes() > 0 && cached_bytes() <= CACHE_BYTES);
    }
}
