"""Load test of the web app: many concurrent API clients, a stream of bad requests, and the server's memory.

    python benchmarks/load.py
    python benchmarks/load.py --clients 32 --requests 20 --json

Starts `python app.py` on 127.0.0.1 (a free port, via GRADIO_SERVER_NAME / GRADIO_SERVER_PORT) and waits
for it to answer. Then --clients gradio_client clients send --requests requests each to /predict, all at
once, over varied drawings: the demo/examples/digit_<d>.png examples (whose answers must all be right) and
digits drawn here with random hands (accuracy reported only). Meanwhile one more client sends bad requests:
blank sketches, numbers -1, 10, 2.5 and None, a truncated PNG and a 12000x12000 PNG of ~150 KB (a
decompression bomb). A background thread polls the server's resident memory (its process tree, from
/proc). Passes when: no good request fails, every example is answered right, every bad request is refused
(a blank sketch may instead get the "draw a digit" answer), each refusal in the app's words (an error
message starting "The ..."), the server is still up and answering afterwards, and its peak resident memory
stays under --max-memory-mb.
"""

import argparse
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from gradio_client import Client, handle_file
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from drawings import draw_digit  # noqa: E402  (the benchmarks folder is not a package)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "demo" / "examples"
BAD_KINDS = ("blank", "number -1", "number 10", "number 2.5", "number None", "truncated png", "12000x12000 png")


# --- inputs ---------------------------------------------------------------------------------------------

def cpu_model() -> str:
    """The CPU's model name (lscpu, else /proc/cpuinfo)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.strip().startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"

def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_bomb_png(path: Path, side: int = 12000, noisy_rows: int = 100) -> Path:
    """A 1-bit greyscale PNG of side x side pixels, white with a band of noise: ~150 KB on disk, side**2 pixels.

    Written row by row with zlib, so making it never holds more than one row in memory.
    """
    row_bytes = (side + 7) // 8
    white = b"\x00" + b"\xff" * row_bytes  # filter byte 0, then all-white bits
    noise = os.urandom(row_bytes * noisy_rows)
    z = zlib.compressobj(9)
    parts = []
    first_noisy = side // 2 - noisy_rows // 2
    for y in range(side):
        if first_noisy <= y < first_noisy + noisy_rows:
            i = y - first_noisy
            parts.append(z.compress(b"\x00" + noise[i * row_bytes:(i + 1) * row_bytes]))
        else:
            parts.append(z.compress(white))
    parts.append(z.flush())
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # bit depth 1, greyscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", b"".join(parts))
                     + png_chunk(b"IEND", b""))
    return path


def make_inputs(folder: Path, generated: int) -> tuple[list[dict], dict[str, Path]]:
    """Good drawings (examples first, then generated ones) and the bad files, written into folder."""
    good = []
    for d in range(10):
        path = EXAMPLES / f"digit_{d}.png"
        if path.is_file():
            good.append({"path": path, "digit": d, "kind": "example"})
    for i in range(generated):
        d = i % 10
        path = folder / f"generated_{i:03d}_{d}.png"
        draw_digit(d, size=800, width=25, seed=1000 + i).save(path)
        good.append({"path": path, "digit": d, "kind": "generated"})
    blank = folder / "blank.png"
    Image.new("RGBA", (800, 800), (255, 255, 255, 255)).save(blank)  # the untouched canvas
    sample = folder / "sample.png"
    draw_digit(4).save(sample)
    truncated = folder / "truncated.png"
    truncated.write_bytes(sample.read_bytes()[: sample.stat().st_size // 2])
    bad = {"blank": blank, "sample": sample, "truncated png": truncated,
           "12000x12000 png": write_bomb_png(folder / "bomb.png")}
    return good, bad


# --- the server -----------------------------------------------------------------------------------------

def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(app: Path, port: int, log: Path, timeout: float, env: dict | None = None) -> subprocess.Popen:
    """Start `python app.py` on 127.0.0.1:port (env: extra variables) and wait (at most timeout s) until it answers."""
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1", **(env or {})}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, str(app)], cwd=app.parent, env=env, stdout=f,
                                stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited with status {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            pass
        time.sleep(0.5)
    stop_server(proc)
    raise RuntimeError(f"app did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def stop_server(proc: subprocess.Popen) -> None:
    """Terminate the server (and kill it if it does not stop within 10 s)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants, from /proc (bounded by the number of processes)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo and len(tree) < 10_000:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def memory_kb(pid: int, field: str) -> int:
    """A memory field (VmRSS, VmHWM) of /proc/<pid>/status in kB; 0 when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class MemoryMonitor(threading.Thread):
    """Polls the resident memory of a process tree; `peak_mb` is the highest sum seen (or the server's VmHWM).

    Above kill_mb it SIGKILLs the tree at once, so a runaway server cannot take the machine down with it.
    """

    def __init__(self, pid: int, kill_mb: float, interval: float = 0.05):
        super().__init__(daemon=True)
        self.pid, self.kill_kb, self.interval = pid, kill_mb * 1e6 / 1024, interval
        self.peak_kb = 0
        self.killed = False
        self.stop_event = threading.Event()

    def run(self) -> None:
        """Poll until stopped (or until the tree is killed for its memory)."""
        while not self.stop_event.wait(self.interval):
            tree = process_tree(self.pid)
            total = sum(memory_kb(p, "VmRSS") for p in tree)
            self.peak_kb = max(self.peak_kb, total, memory_kb(self.pid, "VmHWM"))
            if total > self.kill_kb:
                for p in tree:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
                self.killed = True
                return

    @property
    def peak_mb(self) -> float:
        """Peak resident memory in MB (10**6 bytes)."""
        return self.peak_kb * 1024 / 1e6


# --- requests -------------------------------------------------------------------------------------------

def sketch_value(path: Path | None) -> dict:
    """/predict's value as API clients send it: the Sketchpad-style dict, the drawing as its composite."""
    return {"background": None, "layers": [], "composite": handle_file(str(path)) if path else None}


def read_answer(result) -> tuple[int | None, int | None]:
    """(digit, sum) from /predict's outputs (digit label, sum label, ...); None where there is no label."""
    def label(value):
        """The int in a gr.Label value, or None."""
        if isinstance(value, dict) and value.get("label") not in (None, ""):
            return int(value["label"])
        return None

    return label(result[0]), label(result[1])


def describe(error: BaseException) -> str:
    """An exception as one line: type, message and where in gradio_client it surfaced (else the innermost frame)."""
    frames = traceback.extract_tb(error.__traceback__)
    client_frames = [f for f in frames if "gradio_client" in f.filename]
    frame = (client_frames or frames or [None])[-1]
    where = ""
    if frame:
        where = f" (in {Path(frame.filename).parent.name}/{Path(frame.filename).name}:{frame.lineno} {frame.name})"
    return f"{type(error).__name__}: {error}"[:300] + where


def good_client(url: str, index: int, good: list[dict], n: int, timeout: float, deadline: float) -> list[dict]:
    """One client's n requests, alternating examples and generated drawings; one record per request."""
    client = Client(url, verbose=False)
    examples = [g for g in good if g["kind"] == "example"] or good
    generated = [g for g in good if g["kind"] == "generated"] or good
    records = []
    for j in range(n):
        if time.monotonic() > deadline:
            break
        pool = examples if j % 2 == 0 else generated
        item = pool[(index * n + j) // 2 % len(pool)]
        number = (index + 3 * j) % 10
        start = time.perf_counter()
        record = {"kind": item["kind"], "digit": item["digit"], "number": number}
        try:
            result = client.submit(sketch_value(item["path"]), number, api_name="/predict").result(timeout=timeout)
            digit, total = read_answer(result)
            record.update(ok=True, correct=(digit == item["digit"] and total == item["digit"] + number))
        except Exception as e:  # any failure of a good request counts as an error
            record.update(ok=False, correct=False, error=describe(e))
        record["seconds"] = time.perf_counter() - start
        records.append(record)
    return records


def bad_request(client: Client, kind: str, bad: dict[str, Path], timeout: float) -> dict:
    """Send one bad request; `refused` when the app answers with an error (or, for a blank, with no digit)."""
    sketch, number = bad["sample"], 4
    if kind == "blank":
        sketch = bad["blank"]
    elif kind.startswith("number "):
        number = {"-1": -1, "10": 10, "2.5": 2.5, "None": None}[kind.split()[1]]
    else:
        sketch = bad[kind]
    start = time.perf_counter()
    try:
        result = client.submit(sketch_value(sketch), number, api_name="/predict").result(timeout=timeout)
        digit, _ = read_answer(result)
        outcome = {"refused": kind == "blank" and digit is None, "answer": repr(result[:3])[:200]}
    except Exception as e:
        # refused in the app's words: an AppError whose message says what is wrong, not Gradio's generic one
        outcome = {"refused": True, "worded": str(e).startswith("The "), "error": describe(e)}
    return {"kind": kind, "seconds": time.perf_counter() - start, **outcome}


def bad_stream(url: str, bad: dict[str, Path], stop: threading.Event, limit: int, timeout: float) -> list[dict]:
    """Bad requests, kinds in turn, until stop is set or limit requests are sent (every kind at least once)."""
    client = Client(url, verbose=False)
    records = []
    for i in range(limit):
        if stop.is_set() and i >= len(BAD_KINDS):
            break
        records.append(bad_request(client, BAD_KINDS[i % len(BAD_KINDS)], bad, timeout))
    return records


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linearly interpolated; nan for no values."""
    if not values:
        return float("nan")
    return float(np.percentile(values, q))  # linear interpolation between the nearest ranks


def run_load(args) -> dict:
    """Start the app, run the load and the bad stream, check the server afterwards; the report."""
    with tempfile.TemporaryDirectory(prefix="mnist-sum-load-") as tmp:
        tmp = Path(tmp)
        good, bad = make_inputs(tmp, args.generated)
        load_before = os.getloadavg()[0]
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        started = time.monotonic()
        server = start_server(Path(args.app).resolve(), port, tmp / "server.log", args.startup_timeout)
        startup_s = time.monotonic() - started
        monitor = MemoryMonitor(server.pid, kill_mb=args.kill_memory_mb)
        monitor.start()
        try:
            stop = threading.Event()
            deadline = time.monotonic() + args.timeout
            with ThreadPoolExecutor(max_workers=args.clients + 1) as pool:
                bad_future = pool.submit(bad_stream, url, bad, stop, args.bad_limit, args.request_timeout)
                load_start = time.perf_counter()
                futures = [pool.submit(good_client, url, i, good, args.requests, args.request_timeout, deadline)
                           for i in range(args.clients)]
                records, client_errors = [], []
                for f in futures:
                    try:
                        records.extend(f.result())
                    except Exception as e:  # a client that could not even connect
                        client_errors.append(describe(e))
                load_s = time.perf_counter() - load_start
                stop.set()
                bad_records = bad_future.result()
            alive = server.poll() is None
            after = good_client(url, 0, good, 2, args.request_timeout, time.monotonic() + 60) if alive else []
        finally:
            monitor.stop_event.set()
            monitor.join(timeout=5)
            stop_server(server)
            server_log = (tmp / "server.log").read_text(errors="replace")
    report = summarize(args, records, client_errors, bad_records, after, alive, load_s, startup_s, monitor.peak_mb,
                       server_log)
    report["load_average"] = [load_before, os.getloadavg()[0]]
    report["killed_for_memory"] = monitor.killed
    return report


def summarize(args, records, client_errors, bad_records, after, alive, load_s, startup_s, peak_mb,
              server_log) -> dict:
    """Figures and verdicts from the raw records."""
    ok = [r for r in records if r["ok"]]
    latencies = [r["seconds"] for r in ok]
    examples = [r for r in records if r["kind"] == "example"]
    generated = [r for r in records if r["kind"] == "generated"]
    bad_by_kind = {}
    for r in bad_records:
        k = bad_by_kind.setdefault(r["kind"], {"sent": 0, "refused": 0, "examples": []})
        k["sent"] += 1
        k["refused"] += r["refused"]
        if len(k["examples"]) < 1:
            k["examples"].append(r.get("error") or r.get("answer"))
    expected_requests = args.clients * args.requests
    checks = {
        "all good requests sent and answered (0 errors)": len(ok) == expected_requests and not client_errors,
        "every answered example right": any(r["ok"] for r in examples) and all(r["correct"] for r in examples
                                                                               if r["ok"]),
        "every bad request refused": bool(bad_records) and all(r["refused"] for r in bad_records),
        "every refusal says what is wrong": all(r.get("worded", True) for r in bad_records),
        "server up and answering afterwards": alive and len(after) == 2 and all(r["ok"] for r in after),
        f"peak memory under {args.max_memory_mb:.0f} MB": peak_mb < args.max_memory_mb,
    }
    return {
        "clients": args.clients, "requests_per_client": args.requests, "cpu_count": os.cpu_count(),
        "startup_s": startup_s, "load_s": load_s,
        "requests": len(records), "errors": len(records) - len(ok) + len(client_errors),
        "requests_per_s": len(ok) / load_s if load_s else 0.0,
        "latency_ms": {"p50": 1e3 * percentile(latencies, 50), "p95": 1e3 * percentile(latencies, 95),
                       "p99": 1e3 * percentile(latencies, 99),
                       "mean": 1e3 * statistics.fmean(latencies) if latencies else float("nan")},
        "examples": {"requests": len(examples), "answered": sum(r["ok"] for r in examples),
                     "correct": sum(r["correct"] for r in examples)},
        "generated": {"requests": len(generated), "answered": sum(r["ok"] for r in generated),
                      "correct": sum(r["correct"] for r in generated)},
        "bad": bad_by_kind, "peak_memory_mb": peak_mb,
        "error_samples": ([r["error"] for r in records if not r["ok"]] + client_errors)[:5],
        "checks": checks, "ok": all(checks.values()),
        "server_log_tail": server_log[-1500:] if not all(checks.values()) else "",
    }


def format_report(r: dict) -> str:
    """The report as plain text."""
    lat = r["latency_ms"]
    lines = [
        f"load: {r['clients']} clients x {r['requests_per_client']} requests, {r['cpu_count']} CPUs "
        f"(server started in {r['startup_s']:.1f} s; 1-min load average {r['load_average'][0]:.1f} before,"
        f" {r['load_average'][1]:.1f} after, this run included)",
        f"  requests        {r['requests']} in {r['load_s']:.1f} s = {r['requests_per_s']:.1f} requests/s",
        f"  latency ms      p50 {lat['p50']:.0f}   p95 {lat['p95']:.0f}   p99 {lat['p99']:.0f}"
        f"   mean {lat['mean']:.0f}",
        f"  errors          {r['errors']}",
        f"  examples right  {r['examples']['correct']}/{r['examples']['answered']} answered"
        f" ({r['examples']['requests']} sent)",
        f"  generated right {r['generated']['correct']}/{r['generated']['answered']} answered"
        f" ({r['generated']['requests']} sent; drawn here, not a check)",
        f"  peak memory     {r['peak_memory_mb']:.0f} MB (server process tree)"
        + (" -- KILLED: passed --kill-memory-mb" if r["killed_for_memory"] else ""),
        "bad requests       sent  refused  first answer",
    ]
    for kind, k in r["bad"].items():
        lines.append(f"  {kind:<16} {k['sent']:4d} {k['refused']:8d}  {str(k['examples'][0])[:90]}")
    for sample in r["error_samples"]:
        lines.append(f"  error: {sample}")
    return "\n".join(lines + format_checks(r))


def format_checks(r: dict) -> list[str]:
    """The report's closing lines: each check ok or FAIL, then the server log's tail when there is one."""
    lines = ["checks", *(f"  {'ok  ' if passed else 'FAIL'}  {name}" for name, passed in r["checks"].items())]
    if r["server_log_tail"]:
        lines += ["server log (tail):", r["server_log_tail"]]
    return lines


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python benchmarks/load.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--app", default=str(ROOT / "app.py"), help="the app to start")
    p.add_argument("--clients", type=int, default=32, help="concurrent clients")
    p.add_argument("--requests", type=int, default=20, help="requests per client")
    p.add_argument("--generated", type=int, default=40, help="drawings generated besides the examples")
    p.add_argument("--bad-limit", type=int, default=200, help="most bad requests to send")
    p.add_argument("--max-memory-mb", type=float, default=1500, help="peak resident memory allowed to the server")
    p.add_argument("--kill-memory-mb", type=float, default=3000,
                   help="kill the server outright if its process tree's resident memory passes this (a safety net)")
    p.add_argument("--startup-timeout", type=float, default=180, help="seconds to wait for the server to answer")
    p.add_argument("--request-timeout", type=float, default=120, help="seconds to wait for one answer")
    p.add_argument("--timeout", type=float, default=900, help="seconds after which clients stop sending")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a report")
    return p


def main(argv=None) -> int:
    """Entry point; exit status 1 when a check fails."""
    args = build_parser().parse_args(argv)
    if min(args.clients, args.requests, args.bad_limit) < 1 or args.generated < 0:
        sys.exit("error: --clients, --requests and --bad-limit must be at least 1")
    try:
        report = run_load(args)
    except RuntimeError as e:
        sys.exit(f"error: {e}")
    print(json.dumps(report) if args.json else format_report(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
