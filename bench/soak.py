#!/usr/bin/env python3
"""Memory soak benchmark for imaginator (a benchmark, not a timed test).

Starts the service, drives a bounded mixed workload on 127.0.0.1, samples
/debug/memory every second into CSV, and draws a PNG of heap, RSS anon, page
cache and working set over time (when matplotlib is importable).

Phases: warm-up load -> quiesce -> baseline sample -> main load -> quiesce ->
final sample. Heap growth is final minus baseline, both taken at rest, so a
burst in flight is never mistaken for a leak.

  bench/soak.py --duration 600                       # the recorded run (docs/memory.md)
  bench/soak.py --duration 60 --max-heap-growth-mib 8 # the CI guard
"""
import argparse
import atexit
import csv
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path


def scratch_dir(prefix="imaginator-"):
    """A temporary directory removed when this script exits."""
    path = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, timeout=60):
    headers = {"Content-Type": "application/json"} if url.endswith("/debug/profiling") else {}
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def load_photos(extra_dir):
    photos = [p.read_bytes() for p in sorted((ROOT / "tests/fixtures").glob("photo.*"))]
    photos.append((ROOT / "tests/fixtures/alpha.png").read_bytes())
    large = []
    if extra_dir and Path(extra_dir).is_dir():
        for p in sorted(Path(extra_dir).glob("*.jpg")):
            (large if "5120" in p.name else photos).append(p.read_bytes())
    return photos, large


class Load:
    """A bounded mixed workload from `threads` clients until `stop` is set."""

    def __init__(self, base, photos, large, threads):
        self.base, self.photos, self.large, self.threads = base, photos, large, threads
        self.stop = threading.Event()
        self.done = 0
        self.status = {}
        self.lock = threading.Lock()

    def one(self, rng):
        r = rng.random()
        if self.large and r < 0.05:
            path, body = f"/transform/thumbnail?width={rng.randint(200, 600)}", rng.choice(self.large)
        elif r < 0.55:
            path, body = f"/transform/thumbnail?width={rng.randint(32, 1024)}", rng.choice(self.photos)
        elif r < 0.85:
            path, body = f"/transform/avatar?size={rng.randint(32, 512)}", rng.choice(self.photos)
        else:
            path, body = "/transform/preview", rng.choice(self.photos)
        status, _ = http("POST", self.base + path, body)
        with self.lock:
            self.done += 1
            self.status[status] = self.status.get(status, 0) + 1

    def run_for(self, seconds, seed):
        self.stop.clear()
        until = time.monotonic() + seconds

        def worker(i):
            rng = random.Random(seed * 1000 + i)
            while not self.stop.is_set() and time.monotonic() < until:
                self.one(rng)

        ts = [threading.Thread(target=worker, args=(i,)) for i in range(self.threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()


class Sampler(threading.Thread):
    FIELDS = ["t", "phase", "requests", "jemalloc_allocated", "jemalloc_resident", "jemalloc_retained",
              "rss", "rss_anon", "rss_file", "imagemagick_memory", "cgroup_working_set",
              "cgroup_active_file", "cgroup_inactive_file"]

    def __init__(self, base, csv_path, load):
        super().__init__(daemon=True)
        self.base, self.load = base, load
        self.rows = []
        self.phase = "start"
        self.halt = threading.Event()
        self.file = open(csv_path, "w", newline="")
        self.writer = csv.writer(self.file)
        self.writer.writerow(self.FIELDS)
        self.t0 = time.monotonic()

    def sample(self):
        status, body = http("GET", self.base + "/debug/memory", timeout=10)
        if status != 200:
            return None
        m = json.loads(body)
        row = [round(time.monotonic() - self.t0, 1), self.phase, self.load.done,
               m["jemalloc"]["allocated"], m["jemalloc"]["resident"], m["jemalloc"]["retained"],
               m["process"]["rss"], m["process"]["rss_anon"], m["process"]["rss_file"],
               m["imagemagick"]["memory"], m["cgroup"]["working_set"],
               m["cgroup"]["active_file"], m["cgroup"]["inactive_file"]]
        self.rows.append(dict(zip(self.FIELDS, row)))
        self.writer.writerow(row)
        self.file.flush()
        return self.rows[-1]

    def run(self):
        while not self.halt.is_set():
            self.sample()
            self.halt.wait(1.0)


def mib(b):
    return f"{b / 1048576:.1f} MiB"


def plot(rows, png):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"(matplotlib not importable: no plot; CSV has the data)")
        return
    t = [r["t"] for r in rows]
    series = [
        ("jemalloc allocated (live heap)", "jemalloc_allocated"),
        ("jemalloc resident", "jemalloc_resident"),
        ("process RSS anon", "rss_anon"),
        ("ImageMagick pixel cache", "imagemagick_memory"),
    ]
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(11, 8), sharex=True)
    for label, key in series:
        ax.plot(t, [(r[key] or 0) / 1048576 for r in rows], label=label)
    ax.set_ylabel("MiB")
    ax.set_title("imaginator memory during the soak (process)")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    if rows[0]["cgroup_working_set"] is not None:
        ax2.plot(t, [(r["cgroup_working_set"] or 0) / 1048576 for r in rows], label="cgroup working set (cAdvisor)")
        ax2.plot(t, [(r["cgroup_active_file"] or 0) / 1048576 for r in rows], label="active page cache")
        ax2.plot(t, [(r["cgroup_inactive_file"] or 0) / 1048576 for r in rows], label="inactive page cache")
        ax2.plot(t, [(r["rss_anon"] or 0) / 1048576 for r in rows], label="process RSS anon")
        ax2.set_title("the container's view (the cgroup holds every process of the container)")
        ax2.legend(loc="upper left")
    ax2.set_ylabel("MiB")
    ax2.set_xlabel("seconds")
    ax2.grid(alpha=0.3)
    for a in (ax, ax2):
        phases = {}
        for r in rows:
            phases.setdefault(r["phase"], r["t"])
        for name, start in phases.items():
            a.axvline(start, color="grey", lw=0.6, ls=":")
            a.text(start, a.get_ylim()[1] * 0.97, name, fontsize=7, color="grey")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    print(f"plot: {png}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=str(ROOT / "target/release/imaginator"))
    ap.add_argument("--duration", type=int, default=600, help="seconds of main load")
    ap.add_argument("--warmup", type=int, default=None, help="seconds of warm-up load (default: 10%% of duration, at least 10)")
    ap.add_argument("--quiesce", type=int, default=15, help="seconds of rest before each at-rest sample")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--photos", default=str(ROOT / "bench/.work/photos"), help="extra JPEGs (bench/fetch-photos)")
    ap.add_argument("--out", default=str(ROOT / "bench/.work/soak"))
    ap.add_argument("--profiling", action="store_true", help="activate jemalloc heap profiling first (to measure its cost)")
    ap.add_argument("--max-heap-growth-mib", type=float, default=None, help="fail if heap at rest grows more")
    args = ap.parse_args()
    warmup = args.warmup if args.warmup is not None else max(10, args.duration // 10)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data = scratch_dir("imaginator-soak-")
    env = dict(os.environ, IMAGINATOR_LISTEN=f"127.0.0.1:{port}", IMAGINATOR_DATA_DIR=data,
               IMAGINATOR_ALIASES_DIR=str(ROOT / "aliases"), IMAGINATOR_WORKERS=str(args.workers),
               IMAGINATOR_LOG__FORMAT="json", IMAGINATOR_LOG__FILTER="warn")
    log = open(out / "server.log", "w")
    server = subprocess.Popen([args.binary], env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                if http("GET", base + "/readyz", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            sys.exit("server did not become ready")

        if args.profiling:
            status, body = http("POST", base + "/debug/profiling", json.dumps({"active": True}).encode(), timeout=10)
            print(f"profiling activated: {status} {body.decode().strip()}")
        photos, large = load_photos(args.photos)
        load = Load(base, photos, large, args.clients)
        sampler = Sampler(base, out / "memory.csv", load)
        sampler.start()
        print(f"soak: {args.clients} clients, {args.workers} workers, {len(photos)} photos + {len(large)} large; "
              f"warm-up {warmup}s, load {args.duration}s, quiesce {args.quiesce}s")

        sampler.phase = "warm-up"
        load.run_for(warmup, seed=1)
        sampler.phase = "rest-1"
        time.sleep(args.quiesce)
        baseline = sampler.sample()
        warm_requests = load.done
        sampler.phase = "load"
        t = time.monotonic()
        load.run_for(args.duration, seed=2)
        load_seconds = time.monotonic() - t
        sampler.phase = "rest-2"
        time.sleep(args.quiesce)
        final = sampler.sample()
        sampler.halt.set()
        sampler.join()
    finally:
        server.terminate()
        server.wait(timeout=60)

    rows = sampler.rows
    during = [r for r in rows if r["phase"] == "load"]
    growth = final["jemalloc_allocated"] - baseline["jemalloc_allocated"]
    peak_resident = max(r["jemalloc_resident"] for r in during) if during else 0
    peak_alloc = max(r["jemalloc_allocated"] for r in during) if during else 0
    requests = load.done - warm_requests
    print()
    print(f"requests during load      {requests} in {load_seconds:.0f}s ({requests / load_seconds:.1f} req/s); statuses {load.status}")
    print(f"heap at rest after warm-up {mib(baseline['jemalloc_allocated'])}")
    print(f"heap at rest after load    {mib(final['jemalloc_allocated'])}  (growth {mib(growth)})")
    print(f"RSS anon at rest           {mib(baseline['rss_anon'])} -> {mib(final['rss_anon'])}  (drift {mib(final['rss_anon'] - baseline['rss_anon'])})")
    print(f"peak during load           heap {mib(peak_alloc)}, jemalloc resident {mib(peak_resident)}, RSS anon {mib(max(r['rss_anon'] for r in during) if during else 0)}")
    print(f"resident/allocated at rest {final['jemalloc_resident'] / max(1, final['jemalloc_allocated']):.2f}")
    rest = [r for r in rows if r["phase"] == "rest-2"]
    if during and rest:
        stop_t = rest[0]["t"]
        settled = next((r for r in rest if r["rss_anon"] <= final["rss_anon"] + 8 * 1048576), None)
        if settled:
            print(f"RSS anon back within 8 MiB of its rest level {settled['t'] - stop_t:.1f}s after the load stopped "
                  f"(1 s sampling; from {mib(during[-1]['rss_anon'])})")
    print(f"csv: {out / 'memory.csv'}")
    plot(rows, out / "memory.png")
    bad = [s for s in load.status if s >= 500 and s != 503]
    if bad:
        sys.exit(f"FAIL: server errors {bad}")
    if args.max_heap_growth_mib is not None and growth > args.max_heap_growth_mib * 1048576:
        sys.exit(f"FAIL: heap at rest grew {mib(growth)}, more than {args.max_heap_growth_mib} MiB")
    print("ok")


if __name__ == "__main__":
    main()
