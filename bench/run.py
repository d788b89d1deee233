#!/usr/bin/env python3
"""imaginator's performance benchmark, side by side with thumbor 7.8, a sharp
0.35 HTTP server, libvips (pyvips + pyvips-binary), the `magick` command-line
tool and a bare axum server, in one run on this machine, on the same photos
and operation. Every peer runs as its users and its own published benchmarks
run it (PEERS below says how, and the report repeats it).

  bench/run            # full run (a few minutes); figures go to bench/.work/results.json
  bench/run --smoke    # seconds: every scenario once, tiny counts (CI keeps it from rotting)

Scenarios (each prints req/s, p50/p95/p99, CPU seconds per image, peak RSS):
  1. miss throughput by output format (the matrix): fit inside 512x512, a
     distinct size per request (no cache, no coalescing), 2 and 8 concurrent
     clients; JPEG q80, WebP q75, AVIF q65 from the 2560x1600 JPEGs (JPEG also
     from the photos scaled to a 2K long side), PNG from the same photos as
     1600x1000 PNGs (FORMATS and ENCODERS below say how each server is asked);
  2. large input: 14.7 MP JPEG -> 400 px thumbnail, CPU seconds per image;
  3. cache hits: one small result, 64 concurrent keep-alive clients, against
     the bare axum ceiling;
  4. overload: 512 concurrent clients with distinct keys: share of fast 503s,
     p99 of admitted requests, peak RSS;
  5. chain hits: GET /download(origin:photo):thumbnail(100) against
     /images/{id}/thumbnail, both cached, and the requests the origin got.
Quality: PSNR and SSIM of each server's output against a full-decode
Lanczos reference (magick CLI), same sizes, and the output's bytes, per
format. Then the goals, each marked met or MISS with its ratio.
"""
import argparse
import atexit
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def scratch_dir(prefix="imaginator-"):
    """A temporary directory removed when this script exits."""
    path = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench/.work"
VENV = WORK / "venv"
OHA = shutil.which("oha") or str(Path.home() / ".cargo/bin/oha")
NODE_DIR = WORK / "node"
CORES = os.cpu_count() or 1

# How each peer runs, printed with the figures.
PEERS = {
    "imaginator": f"release build, {CORES} ImageMagick workers (one per core), queue 64, result cache off",
    "thumbor": f"thumbor 7.8.0 (PyPI, Pillow engine), ENGINE_THREADPOOL_SIZE={CORES} (one per core, as its "
               "published benchmark harness runs it), file loader, no result storage",
    "sharp": "sharp 0.35 (npm, bundled libvips 8.18) in a 30-line Node server (bench/sharp_server.js) with "
             "sharp's defaults",
    "libvips": "pyvips thumbnail in-process, VIPS_CONCURRENCY=1",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=60):
    until = time.time() + timeout
    while time.time() < until:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status < 500:
                    return
        except Exception:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def proc_cpu(pid):
    """utime + stime of a process (and its reaped children), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / ticks


def peak_rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def oha(urls_regex, clients, seconds=None, requests=None, keepalive=True):
    """Runs oha on 127.0.0.1 with random URLs from a regex; returns its JSON summary."""
    cmd = [OHA, "--no-tui", "--output-format", "json", "-c", str(clients), "--rand-regex-url", urls_regex]
    cmd += ["-z", f"{seconds}s"] if seconds else ["-n", str(requests)]
    if not keepalive:
        cmd.append("--disable-keepalive")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=(seconds or 60) + 120)
    if out.returncode != 0:
        raise SystemExit(f"oha failed: {out.stderr[:500]}")
    return json.loads(out.stdout)


def summarize(name, res, cpu=None, images=None, rss=None):
    s = res["summary"]
    lat = res.get("latencyPercentiles", {})
    statuses = res.get("statusCodeDistribution", {})
    row = {
        "name": name,
        "rps": round(s.get("requestsPerSec", 0), 1),
        "p50_ms": round(lat.get("p50", 0) * 1000, 2) if lat.get("p50") is not None else None,
        "p95_ms": round(lat.get("p95", 0) * 1000, 2) if lat.get("p95") is not None else None,
        "p99_ms": round(lat.get("p99", 0) * 1000, 2) if lat.get("p99") is not None else None,
        "statuses": statuses,
        "cpu_s_per_image": round(cpu / images, 4) if cpu is not None and images else None,
        "peak_rss_mib": round(rss, 1) if rss is not None else None,
    }
    print(f"  {name:<44} {row['rps']:>9} req/s  p50 {row['p50_ms']} ms  p95 {row['p95_ms']} ms  p99 {row['p99_ms']} ms"
          f"  cpu/img {row['cpu_s_per_image']}  rss {row['peak_rss_mib']} MiB  {statuses}")
    return row


class Server:
    def __init__(self, cmd, env=None, ready=None, cwd=None):
        self.proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        if ready:
            wait_http(ready)

    def cpu(self):
        return proc_cpu(self.proc.pid)

    def rss(self):
        return peak_rss_mib(self.proc.pid)

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)


HEADROOM = None
# target/release normally; target/debug for the CI smoke run (no release build there).
BUILD = "release"


def imaginator(cache=True, workers=2, queue=None, fast_path=True, config=None, env_extra=None):
    port = free_port()
    aliases = Path(scratch_dir())
    for f in list((ROOT / "aliases").glob("*.toml")) + list((ROOT / "bench/aliases").glob("*.toml")):
        shutil.copy(f, aliases)
    env = dict(os.environ, IMAGINATOR_LISTEN=f"127.0.0.1:{port}", IMAGINATOR_DATA_DIR=scratch_dir(),
               IMAGINATOR_ALIASES_DIR=str(aliases), IMAGINATOR_WORKERS=str(workers), IMAGINATOR_LOG__FILTER="warn")
    if HEADROOM:
        env["IMAGINATOR_DECODE_HEADROOM"] = HEADROOM
    if queue is not None:
        env["IMAGINATOR_QUEUE"] = str(queue)
    if not fast_path:
        env["IMAGINATOR_FAST_PATH"] = "false"
    if config:
        path = Path(scratch_dir()) / "imaginator.toml"
        path.write_text(config)
        env["IMAGINATOR_CONFIG"] = str(path)
    env.update(env_extra or {})
    if not cache:
        env["IMAGINATOR_CACHE__MEMORY"] = "0"
        env["IMAGINATOR_CACHE__DISK"] = "0"
    s = Server([str(ROOT / f"target/{BUILD}/imaginator")], env=env, ready=f"http://127.0.0.1:{port}/readyz")
    s.base = f"http://127.0.0.1:{port}"
    return s


def upload(base, path):
    req = urllib.request.Request(base + "/images", data=path.read_bytes(), method="POST",
                                 headers={"Content-Type": "image/png" if path.suffix == ".png" else "image/jpeg"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())["id"]


def thumbor(photos_dir):
    port = free_port()
    conf = Path(scratch_dir()) / "thumbor.conf"
    conf.write_text(
        f"LOADER = 'thumbor.loaders.file_loader'\nFILE_LOADER_ROOT_PATH = '{photos_dir}'\n"
        "RESULT_STORAGE = None\nSTORAGE = 'thumbor.storages.no_storage'\nQUALITY = 80\n"
        "ALLOW_UNSAFE_URL = True\nAUTO_WEBP = False\nRESPECT_ORIENTATION = True\n"
        f"ENGINE_THREADPOOL_SIZE = {CORES}\n"
    )
    s = Server([str(VENV / "bin/thumbor"), "-p", str(port), "-c", str(conf), "-l", "error"],
               ready=f"http://127.0.0.1:{port}/healthcheck")
    s.base = f"http://127.0.0.1:{port}"
    return s


def sharp(photos_dir):
    port = free_port()
    env = dict(os.environ, NODE_PATH=str(NODE_DIR / "node_modules"))
    s = Server(["node", str(ROOT / "bench/sharp_server.js"), str(port), str(photos_dir)], env=env,
               ready=f"http://127.0.0.1:{port}/health")
    s.base = f"http://127.0.0.1:{port}"
    return s


def regex_alt(items):
    return "(" + "|".join(items) + ")"


# The format matrix: how each server is asked for each output format. JPEG
# q80, WebP q75 and AVIF q65 are the quality numbers a page's srcset would
# name; the encoders' scales differ, so the quality pass puts PSNR, SSIM and
# bytes beside each. PNG from PNG sources, at each server's PNG defaults.
SIZE_RE = "(49[0-9]|50[0-9]|51[0-2])"
FORMATS = {
    "jpeg": {"alias": "fit", "quality": 80, "thumbor": "filters:quality\\(80\\)", "sharp": "jpeg/80"},
    "webp": {"alias": "fitwebp", "quality": 75, "thumbor": "filters:format\\(webp\\):quality\\(75\\)",
             "sharp": "webp/75"},
    "avif": {"alias": "fitavif", "quality": 65, "thumbor": "filters:format\\(avif\\):quality\\(65\\)",
             "sharp": "avif/65"},
    "png": {"alias": "fitpng", "quality": None, "thumbor": "filters:format\\(png\\)", "sharp": "png/0"},
}
# What each server's encoder does with those requests (stated next to the figures).
ENCODERS = {
    "imaginator": "Debian 12 codecs: libjpeg-turbo 2.1.5, libwebp 1.2.4, libheif 1.15.1 + libaom 3.6.0, zlib 1.2.13. "
                  "JPEG: 4:2:0 below q90, optimised Huffman tables; WebP: method 4; AVIF: libaom speed 7, 4:4:4, "
                  "8-bit, one encoder thread; PNG: zlib level 4, adaptive filters; resize filter Lanczos",
    "thumbor": "Pillow 12.3 (its wheels' codecs: libjpeg-turbo 3.x, libwebp 1.6.0, libavif 1.4.2 + aom 3.14.1, "
               "zlib 1.2.13): JPEG optimize=True, 4:2:0; WebP method 4; AVIF speed 6, 4:2:0; PNG compress_level 6 "
               "(PNG_COMPRESSION_LEVEL default); resize LANCZOS",
    "sharp": "sharp 0.35.6 defaults (libvips 8.18.8 with mozjpeg in libjpeg-turbo mode, libwebp 1.6.0, libheif "
             "1.23.7 + aom 3.15.3, zlib-ng 2.3.3): JPEG 4:2:0, optimiseCoding; WebP effort 4; AVIF effort 4 "
             "(aom speed 5), 4:4:4; PNG compressionLevel 6, adaptiveFiltering false; resize lanczos3",
}


def unescape(regex_url):
    return re.sub(r"\\(.)", r"\1", regex_url)


def measure(label, server, url, clients, seconds, warm, results, extra):
    oha(url, clients, requests=warm)
    c0 = server.cpu()
    res = oha(url, clients, seconds=seconds)
    n = sum(res.get("statusCodeDistribution", {}).values())
    row = summarize(label, res, server.cpu() - c0, n, server.rss())
    row.update(extra)
    results.append(row)
    return row


def scenario_miss(photo_sets, seconds, results, formats=tuple(FORMATS), clients_list=(2, 8)):
    """Miss throughput per output format: fit inside 512x512 (w and h drawn
    from 490..512, so every request is a distinct cache key), caches off."""
    print("\n1. miss throughput by output format: fit in 512x512, distinct size per request, caches off")
    for fmt in formats:
        how = FORMATS[fmt]
        for set_name, photos in photo_sets.items():
            # PNG output from PNG sources; the 2K JPEG set for JPEG only.
            wanted = {"png": ("png",), "jpeg": ("2560x1600", "2K")}.get(fmt, ("2560x1600",))
            if set_name not in wanted:
                continue
            names = [p.name for p in photos]
            warm = 2 * len(names)
            peers = [("imaginator", True)]
            if fmt == "jpeg":
                peers.append(("imaginator, ImageMagick only", False))
            for label, fast_path in peers:
                im = imaginator(cache=False, queue=64, fast_path=fast_path)
                ids = [upload(im.base, p) for p in photos]
                url = f"{im.base}/images/{regex_alt(ids)}/{how['alias']}\\?w={SIZE_RE}&h={SIZE_RE}"
                for clients in clients_list:
                    measure(f"{label} {fmt} {set_name} c={clients}", im, url, clients, seconds, warm, results,
                            {"format": fmt, "set": set_name, "clients": clients, "server": label})
                im.stop()
            for label, start, url in [
                ("thumbor 7.8", thumbor,
                 lambda b: f"{b}/unsafe/fit-in/{SIZE_RE}x{SIZE_RE}/{how['thumbor']}/{regex_alt(names)}"),
                ("sharp 0.35", sharp, lambda b: f"{b}/fit/{SIZE_RE}x{SIZE_RE}/{how['sharp']}/{regex_alt(names)}"),
            ]:
                peer = start(photos[0].parent)
                for clients in clients_list:
                    measure(f"{label} {fmt} {set_name} c={clients}", peer, url(peer.base), clients, seconds, warm,
                            results, {"format": fmt, "set": set_name, "clients": clients, "server": label})
                peer.stop()


def cpu_loop(label, photos, fn, repeat):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.process_time()
    for _ in range(repeat):
        for p in photos:
            fn(p)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (time.process_time() - t) + (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    per = cpu / (repeat * len(photos))
    print(f"  {label:<44} {per:.4f} CPU-s per image")
    return per


def pyvips_cpu(photos, size, repeat):
    code = (
        "import sys,time,pyvips\n"
        "paths=sys.argv[3:]\n"
        "t=time.process_time()\n"
        "for _ in range(int(sys.argv[2])):\n"
        "  for p in paths:\n"
        "    pyvips.Image.thumbnail(p, int(sys.argv[1]), height=int(sys.argv[1])).write_to_buffer('.jpg[Q=80]')\n"
        "print((time.process_time()-t)/(int(sys.argv[2])*len(paths)))\n"
    )
    env = dict(os.environ, VIPS_CONCURRENCY="1")
    out = subprocess.run([str(VENV / "bin/python"), "-c", code, str(size), str(repeat), *map(str, photos)],
                         capture_output=True, text=True, env=env)
    if out.returncode != 0:
        print(f"  pyvips failed: {out.stderr[-300:]}")
        return None
    return float(out.stdout.strip())


def magick_hint(path, size):
    w, h = subprocess.run(["magick", "identify", "-ping", "-format", "%w %h", str(path)], capture_output=True,
                          text=True).stdout.split()
    w, h = int(w), int(h)
    s = min(size / w, size / h)
    return f"{int(w * s * 2)}x{int(h * s * 2)}"


def scenario_large(large, repeat, results):
    print("\n2. large input: 14.7 MP JPEG -> 400 px thumbnail, CPU seconds per image")
    im = imaginator(cache=False, workers=1)
    ids = [upload(im.base, p) for p in large]
    c0 = im.cpu()
    n = 0
    for _ in range(repeat):
        for i, id_ in enumerate(ids):
            urllib.request.urlopen(f"{im.base}/images/{id_}/fit?w={400 + n % 7}&h={400 + n % 7}", timeout=60).read()
            n += 1
    ours = (im.cpu() - c0) / n
    print(f"  {'imaginator (server CPU, HTTP included)':<44} {ours:.4f} CPU-s per image  rss {im.rss():.0f} MiB")
    im.stop()
    vips = pyvips_cpu(large, 400, repeat)
    if vips:
        print(f"  {'libvips thumbnail (pyvips, in-process)':<44} {vips:.4f} CPU-s per image")
    out = Path(scratch_dir()) / "o.jpg"
    cli_best = cpu_loop("magick CLI, jpeg:size hint, -thumbnail", large, lambda p: subprocess.run(
        ["magick", "-define", f"jpeg:size={magick_hint(p, 400)}", str(p), "-thumbnail", "400x400", "-quality", "80", str(out)],
        check=True), repeat)
    cli_naive = cpu_loop("magick CLI, -resize (full decode)", large, lambda p: subprocess.run(
        ["magick", str(p), "-resize", "400x400", "-quality", "80", str(out)], check=True), max(1, repeat // 2))
    results.append({"name": "large input", "imaginator_cpu_s": round(ours, 4), "libvips_cpu_s": vips and round(vips, 4),
                    "magick_cli_hint_cpu_s": round(cli_best, 4), "magick_cli_naive_cpu_s": round(cli_naive, 4),
                    "ratio_vs_libvips": vips and round(ours / vips, 2)})


def scenario_hits(photo, seconds, results):
    print("\n3. cache hits: one small result, 64 keep-alive clients")
    im = imaginator(cache=True)
    id_ = upload(im.base, photo)
    url = f"{im.base}/images/{id_}/thumbnail\\?width=100"
    body = urllib.request.urlopen(url.replace("\\", ""), timeout=30).read()
    c0 = im.cpu()
    res = oha(url, 64, seconds=seconds)
    n = sum(res.get("statusCodeDistribution", {}).values())
    ours = summarize("imaginator hit-memory c=64", res, im.cpu() - c0, n, im.rss())
    im.stop()
    f = Path(scratch_dir()) / "body.jpg"
    f.write_bytes(body)
    port = free_port()
    bare = Server([str(ROOT / f"target/{BUILD}/examples/bare_axum"), f"127.0.0.1:{port}", str(f)],
                  ready=f"http://127.0.0.1:{port}/")
    c0 = bare.cpu()
    res = oha(f"http://127.0.0.1:{port}/x", 64, seconds=seconds)
    n = sum(res.get("statusCodeDistribution", {}).values())
    ceiling = summarize("bare axum, fixed body c=64 (ceiling)", res, bare.cpu() - c0, n, bare.rss())
    bare.stop()
    ratio = ours["rps"] / ceiling["rps"] if ceiling["rps"] else None
    print(f"  imaginator / ceiling = {ratio:.2f}")
    results += [ours, ceiling, {"name": "hit ratio vs ceiling", "value": round(ratio, 3) if ratio else None}]


class CountingOrigin:
    """A local origin serving one photo with `Cache-Control: max-age=3600`
    and an ETag, counting the requests it gets."""

    def __init__(self, photo):
        import http.server
        import threading
        body, origin, path = photo.read_bytes(), self, "/" + photo.name
        self.requests = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                origin.requests += 1
                if self.path != path:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "public, max-age=3600")
                self.send_header("ETag", '"photo"')
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


def scenario_chain_hits(photo, seconds, results):
    print("\n5. chain hits: GET /download(origin:..):thumbnail(100) vs /images/{id}/thumbnail, 64 clients")
    origin = CountingOrigin(photo)
    im = imaginator(cache=True, config=f'[domains]\norigin = "{origin.base}"\n')
    id_ = upload(im.base, photo)
    rows = {}
    for label, url in [("imaginator /images/{id}/thumbnail hit", f"{im.base}/images/{id_}/thumbnail\\?width=100"),
                       ("imaginator /download(..):thumbnail hit", f"{im.base}/download\\(origin:{photo.name}\\):thumbnail\\(100\\)")]:
        urllib.request.urlopen(re.sub(r"\\(.)", r"\1", url), timeout=30).read()  # the miss
        before = origin.requests
        c0 = im.cpu()
        res = oha(url, 64, seconds=seconds)
        n = sum(res.get("statusCodeDistribution", {}).values())
        rows[label] = summarize(f"{label} c=64", res, im.cpu() - c0, n, im.rss())
        rows[label]["origin_requests"] = origin.requests - before
        print(f"    origin requests during the run: {origin.requests - before} for {n} hits")
    im.stop()
    origin.stop()
    ids, chain = rows.values()
    ratio = chain["rps"] / ids["rps"] if ids["rps"] else None
    print(f"  chain hit / id hit = {ratio:.2f}")
    results += [ids, chain, {"name": "chain hit ratio vs id hit", "value": round(ratio, 3) if ratio else None}]


def scenario_overload(photos, requests, results):
    print("\n4. overload: 512 concurrent clients, distinct keys (2 workers, queue 8)")
    im = imaginator(cache=False)
    ids = [upload(im.base, p) for p in photos]
    url = f"{im.base}/images/{regex_alt(ids)}/fit\\?w=([1-4][0-9][0-9])&h=([1-4][0-9][0-9])"
    res = oha(url, 512, requests=requests, keepalive=False)
    row = summarize("imaginator overload c=512", res, None, None, im.rss())
    statuses = res.get("statusCodeDistribution", {})
    total = sum(statuses.values())
    shed = statuses.get("503", 0)
    row["share_503"] = round(shed / total, 3) if total else None
    print(f"  503 share {row['share_503']}, other than 200/503: {[k for k in statuses if k not in ('200', '503')]}")
    im.stop()
    results.append(row)


def reference(photo, tmp):
    """The full-decode Lanczos reference of `photo` fitted in 512x512 (magick
    CLI), as (path, width, height)."""
    ref = tmp / f"{photo.stem}.ref.png"
    subprocess.run(["magick", str(photo), "-filter", "Lanczos", "-resize", "512x512", str(ref)], check=True)
    w, h = subprocess.run(["magick", "identify", "-format", "%w %h", str(ref)], capture_output=True,
                          text=True).stdout.split()
    return ref, w, h


def quality(photo_sets, results, formats=tuple(FORMATS)):
    """PSNR and SSIM of each server's output (fit 512x512) against a
    full-decode Lanczos reference made by the magick CLI, and its bytes, per
    output format: the rate-distortion point each server's request lands on."""
    print("\nquality: PSNR and SSIM against a full-decode Lanczos reference (fit 512x512), and output bytes")
    tmp = Path(scratch_dir())
    for fmt in formats:
        how = FORMATS[fmt]
        photos = photo_sets["png" if fmt == "png" else "2560x1600"]
        servers = {"imaginator": imaginator(cache=False), "thumbor": thumbor(photos[0].parent),
                   "sharp": sharp(photos[0].parent)}
        if fmt == "jpeg":
            servers["imaginator-im"] = imaginator(cache=False, fast_path=False)
        scores = {name: {"psnr": [], "ssim": [], "bytes": []} for name in servers}
        for p in photos:
            ref, w, h = reference(p, tmp)
            outs = {
                "thumbor": f"{servers['thumbor'].base}/unsafe/fit-in/512x512/{unescape(how['thumbor'])}/{p.name}",
                "sharp": f"{servers['sharp'].base}/fit/512x512/{how['sharp']}/{p.name}",
            }
            for name in ("imaginator", "imaginator-im"):
                if name in servers:
                    id_ = upload(servers[name].base, p)
                    outs[name] = f"{servers[name].base}/images/{id_}/{how['alias']}?w=512&h=512"
            for name, url in outs.items():
                data = urllib.request.urlopen(url, timeout=120).read()
                f = tmp / f"{p.stem}.{name}.{fmt}"
                f.write_bytes(data)
                scores[name]["bytes"].append(len(data))
                psnr, ssim = psnr_ssim(f, ref, w, h)
                scores[name]["psnr"].append(psnr)
                scores[name]["ssim"].append(ssim)
        for server in servers.values():
            server.stop()
        row = {"name": f"quality {fmt}", "format": fmt}
        for name, sc in scores.items():
            mean = {k: sum(v) / len(v) for k, v in sc.items()}
            print(f"  {fmt:<5} {name:<14} PSNR {mean['psnr']:.2f} dB (min {min(sc['psnr']):.2f})  "
                  f"SSIM {mean['ssim']:.4f}  mean bytes {mean['bytes']:.0f}")
            row[name] = {"psnr_db": round(mean["psnr"], 2), "ssim": round(mean["ssim"], 4),
                         "bytes": round(mean["bytes"])}
        results.append(row)


SWEEP_QUALITIES = (40, 50, 60, 65, 70, 75, 80, 90)


IDENTICAL_PSNR = 60.0


def psnr_ssim(path, ref, w, h):
    """PSNR (dB) and SSIM of an output against the reference. ImageMagick
    prints a PSNR of 0 for identical images; that counts as IDENTICAL_PSNR."""
    out = []
    for metric in ("PSNR", "SSIM"):
        r = subprocess.run(["magick", "compare", "-metric", metric, str(path), "-resize", f"{w}x{h}!", str(ref),
                            "null:"], capture_output=True, text=True)
        out.append(float(r.stderr.split()[0]))
    if out[0] == 0.0:
        out[0] = IDENTICAL_PSNR
    return out


def rate_distortion(photo_sets, results, formats=("jpeg", "webp", "avif"), qualities=SWEEP_QUALITIES):
    """Each server's rate-distortion curve per lossy format: mean PSNR, SSIM
    and bytes at each quality number (fit 512x512, the 2560x1600 photos).
    Quality numbers mean different things to different encoders; the curves
    let each peer's point be compared with ours at equal PSNR."""
    print("\nrate-distortion: mean PSNR / SSIM / bytes per quality number (fit 512x512)")
    photos = photo_sets["2560x1600"]
    tmp = Path(scratch_dir())
    refs = {}
    for p in photos:
        refs[p.name] = reference(p, tmp)
    im = imaginator(cache=False, env_extra={"IMAGINATOR_ALLOW_BUILTIN_FILTERS": "true"})
    th, sh = thumbor(photos[0].parent), sharp(photos[0].parent)
    ids = {p.name: upload(im.base, p) for p in photos}
    try:
        for fmt in formats:
            ext = {"jpeg": "jpg"}.get(fmt, fmt)
            curves = {"imaginator": [], "thumbor": [], "sharp": []}
            for q in qualities:
                urls = {
                    "imaginator": lambda n: f"{im.base}/original({ids[n]}):fit-in(512,512):format({ext}):quality({q})",
                    "thumbor": lambda n: f"{th.base}/unsafe/fit-in/512x512/filters:format({fmt}):quality({q})/{n}",
                    "sharp": lambda n: f"{sh.base}/fit/512x512/{fmt}/{q}/{n}",
                }
                for name, url in urls.items():
                    ps, ss, bs = [], [], []
                    for p in photos:
                        data = urllib.request.urlopen(url(p.name), timeout=120).read()
                        f = tmp / f"{p.stem}.{name}.{fmt}"
                        f.write_bytes(data)
                        ref, w, h = refs[p.name]
                        psnr, ssim = psnr_ssim(f, ref, w, h)
                        ps.append(psnr)
                        ss.append(ssim)
                        bs.append(len(data))
                    point = {"quality": q, "psnr_db": round(sum(ps) / len(ps), 2),
                             "ssim": round(sum(ss) / len(ss), 4), "bytes": round(sum(bs) / len(bs))}
                    curves[name].append(point)
            for name, curve in curves.items():
                pts = "  ".join(f"q{c['quality']}: {c['psnr_db']:.2f} dB {c['ssim']:.4f} {c['bytes']} B" for c in curve)
                print(f"  {fmt:<5} {name:<11} {pts}")
            results.append({"name": f"rate-distortion {fmt}", "format": fmt, "curves": curves})
    finally:
        for server in (im, th, sh):
            server.stop()


def bytes_at_psnr(curve, psnr):
    """Bytes on a rate-distortion curve at `psnr`, interpolated linearly in
    log(bytes) between the two points around it; None outside the curve."""
    import math
    pts = sorted((c["psnr_db"], c["bytes"]) for c in curve)
    for (p0, b0), (p1, b1) in zip(pts, pts[1:]):
        if p0 <= psnr <= p1 and p1 > p0:
            t = (psnr - p0) / (p1 - p0)
            return math.exp(math.log(b0) + t * (math.log(b1) - math.log(b0)))
    return None


def equal_quality(results):
    """For each lossy format: each peer's point at the matrix quality, and
    our bytes at that same PSNR (from our curve)."""
    rows = []
    for rd in [r for r in results if r.get("name", "").startswith("rate-distortion ")]:
        fmt, curves = rd["format"], rd["curves"]
        q = FORMATS[fmt]["quality"]
        for peer in ("thumbor", "sharp"):
            point = next((c for c in curves[peer] if c["quality"] == q), None)
            if point is None:
                continue
            ours = bytes_at_psnr(curves["imaginator"], point["psnr_db"])
            ratio = ours / point["bytes"] if ours else None
            rows.append({"format": fmt, "peer": peer, "peer_quality": q, "peer_psnr_db": point["psnr_db"],
                         "peer_bytes": point["bytes"], "our_bytes_at_equal_psnr": ours and round(ours),
                         "ratio": ratio and round(ratio, 3)})
    if rows:
        print("\nbytes at equal PSNR (each peer at the matrix quality; ours read off our curve)")
        for r in rows:
            print(f"  {r['format']:<5} vs {r['peer']:<8} q{r['peer_quality']}: {r['peer_psnr_db']} dB, "
                  f"{r['peer_bytes']} B; ours {r['our_bytes_at_equal_psnr']} B -> x{r['ratio']}")
        results.append({"name": "bytes at equal PSNR", "rows": rows})
    return rows


def verdicts(results):
    """The issue's goals, per format and client count: speed >= 1.3x the
    faster peer, CPU per image <= 0.75x the cheaper peer, PSNR and SSIM no
    worse than the better peer, bytes <= 1.05x the smaller peer."""
    rows = [r for r in results if r.get("format") and r.get("clients")]
    equal = next((r["rows"] for r in results if r.get("name") == "bytes at equal PSNR"), [])
    qual = {r["format"]: r for r in results if r.get("name", "").startswith("quality ")}
    if not rows:
        return
    print("\ngoals per format (ratios against the best peer in the same run)")
    print("  (lossy formats: bytes at equal PSNR against each peer, the worse ratio; PNG: bytes as served)")
    print("  format set        c  speed x (>=1.30)  cpu x (<=0.75)  dPSNR dB  dSSIM   bytes x (<=1.05)")
    out = []
    for key in sorted({(r["format"], r["set"], r["clients"]) for r in rows}):
        fmt, set_name, clients = key
        here = {r["server"]: r for r in rows if (r["format"], r["set"], r["clients"]) == key}
        ours = here.get("imaginator")
        peers = [here[p] for p in ("thumbor 7.8", "sharp 0.35") if p in here]
        if not ours or not peers:
            continue
        best_rps = max(p["rps"] for p in peers)
        cpus = [p["cpu_s_per_image"] for p in peers if p["cpu_s_per_image"]]
        speed = ours["rps"] / best_rps if best_rps else None
        cpu = ours["cpu_s_per_image"] / min(cpus) if cpus and ours["cpu_s_per_image"] else None
        q = qual.get(fmt, {})
        qp = [q[p] for p in ("thumbor", "sharp") if p in q]
        dpsnr = q["imaginator"]["psnr_db"] - max(p["psnr_db"] for p in qp) if qp and "imaginator" in q else None
        if fmt == "png":
            # Lossless: PSNR against the Lanczos reference measures how close
            # each resizer is to ImageMagick's Lanczos, not the encoder.
            dpsnr = None
        dssim = q["imaginator"]["ssim"] - max(p["ssim"] for p in qp) if qp and "imaginator" in q else None
        nbytes = q["imaginator"]["bytes"] / min(p["bytes"] for p in qp) if qp and "imaginator" in q else None
        eq = [r["ratio"] for r in equal if r["format"] == fmt and r["ratio"]]
        if eq:
            # At equal PSNR: the worse of the two peers' ratios.
            nbytes, dpsnr = max(eq), 0.0

        def mark(v, ok):
            return "   n/a    " if v is None else f"{v:7.2f} {'met ' if ok(v) else 'MISS'}"

        print(f"  {fmt:<6} {set_name:<10} {clients:<2} {mark(speed, lambda v: v >= 1.3)}     "
              f"{mark(cpu, lambda v: v <= 0.75)}  {mark(dpsnr, lambda v: v >= 0)} "
              f"{'n/a' if dssim is None else f'{dssim:+.4f}'}  {mark(nbytes, lambda v: v <= 1.05)}")
        out.append({"format": fmt, "set": set_name, "clients": clients, "speed_vs_best_peer": speed and round(speed, 2),
                    "cpu_vs_cheapest_peer": cpu and round(cpu, 2), "psnr_delta_db": dpsnr and round(dpsnr, 2),
                    "ssim_delta": dssim and round(dssim, 4), "bytes_vs_smallest_peer": nbytes and round(nbytes, 3)})
    results.append({"name": "goals", "rows": out})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="seconds, not minutes; asserts nothing about speed")
    ap.add_argument("--headroom", default=None, help="imaginator decode_headroom (default: its configured default)")
    ap.add_argument("--formats", default=None, help="comma-separated output formats: jpeg,webp,avif,png")
    ap.add_argument("--only", default=None, help="comma-separated scenarios: miss,large,hits,overload,chain,quality,rd")
    args = ap.parse_args()
    ap_build = os.environ.get("IMAGINATOR_BENCH_BUILD")
    global HEADROOM, BUILD
    if args.headroom:
        HEADROOM = args.headroom
    if ap_build:
        BUILD = ap_build
    photos_dir = WORK / "photos"
    set_a = sorted(photos_dir.glob("*-2560x1600.jpg"))
    large = sorted(photos_dir.glob("*-5120x2880.jpg"))
    set_b_dir = WORK / "photos-2k"
    set_b_dir.mkdir(exist_ok=True)
    for p in large:
        out = set_b_dir / p.name.replace("5120x2880", "2048x1152")
        if not out.exists():
            subprocess.run(["magick", str(p), "-resize", "2048x2048", "-quality", "92", str(out)], check=True)
    set_b = sorted(set_b_dir.glob("*.jpg"))
    # PNG sources: the 2560x1600 photos as 1600x1000 PNGs (8-bit RGB).
    set_png_dir = WORK / "photos-png"
    set_png_dir.mkdir(exist_ok=True)
    for p in set_a:
        out = set_png_dir / p.name.replace("2560x1600.jpg", "1600x1000.png")
        if not out.exists():
            subprocess.run(["magick", str(p), "-resize", "1600x1600", "-strip", str(out)], check=True)
    set_png = sorted(set_png_dir.glob("*.png"))
    if args.smoke:
        set_a, set_b, set_png, large = set_a[:2], set_b[:1], set_png[:1], large[:1]
    secs = 3 if args.smoke else 20
    results = []
    print(f"bench: {len(set_a)} photos 2560x1600, {len(set_b)} at 2K, {len(large)} at 14.7 MP; {CORES} cores")
    for name, how in PEERS.items():
        print(f"  {name}: {how}")
    for name, how in ENCODERS.items():
        print(f"  {name} encoders: {how}")
    only = set(args.only.split(",")) if args.only else {"miss", "large", "hits", "overload", "chain", "quality", "rd"}
    print(f"imaginator decode_headroom {HEADROOM or 'default'}")
    formats = tuple(args.formats.split(",")) if args.formats else tuple(FORMATS)
    sets = {"2560x1600": set_a, "2K": set_b, "png": set_png}
    if "miss" in only:
        scenario_miss(sets, secs, results, formats)
    if "large" in only:
        scenario_large(large, 1 if args.smoke else 3, results)
    if "hits" in only:
        scenario_hits(set_a[0], secs, results)
    if "overload" in only:
        scenario_overload(set_a, 600 if args.smoke else 3000, results)
    if "chain" in only:
        scenario_chain_hits(set_a[0], secs, results)
    if "quality" in only:
        quality(sets, results, formats)
    if "rd" in only:
        lossy = tuple(f for f in formats if f != "png")
        rate_distortion(sets, results, lossy, (65, 75, 80) if args.smoke else SWEEP_QUALITIES)
        equal_quality(results)
    verdicts(results)
    partial = args.only or args.formats
    out = WORK / ("results-smoke.json" if args.smoke else "results-partial.json" if partial else "results.json")
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "cores": CORES, "peers": PEERS, "encoders": ENCODERS,
                               "results": results}, indent=2))
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
