//! How long the disk cache's index takes to rebuild at start-up, for N entries:
//! `cargo run --release --example cache_index -- 200000 [DIR]`.
//! Writes N small valid entries (without fsync, to be quick), then times
//! `DiskTier::rebuild`. docs/benchmarks.md records the figures.

use imaginator::cache::Entry;
use imaginator::cache::disk::{DiskTier, encode};
use imaginator::pipeline::format::ImageFormat;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().unwrap_or_else(|| "100000".into()).parse()?;
    let dir = match args.next() {
        Some(d) => std::path::PathBuf::from(d),
        None => tempfile::tempdir()?.keep(),
    };
    let root = dir.join("cache");
    let data = encode(&Entry {
        bytes: bytes::Bytes::from(vec![7u8; 64]),
        format: ImageFormat::Jpeg,
    });
    let started = Instant::now();
    for i in 0..n {
        // Same fan-out as the service: shard / source / alias / hash.
        let source = format!("{:064x}", i / 8);
        let path = root
            .join(&source[..2])
            .join(&source)
            .join("thumbnail")
            .join(format!("{i:064x}"));
        std::fs::create_dir_all(path.parent().unwrap())?;
        std::fs::write(&path, &data)?;
    }
    println!("wrote {n} entries in {:.1?}", started.elapsed());
    let tier = DiskTier::new(root, dir.join("tmp"), u64::MAX)?;
    let (entries, bytes, seconds) = tier.rebuild();
    println!(
        "rebuilt the index of {entries} entries ({bytes} bytes) in {seconds:.2} s ({:.1} µs per entry)",
        seconds * 1e6 / entries.max(1) as f64
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
