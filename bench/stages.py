#!/usr/bin/env python3
"""Where a miss spends its CPU, stage by stage.

Runs benchmark scenario 1 (fit inside 512x512 in one output format, a
distinct size per request, result cache off, 2 clients) against the release
binary on the 2560x1600 photo set (PNG: their 1600x1000 PNGs), records it with `perf record --call-graph dwarf` for a
fixed time, and attributes every sample to the stage whose function is on
its stack (the first rule that matches, in the order of STAGES). Prints the
share of CPU and the CPU milliseconds per image of each stage.

  bench/.work/venv/bin/python bench/stages.py [--seconds 20] [--set photos|photos-2k] [--format jpeg|webp|avif|png]

Needs `perf` (Debian: linux-perf) and a release build (`cargo build --release`).
"""
import argparse
import atexit
import collections
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402

# (stage, substrings of a function name on the stack). Walked in order; the
# first stage with a match anywhere on the sample's stack takes the sample.
STAGES = [
    ("fast path: decode (libjpeg-turbo, scaled)", ["imj_decoder_pixels", "imj_decoder_header", "imj_decoder_scale"]),
    ("fast path: resize (SIMD convolution)", ["fast_image_resize"]),
    ("fast path: encode JPEG (libjpeg-turbo)", ["imj_encode"]),
    ("fast path: encode WebP (libwebp)", ["imw_encode"]),
    ("fast path: encode AVIF (libheif, libaom)", ["ima_encode"]),
    ("fast path: decode PNG (libpng, zlib inflate)", ["imp_decode"]),
    ("fast path: encode PNG (libpng, zlib deflate)", ["imp_encode"]),
    ("fast path: orientation, checks", ["imaginator::fast"]),
    ("ping (header read by ImageMagick)", ["PingBlob", "PingImage", "MagickPingImage"]),
    ("decode: JPEG (libjpeg-turbo via ImageMagick)", ["ReadJPEGImage"]),
    ("decode: PNG (libpng, zlib inflate)", ["ReadPNGImage", "ReadOnePNGImage", "png_read", "inflate"]),
    ("encode: WebP (libwebp)", ["WriteWEBPImage", "WebPEncode", "VP8"]),
    ("encode: AVIF (libheif, libaom)", ["WriteHEICImage", "heif_", "aom_", "av1_"]),
    ("encode: PNG (libpng, zlib deflate)", ["WritePNGImage", "WriteOnePNGImage", "png_write", "deflate"]),
    ("encode: JPEG (libjpeg-turbo via ImageMagick)", ["WriteJPEGImage"]),
    ("decode: other (ImageMagick)", ["ReadImage", "BlobToImage", "MagickReadImage"]),
    ("resize", ["ResizeImage", "ThumbnailImage", "SampleImage", "ScaleImage", "MagickResizeImage"]),
    ("encode: other (ImageMagick)", ["ImageToBlob", "WriteImage", "MagickGetImageBlob"]),
    ("colour, orientation, strip (ImageMagick)", ["TransformImageColorspace", "ProfileImage", "AutoOrientImage",
                                                  "StripImage", "SetImageColorspace", "Magick", "magick_rust"]),
    ("pre-decode checks (pure Rust)", ["imaginator::pipeline::layers", "imaginator::pipeline::format",
                                       "imaginator::pipeline::colour", "imaginator::pipeline::exif"]),
    ("hashing", ["sha2::", "Sha256", "blake3", "crc32"]),
    ("originals store (read)", ["imaginator::storage", "imaginator::originals"]),
    ("job queue and pool", ["imaginator::magick::pool", "imaginator::render::pool", "crossbeam", "std::sync::mpmc"]),
    ("HTTP (hyper, axum, sockets)", ["hyper::", "axum::", "tokio::net", "tcp_", "sock_", "inet_", "__sys_sendto",
                                     "__sys_recvfrom", "do_writev", "tower::"]),
    ("async runtime", ["tokio::runtime"]),
    ("memory (jemalloc, page faults)", ["je_", "_rjem_", "malloc", "free", "exc_page_fault", "clear_page"]),
]


def scratch_dir(prefix="imaginator-"):
    """A temporary directory removed when this script exits."""
    path = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def classify(stack):
    for stage, markers in STAGES:
        for frame in stack:
            if any(m in frame for m in markers):
                return stage
    return "other (kernel scheduling, idle threads, unresolved)"


def parse_perf_script(text):
    """Yields (comm, [function names leaf first]) per sample."""
    comm, frames = None, []
    for line in text.splitlines():
        if not line.strip():
            if comm is not None:
                yield comm, frames
            comm, frames = None, []
            continue
        if not line.startswith((" ", "\t")):
            comm = line.split()[0]
            continue
        parts = line.strip().split(" ", 1)
        if len(parts) == 2:
            frames.append(parts[1].rsplit(" (", 1)[0])
    if comm is not None:
        yield comm, frames


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--set", default="photos", help="photos (2560x1600) or photos-2k")
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--format", default="jpeg", choices=sorted(bench.FORMATS))
    args = ap.parse_args()
    if args.format == "png":
        args.set = "photos-png"  # made by bench/run from the 2560x1600 photos
    photos = sorted(p for p in (bench.WORK / args.set).glob("*.*")
                    if "2560x1600" in p.name or args.set != "photos")
    im = bench.imaginator(cache=False, queue=64)
    try:
        ids = [bench.upload(im.base, p) for p in photos]
        size = "(49[0-9]|50[0-9]|51[0-2])"
        alias = bench.FORMATS[args.format]["alias"]
        url = f"{im.base}/images/{bench.regex_alt(ids)}/{alias}\\?w={size}&h={size}"
        bench.oha(url, args.clients, requests=8 * len(ids))  # warm-up
        data = Path(scratch_dir()) / "perf.data"
        perf = subprocess.Popen(["perf", "record", "-q", "-F", "499", "--call-graph", "dwarf,32768", "-p",
                                 str(im.proc.pid), "-o", str(data), "--", "sleep", str(args.seconds)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        c0 = im.cpu()
        res = bench.oha(url, args.clients, seconds=args.seconds)
        cpu = im.cpu() - c0
        perf.wait(timeout=args.seconds + 120)
    finally:
        im.stop()
    images = sum(res.get("statusCodeDistribution", {}).values())
    script = subprocess.run(["perf", "script", "-i", str(data), "-F", "comm,ip,sym", "--no-inline"],
                            capture_output=True, text=True, timeout=1800).stdout
    counts = collections.Counter()
    for _comm, frames in parse_perf_script(script):
        counts[classify(frames)] += 1
    total = sum(counts.values()) or 1
    print(f"\nmiss path, {args.format} from {args.set}, c={args.clients}: {images} images in {args.seconds} s "
          f"({images / args.seconds:.1f} req/s), {cpu / max(images, 1) * 1000:.1f} CPU-ms per image, "
          f"{total} samples\n")
    print(f"| stage | share of CPU | CPU ms per image |\n|---|---|---|")
    for stage, n in counts.most_common():
        share = n / total
        print(f"| {stage} | {share * 100:.1f}% | {share * cpu / max(images, 1) * 1000:.2f} |")


if __name__ == "__main__":
    main()
