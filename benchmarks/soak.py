"""Soak test of the web app: thousands of distinct drawings through the API, and the server's disk and memory.

    python benchmarks/soak.py                         # 2,000 drawings, cache age 60 s
    python benchmarks/soak.py --drawings 500 --json

Starts `python app.py` with its own, empty Gradio cache (GRADIO_TEMP_DIR) and temp folder (TMPDIR), and
MNIST_SUM_CACHE_AGE=--cache-age, so that Gradio's delete_cache (every tenth of the age, files older than
the age) runs many times within the soak; the app's default age is 600 s. Then --clients gradio_client
clients send --drawings distinct drawings (generated digits, each with its own hand), half to /predict as a
sketch and half to /predict_image as a file, and check each answer. Every --sample-every drawings, and
before and after, it records the disk used by the two folders (allocated blocks, directories included,
and how many files and folders) and the server's resident memory.

Passes when: every request is answered, at least --min-accuracy of the digits are read right, and both the
disk use and the memory stay bounded: over the second half of the soak (when the cache is in its steady
state) neither grows by more than --max-growth of its value at the half-way point.
"""

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gradio_client import Client, handle_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from drawings import draw_digit  # noqa: E402  (the benchmarks folder is not a package)
from load import format_checks, free_port, memory_kb, process_tree, start_server, stop_server  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def disk_use(folder: Path) -> dict:
    """Bytes allocated under folder (files and folders, from st_blocks) and how many files and folders."""
    allocated, files, dirs = 0, 0, 0
    for path, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            try:
                st = os.lstat(os.path.join(path, name))
            except FileNotFoundError:  # deleted by the server meanwhile
                continue
            allocated += st.st_blocks * 512
        dirs += len(dirnames)
        files += len(filenames)
    return {"bytes": allocated, "files": files, "dirs": dirs}


def rss_mb(pid: int) -> float:
    """Resident memory of the process tree, MB (10**6 bytes)."""
    return sum(memory_kb(p, "VmRSS") for p in process_tree(pid)) * 1024 / 1e6


def sample(label: str, done: int, server_pid: int, folders: dict[str, Path], started: float) -> dict:
    """One measurement: disk per folder, RSS, drawings done so far, seconds since the soak began."""
    record = {"at": label, "drawings": done, "seconds": round(time.monotonic() - started, 1),
              "rss_mb": round(rss_mb(server_pid), 1)}
    for name, folder in folders.items():
        record[name] = disk_use(folder)
    return record


def write_drawing(folder: Path, index: int) -> tuple[Path, int]:
    """Drawing number index: a digit in its own hand (seeded), as a 400x400 PNG; (path, digit)."""
    digit = index % 10
    path = folder / f"drawing_{index:05d}.png"
    draw_digit(digit, size=400, width=18, seed=50_000 + index).save(path)
    return path, digit


def ask(client: Client, path: Path, number: int, endpoint: str) -> int | None:
    """The digit the app reads in the drawing at path (through /predict or /predict_image)."""
    if endpoint == "/predict_image":
        return client.predict(handle_file(str(path)), number, api_name=endpoint)["digit"]
    sketch = {"background": None, "layers": [], "composite": handle_file(str(path))}
    label = client.predict(sketch, number, api_name=endpoint)[0].get("label")
    return int(label) if label not in (None, "") and label.isdigit() else None


def run_soak(args) -> dict:
    """Start the app, send the drawings, sample disk and memory, stop the app; the report."""
    with tempfile.TemporaryDirectory(prefix="mnist-sum-soak-") as tmp:
        tmp = Path(tmp)
        folders = {"cache": tmp / "gradio-cache", "temp": tmp / "tmp"}
        for folder in folders.values():
            folder.mkdir()
        drawings_dir = tmp / "drawings"
        drawings_dir.mkdir()
        port = free_port()
        env = {"GRADIO_TEMP_DIR": str(folders["cache"]), "TMPDIR": str(folders["temp"]),
               "MNIST_SUM_CACHE_AGE": str(args.cache_age)}
        server = start_server(ROOT / "app.py", port, tmp / "server.log", args.startup_timeout, env=env)
        url = f"http://127.0.0.1:{port}/"
        started = time.monotonic()
        samples = [sample("before", 0, server.pid, folders, started)]
        lock = threading.Lock()
        counter = {"done": 0, "right": 0, "errors": []}
        try:
            def worker(index: int) -> None:
                """Send the drawings index, index + clients, ... from one client."""
                client = Client(url, verbose=False)
                for i in range(index, args.drawings, args.clients):
                    path, digit = write_drawing(drawings_dir, i)
                    endpoint = "/predict" if i % 2 else "/predict_image"
                    try:
                        read = ask(client, path, (3 * i) % 10, endpoint)
                        error = None
                    except Exception as e:  # any failure of a request is an error in the report
                        read, error = None, f"{endpoint}: {type(e).__name__}: {e}"[:300]
                    path.unlink()
                    with lock:
                        counter["done"] += 1
                        counter["right"] += read == digit
                        if error:
                            counter["errors"].append(error)
                        if counter["done"] % args.sample_every == 0:
                            samples.append(sample("during", counter["done"], server.pid, folders, started))
                client.close()

            with ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(worker, range(args.clients)))
            samples.append(sample("after", counter["done"], server.pid, folders, started))
            alive = server.poll() is None
        finally:
            stop_server(server)
            log = (tmp / "server.log").read_text(errors="replace")
    return summarize(args, samples, counter, alive, log)


def growth(samples: list[dict], key) -> float:
    """Relative growth of key(sample) over the second half of the soak: last / half-way value - 1."""
    by_count = [s for s in samples if s["at"] != "before"]
    half = min(by_count, key=lambda s: abs(s["drawings"] - by_count[-1]["drawings"] / 2))
    return key(by_count[-1]) / max(key(half), 1e-9) - 1


def summarize(args, samples, counter, alive, log) -> dict:
    """Figures and verdicts."""
    disk = lambda s: s["cache"]["bytes"] + s["temp"]["bytes"]  # noqa: E731
    disk_growth, rss_growth = growth(samples, disk), growth(samples, lambda s: s["rss_mb"])
    checks = {
        "every drawing answered": counter["done"] == args.drawings and not counter["errors"],
        f"at least {args.min_accuracy:.0%} read right": counter["right"] >= args.min_accuracy * args.drawings,
        f"disk bounded (second-half growth <= {args.max_growth:.0%})": disk_growth <= args.max_growth,
        f"memory bounded (second-half growth <= {args.max_growth:.0%})": rss_growth <= args.max_growth,
        "server up at the end": alive,
    }
    peak = max(samples, key=disk)
    return {
        "drawings": counter["done"], "right": counter["right"], "clients": args.clients, "cache_age_s": args.cache_age,
        "seconds": samples[-1]["seconds"], "cpu_count": os.cpu_count(), "load_average": os.getloadavg()[0],
        "disk_mb": {"before": disk(samples[0]) / 1e6, "peak": disk(peak) / 1e6, "after": disk(samples[-1]) / 1e6},
        "rss_mb": {"before": samples[0]["rss_mb"], "peak": max(s["rss_mb"] for s in samples),
                   "after": samples[-1]["rss_mb"]},
        "second_half_growth": {"disk": disk_growth, "rss": rss_growth},
        "samples": samples, "errors": counter["errors"][:5], "checks": checks, "ok": all(checks.values()),
        "server_log_tail": "" if all(checks.values()) else log[-2000:],
    }


def format_report(r: dict) -> str:
    """The report as plain text."""
    lines = [f"soak: {r['drawings']} drawings, {r['clients']} clients, cache age {r['cache_age_s']} s, "
             f"{r['seconds']:.0f} s, {r['cpu_count']} CPUs (1-min load average {r['load_average']:.1f} at the end)",
             f"  read right      {r['right']}/{r['drawings']}",
             "  disk MB         before {before:.2f}   peak {peak:.2f}   after {after:.2f}".format(**r["disk_mb"]),
             "  RSS MB          before {before:.0f}   peak {peak:.0f}   after {after:.0f}".format(**r["rss_mb"]),
             "  second half     disk {disk:+.0%}, RSS {rss:+.0%}".format(**r["second_half_growth"]),
             "  drawings   s    cache MB (files/dirs)   temp MB (files)   RSS MB"]
    for s in r["samples"]:
        lines.append(f"  {s['drawings']:8d} {s['seconds']:5.0f}    {s['cache']['bytes'] / 1e6:7.2f} "
                     f"({s['cache']['files']:5d}/{s['cache']['dirs']:5d})   {s['temp']['bytes'] / 1e6:6.2f} "
                     f"({s['temp']['files']:3d})        {s['rss_mb']:6.0f}")
    lines += [f"  error: {e}" for e in r["errors"]]
    return "\n".join(lines + format_checks(r))


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python benchmarks/soak.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--drawings", type=int, default=2000, help="distinct drawings to send")
    p.add_argument("--clients", type=int, default=4, help="concurrent clients")
    p.add_argument("--cache-age", type=int, default=60, help="MNIST_SUM_CACHE_AGE for the server, seconds")
    p.add_argument("--sample-every", type=int, default=200, help="drawings between two measurements")
    p.add_argument("--min-accuracy", type=float, default=0.95, help="share of drawings that must be read right")
    p.add_argument("--max-growth", type=float, default=0.25,
                   help="largest growth of disk use and RSS allowed over the second half of the soak")
    p.add_argument("--startup-timeout", type=float, default=180, help="seconds to wait for the server to answer")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a report")
    return p


def main(argv=None) -> int:
    """Entry point; exit status 1 when a check fails."""
    args = build_parser().parse_args(argv)
    if min(args.drawings, args.clients, args.cache_age, args.sample_every) < 1:
        sys.exit("error: --drawings, --clients, --cache-age and --sample-every must be at least 1")
    try:
        report = run_soak(args)
    except RuntimeError as e:
        sys.exit(f"error: {e}")
    print(json.dumps(report) if args.json else format_report(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
