"""Training throughput of the project's loop against a bare float32 loop, side by side in one run.

    python benchmarks/train_speed.py --data-dir ../shared/mnist --threads 2
    python benchmarks/train_speed.py --data-dir ../shared/mnist --json
    python benchmarks/train_speed.py --data-dir ../shared/mnist --time-to-accuracy
    python benchmarks/train_speed.py --time-to-accuracy --log runs/<date-time>/mnist_sum.train.log

project: mnist_sum.train.train_epoch, called as train.py calls it (augmentation on, one-cycle schedule,
--precision auto, channels_last), limited to --steps steps per round. bare: the same MNISTSumNet, batch size
and AdamW in float32, the whole training set held as one tensor and batches taken as slices of it, no
augmentation, no DataLoader, no scheduler, the same two cross-entropy losses summed. The two alternate round
by round (which goes first alternates too) after one warm-up round each; the figures are medians over the
rounds and the ratio is median(project) / median(bare), target >= 1.6 on a CPU with bf16 instructions.

--time-to-accuracy runs the course exercise (`python -m mnist_sum.train`: MNIST only, 5 epochs, into a
temporary folder) and reports the wall time at which test digit and sum accuracy both first reach 99.0 %
and 99.5 %, and the whole run's time (target: under 4.5 minutes). With --log it reads a training log instead.
"""

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as written from a clone, installed or not
from mnist_sum.cli import HelpFormatter  # noqa: E402
from mnist_sum.data import DataNotFoundError, one_hot, open_split  # noqa: E402
from mnist_sum.model import MNISTSumNet, normalize  # noqa: E402
from mnist_sum.train import TrainSet, build_model, make_optimizer, pick_precision, train_epoch  # noqa: E402
from mnist_sum.train import build_parser as build_train_parser, resolve_defaults  # noqa: E402

TARGET_RATIO = 1.6
TARGET_RUN_S = 270  # the whole 5-epoch exercise, on 2 free cores
ACCURACY_TARGETS = (0.99, 0.995)
EPOCH_LINE = re.compile(
    r"epoch: (?P<epoch>\d+) train loss: (?P<train_loss>[\d.]+).*?"
    r"\| test digit: (?P<test_digit>[\d.]+) sum: (?P<test_sum>[\d.]+) consistency: (?P<consistency>[\d.]+)"
    r" \| (?P<images_per_s>[\d,.]+) img/s \| (?P<elapsed_s>[\d,.]+) s")


class ProjectLoop:
    """The project's training step: train_epoch with train.py's arguments, optimizer and schedule."""

    def __init__(self, train_ds, batch_size: int, total_steps: int, seed: int = 0):
        args = build_train_parser().parse_args(["--batch-size", str(batch_size), "--seed", str(seed)])
        self.args = resolve_defaults(args)
        torch.manual_seed(seed)
        self.device = torch.device("cpu")
        self.precision = pick_precision(self.args.precision, self.device)
        self.model = build_model(self.device)
        self.optimizer, self.scheduler = make_optimizer(self.model, self.args, total_steps)
        self.generator = torch.Generator().manual_seed(seed)
        self.data = TrainSet(train_ds.pixels, train_ds.targets, seed=seed)
        self.epoch = 0

    def run(self, steps: int) -> float:
        """Train `steps` steps; return images per second."""
        with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):  # tqdm still runs, unseen
            start = time.perf_counter()
            stats = train_epoch(self.model, self.optimizer, self.scheduler, self.data, self.epoch, self.args,
                                self.device, self.generator, steps, self.precision)
            seconds = time.perf_counter() - start
        self.epoch += 1
        return stats["images"] / seconds


class BareLoop:
    """The reference: slices of one pre-normalized tensor, plain forward/backward/AdamW, nothing else."""

    def __init__(self, train_ds, batch_size: int, seed: int = 0):
        defaults = resolve_defaults(build_train_parser().parse_args([]))
        torch.manual_seed(seed)
        self.model = MNISTSumNet()
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=defaults.lr,  # one group, no schedule
                                           weight_decay=defaults.weight_decay)
        order = torch.randperm(len(train_ds), generator=torch.Generator().manual_seed(seed))
        self.images = normalize(train_ds.pixels)[order].contiguous()  # (N, 1, 28, 28)
        self.digits = train_ds.targets[order].contiguous()
        self.numbers = train_ds.numbers[order].contiguous()
        self.batch_size = batch_size
        self.cursor = 0

    def run(self, steps: int) -> float:
        """Train `steps` steps; return images per second."""
        self.model.train()
        b, n = self.batch_size, len(self.images)
        seen = 0
        start = time.perf_counter()
        for _ in range(steps):
            if self.cursor + b > n:
                self.cursor = 0
            s = slice(self.cursor, self.cursor + b)
            self.cursor += b
            images, digits, numbers = self.images[s], self.digits[s], self.numbers[s]
            digit_logits, sum_logits = self.model(images, one_hot(numbers))
            loss = F.cross_entropy(digit_logits, digits) + F.cross_entropy(sum_logits, digits + numbers)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            seen += len(images)
        return seen / (time.perf_counter() - start)


def compare(data_dir: str, steps: int, rounds: int, batch_size: int, progress: bool) -> dict:
    """Warm up both loops, then alternate them for `rounds` rounds of `steps` steps; medians and ratio."""
    load_before = os.getloadavg()[0]
    train_ds = open_split(data_dir, train=True, download=False)
    project = ProjectLoop(train_ds, batch_size, total_steps=(rounds + 1) * steps + 1)
    bare = BareLoop(train_ds, batch_size)
    project.run(min(steps, 5))  # warm-up: allocator, kernels, thread pool
    bare.run(min(steps, 5))
    results = {"project": [], "bare": []}
    for r in range(rounds):
        order = [("project", project), ("bare", bare)]
        if r % 2:
            order.reverse()
        for name, loop in order:
            results[name].append(loop.run(steps))
        if progress:
            print(f"round {r + 1}/{rounds}: project {results['project'][-1]:.0f} img/s, "
                  f"bare {results['bare'][-1]:.0f} img/s", file=sys.stderr, flush=True)
    project_median = statistics.median(results["project"])
    bare_median = statistics.median(results["bare"])
    return {
        "batch_size": batch_size, "steps_per_round": steps, "project_precision": project.precision, "rounds": rounds, "threads": torch.get_num_threads(),
        "torch": torch.__version__, "cpu_count": os.cpu_count(),
        "load_average": [load_before, os.getloadavg()[0]],  # 1-minute load before and after: other work on the machine
        "project_images_per_s": results["project"], "bare_images_per_s": results["bare"],
        "project_median": project_median, "bare_median": bare_median,
        "ratio": project_median / bare_median, "target_ratio": TARGET_RATIO,
        "ok": project_median / bare_median >= TARGET_RATIO,
    }


def format_comparison(result: dict) -> str:
    """The comparison as a plain-text table: one column per round, then the median."""
    rounds = len(result["project_images_per_s"])
    head = ["", *(f"round {i + 1}" for i in range(rounds)), "median"]
    ratios = [p / b for p, b in zip(result["project_images_per_s"], result["bare_images_per_s"])]
    rows = [
        head,
        ["project img/s", *(f"{v:.0f}" for v in result["project_images_per_s"]), f"{result['project_median']:.0f}"],
        ["bare img/s", *(f"{v:.0f}" for v in result["bare_images_per_s"]), f"{result['bare_median']:.0f}"],
        ["project/bare", *(f"{v:.3f}" for v in ratios), f"{result['ratio']:.3f}"],
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [f"training throughput: batch {result['batch_size']}, {result['steps_per_round']} steps x {rounds} rounds,"
             f" threads {result['threads']}, torch {result['torch']}; project in {result['project_precision']},"
             f" bare in fp32",
             f"machine: {result['cpu_count']} CPUs, 1-min load average {result['load_average'][0]:.1f} before,"
             f" {result['load_average'][1]:.1f} after"]
    lines += ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
              for row in rows]
    verdict = "OK" if result["ok"] else "BELOW TARGET"
    lines.append(f"ratio of medians {result['ratio']:.3f} (target >= {result['target_ratio']}): {verdict}")
    return "\n".join(lines)


def parse_training_log(text: str) -> list[dict]:
    """Every per-epoch line with test figures in a training log (tqdm's carriage returns are fine)."""
    rows = []
    for line in re.split(r"[\r\n]+", text):
        m = EPOCH_LINE.search(line)
        if m:
            row = {k: float(v.replace(",", "")) for k, v in m.groupdict().items()}
            row["epoch"] = int(row["epoch"])
            rows.append(row)
    return rows


def time_to_accuracy(rows: list[dict], targets=ACCURACY_TARGETS) -> dict:
    """Per target, the first epoch where test digit and sum accuracy both reach it; and the last epoch."""
    if not rows:
        raise ValueError("no epoch lines with test figures found")
    reached = {f"{t:.3f}": next((r for r in rows if r["test_digit"] >= t and r["test_sum"] >= t), None)
               for t in targets}
    return {"epochs_logged": len(rows), "reached": reached, "final": rows[-1], "target_run_s": TARGET_RUN_S,
            "ok": rows[-1]["elapsed_s"] < TARGET_RUN_S}


def run_exercise(data_dir: str, threads: int | None) -> tuple[str, float]:
    """Run the course exercise (MNIST only, 5 epochs) into a temporary folder; its log and wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "mnist_sum.train", "--data-dir", data_dir,
                   "--out", str(Path(tmp) / "w.safetensors")] + (["--threads", str(threads)] if threads else [])
        print("running:", " ".join(command[1:]), file=sys.stderr, flush=True)
        started = time.perf_counter()
        proc = subprocess.run(command, cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - started
    if proc.returncode:
        raise ValueError(f"training failed (exit status {proc.returncode})")
    return proc.stdout, seconds


def format_time_to_accuracy(report: dict, source: str) -> str:
    """The time-to-accuracy report as plain text."""
    def row(r: dict) -> str:
        """One epoch's figures in a line."""
        return (f"epoch {r['epoch']}, {r['elapsed_s']:.0f} s: test digit {r['test_digit']:.4f}, "
                f"sum {r['test_sum']:.4f}, consistency {r['consistency']:.4f}, {r['images_per_s']:.0f} img/s")

    lines = report.get("epoch_lines", []) + [f"{source} ({report['epochs_logged']} epochs with test figures)"]
    lines += [f"digit and sum >= {float(t):.1%}: " + (row(r) if r else "never reached")
              for t, r in report["reached"].items()]
    lines.append(f"final: {row(report['final'])}")
    if "wall_s" in report:
        lines.append(f"whole run, start-up and saving included: {report['wall_s']:.0f} s")
    verdict = "OK" if report["ok"] else "ABOVE TARGET"
    lines.append(f"training time {report['final']['elapsed_s']:.0f} s (target < {TARGET_RUN_S} s): {verdict}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python benchmarks/train_speed.py", description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("--data-dir", default="data", help="folder holding MNIST/raw/ (never downloaded here)")
    p.add_argument("--steps", type=int, default=40, help="training steps per loop per round")
    p.add_argument("--rounds", type=int, default=5, help="timed rounds (each runs both loops)")
    p.add_argument("--batch-size", type=int, default=128, help="images per step (train.py's default)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--time-to-accuracy", action="store_true",
                   help="run the 5-epoch exercise and report when test digit and sum first reach 99.0 %% and 99.5 %%")
    p.add_argument("--log", default=None, help="with --time-to-accuracy: read this training log instead of training")
    return p


def main(argv=None) -> int:
    """Entry point."""
    args = build_parser().parse_args(argv)
    if args.time_to_accuracy:
        try:
            if args.log:
                text, source, wall = Path(args.log).read_text(encoding="utf-8", errors="replace"), f"log: {args.log}", None
            else:
                (text, wall), source = run_exercise(args.data_dir, args.threads), "exercise run"
            report = time_to_accuracy(parse_training_log(text))
        except (OSError, ValueError) as e:
            sys.exit(f"error: {e}")
        if wall is not None:
            report["wall_s"] = wall
            report["epoch_lines"] = [line for line in text.splitlines() if EPOCH_LINE.search(line)]
        print(json.dumps(report) if args.json else format_time_to_accuracy(report, source))
        return 0
    if args.steps < 1 or args.rounds < 1:
        sys.exit("error: --steps and --rounds must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        result = compare(args.data_dir, args.steps, args.rounds, args.batch_size, progress=not args.json)
    except DataNotFoundError as e:
        sys.exit(f"error: {e}")
    print(json.dumps(result) if args.json else format_comparison(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
