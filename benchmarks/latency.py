"""Latency of one prediction from an 800x800 drawing against the bare network forward, and batch throughput.

    python benchmarks/latency.py --data-dir ../shared/mnist
    python benchmarks/latency.py --data-dir ../shared/mnist --json

single: mnist_sum.Predictor.predict(canvas, number) on an 800x800 RGBA canvas holding a drawn digit (black
strokes ~25 px wide, opaque white paper) against model(image, number) for one (1, 1, 28, 28) input under
torch.inference_mode(). The two alternate call by call after a warm-up; median and p95 of each and the ratio
of the medians (target <= 2.5), with 1 thread and with 2 threads.
batch: the 10,000 MNIST test images, with mnist_sum.evaluate.evaluate_model (digit, sum and the 100,000-pair
consistency check) and with a plain batched forward, in images per second.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

# Run as written from a clone, installed or not; the benchmarks folder itself is not a package.
sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
from drawings import draw_digit_array  # noqa: E402
from mnist_sum.cli import HelpFormatter  # noqa: E402
from mnist_sum.data import DataNotFoundError, one_hot, open_split  # noqa: E402
from mnist_sum.evaluate import evaluate_model  # noqa: E402
from mnist_sum.model import MNISTSumNet  # noqa: E402
from mnist_sum.weights import SHIPPED_WEIGHTS, WeightsError, load_model  # noqa: E402

TARGET_RATIO = 2.5


def load_network(weights: str | None) -> tuple[MNISTSumNet, str]:
    """The trained network, or a randomly initialised one when no weights exist (timing is the same)."""
    path = Path(weights) if weights else SHIPPED_WEIGHTS
    if path.is_file():
        return load_model(path), str(path)
    torch.manual_seed(0)
    return MNISTSumNet().eval(), "random init (no weights file)"


def make_predictor(weights: str | None):
    """mnist_sum.Predictor for weights, or None with the reason when it cannot be built."""
    try:
        from mnist_sum.predict import Predictor
    except ImportError as e:
        return None, f"mnist_sum.Predictor not available ({e})"
    try:
        return Predictor(weights=weights), None
    except WeightsError as e:
        return None, f"Predictor cannot load weights: {e}"


def time_single(model, predictor, threads: int, calls: int, warmup: int) -> dict:
    """Alternate predictor.predict and the bare forward `calls` times each; seconds per call, summarised."""
    torch.set_num_threads(threads)
    canvas = draw_digit_array(7, size=800, width=25)
    number = 5
    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 4:24, 12:16] = 2.8  # an upright bar; any input costs the same
    n = one_hot(torch.tensor([number]))

    def bare() -> None:
        """The network alone on one 28x28 input."""
        with torch.inference_mode():
            model(x, n)

    def full() -> None:
        """The whole prediction from the 800x800 canvas."""
        if predictor.predict(canvas, number) is None:
            raise RuntimeError("the predictor saw no digit on the benchmark canvas")

    timings = {"bare": []} if predictor is None else {"predict": [], "bare": []}
    runs = {"predict": full, "bare": bare}
    for i in range(warmup + calls):
        for name in (list(timings) if i % 2 == 0 else list(reversed(timings))):
            start = time.perf_counter()
            runs[name]()
            seconds = time.perf_counter() - start
            if i >= warmup:
                timings[name].append(seconds)
    out = {"threads": threads, "calls": calls}
    for name, values in timings.items():
        out[name] = {"median_ms": 1e3 * statistics.median(values), "p95_ms": 1e3 * float(np.percentile(values, 95))}
    if predictor is not None:
        out["ratio_median"] = out["predict"]["median_ms"] / out["bare"]["median_ms"]
        out["ratio_p95"] = out["predict"]["p95_ms"] / out["bare"]["p95_ms"]
        out["ok"] = out["ratio_median"] <= TARGET_RATIO
    return out


def time_batch(model, test_ds, threads: int, batch_size: int = 1000) -> dict:
    """Images per second over the whole test split: evaluate_model and a plain batched forward."""
    torch.set_num_threads(threads)
    start = time.perf_counter()
    metrics = evaluate_model(model, test_ds, batch_size=batch_size, progress=False)
    evaluate_seconds = time.perf_counter() - start
    numbers = one_hot(test_ds.numbers)
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(test_ds), batch_size):
            model(test_ds.images[i:i + batch_size], numbers[i:i + batch_size])
    forward_seconds = time.perf_counter() - start
    n = len(test_ds)
    return {"threads": threads, "images": n, "batch_size": batch_size,
            "evaluate_images_per_s": n / evaluate_seconds, "forward_images_per_s": n / forward_seconds,
            "digit_accuracy": metrics["digit_accuracy"], "sum_accuracy": metrics["sum_accuracy"]}


def format_report(report: dict) -> str:
    """The report as plain-text tables."""
    lines = [f"weights: {report['weights']}",
             f"torch {report['torch']}, {report['cpu_count']} CPUs, 1-min load average "
             f"{report['load_average'][0]:.1f} before, {report['load_average'][-1]:.1f} after"]
    if report.get("predictor_note"):
        lines.append(f"note: {report['predictor_note']} -- timing the bare forward only")
    lines.append("")
    lines.append("single prediction (800x800 RGBA canvas -> digit, sum)   median ms   p95 ms")
    for row in report["single"]:
        for name, label in (("predict", "Predictor.predict"), ("bare", "bare forward (1,1,28,28)")):
            if name in row:
                lines.append(f"  {row['threads']} thread{'s' if row['threads'] > 1 else ' '}  {label:<38}"
                             f"{row[name]['median_ms']:9.2f} {row[name]['p95_ms']:8.2f}")
        if "ratio_median" in row:
            verdict = "OK" if row["ok"] else "ABOVE TARGET"
            lines.append(f"  {'':9}  {'ratio predict/bare':<38}{row['ratio_median']:9.2f} {row['ratio_p95']:8.2f}"
                         f"   (median target <= {TARGET_RATIO}: {verdict})")
    if report.get("batch"):
        lines.append("")
        lines.append(f"batch throughput, {report['batch'][0]['images']:,} test images   evaluate_model   plain forward")
        for row in report["batch"]:
            lines.append(f"  {row['threads']} thread{'s' if row['threads'] > 1 else ' '}  {'images/s':<28}"
                         f"{row['evaluate_images_per_s']:14.0f}  {row['forward_images_per_s']:14.0f}")
        acc = report["batch"][0]
        lines.append(f"  (test digit accuracy {acc['digit_accuracy']:.2%}, sum accuracy {acc['sum_accuracy']:.2%})")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python benchmarks/latency.py", description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("--weights", default=None, help="safetensors weights (default: the shipped ones)")
    p.add_argument("--data-dir", default="data", help="folder holding MNIST/raw/ for the batch throughput")
    p.add_argument("--calls", type=int, default=300, help="timed calls of each kind per thread setting")
    p.add_argument("--warmup", type=int, default=20, help="untimed calls of each kind first")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread settings to run")
    p.add_argument("--no-batch", action="store_true", help="skip the 10,000-image batch throughput")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    return p


def main(argv=None) -> int:
    """Entry point."""
    args = build_parser().parse_args(argv)
    if args.calls < 1 or args.warmup < 0 or min(args.threads) < 1:
        sys.exit("error: --calls and --threads must be at least 1, --warmup at least 0")
    try:
        model, weights = load_network(args.weights)
    except WeightsError as e:
        sys.exit(f"error: {e}")
    predictor, note = make_predictor(args.weights)
    report = {"weights": weights, "torch": torch.__version__, "cpu_count": os.cpu_count(),
              "predictor_note": note, "target_ratio": TARGET_RATIO, "single": [], "batch": [],
              "load_average": [os.getloadavg()[0]]}
    for threads in args.threads:
        report["single"].append(time_single(model, predictor, threads, args.calls, args.warmup))
    if not args.no_batch:
        try:
            test_ds = open_split(args.data_dir, train=False, download=False)
        except DataNotFoundError as e:
            sys.exit(f"error: {e}")
        for threads in args.threads:
            report["batch"].append(time_batch(model, test_ds, threads))
    report["load_average"].append(os.getloadavg()[0])
    print(json.dumps(report) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
