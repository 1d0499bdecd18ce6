"""Training throughput of the project's loop against a bare reference loop, side by side in one run.

    PYTHONPATH=. python benchmarks/train_speed.py --data-dir ../shared/mnist --threads 2
    PYTHONPATH=. python benchmarks/train_speed.py --data-dir ../shared/mnist --json
    PYTHONPATH=. python benchmarks/train_speed.py --time-to-accuracy runs/train.log

project: mnist_sum.train.train_epoch, called as train.py calls it (augmentation on, one-cycle schedule),
limited to --steps steps per round. bare: the same MNISTSumNet, batch size and AdamW, the whole training
set held as one tensor and batches taken as slices of it, no augmentation, no DataLoader, no scheduler,
the same two cross-entropy losses summed. The two alternate round by round (which goes first alternates
too) after one warm-up round each; the figures are medians over the rounds and the ratio is
median(project) / median(bare), target >= 0.9.

--time-to-accuracy LOG instead reads a training log and reports the first epoch (and wall time) at which
test digit and sum accuracy both reach --target, and the last epoch's figures.
"""

import argparse
import contextlib
import json
import os
import re
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from mnist_sum.data import DataNotFoundError, one_hot, open_split
from mnist_sum.model import MNISTSumNet, normalize
from mnist_sum.train import build_parser as build_train_parser
from mnist_sum.train import make_optimizer, train_epoch

TARGET_RATIO = 0.9
EPOCH_LINE = re.compile(
    r"epoch: (?P<epoch>\d+) train loss: (?P<train_loss>[\d.]+).*?"
    r"\| test digit: (?P<test_digit>[\d.]+) sum: (?P<test_sum>[\d.]+) consistency: (?P<consistency>[\d.]+)"
    r" \| (?P<images_per_s>[\d,.]+) img/s \| (?P<elapsed_s>[\d,.]+) s")


class ProjectLoop:
    """The project's training step: train_epoch with train.py's arguments, optimizer and schedule."""

    def __init__(self, train_ds, batch_size: int, total_steps: int, seed: int = 0):
        self.args = build_train_parser().parse_args(["--batch-size", str(batch_size), "--seed", str(seed)])
        torch.manual_seed(seed)
        self.model = MNISTSumNet()
        self.optimizer, self.scheduler = make_optimizer(self.model, self.args, total_steps)
        self.generator = torch.Generator().manual_seed(seed)
        self.train_ds = train_ds
        self.epoch = 0

    def run(self, steps: int) -> float:
        """Train `steps` steps; return images per second."""
        with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):  # tqdm still runs, unseen
            start = time.perf_counter()
            stats = train_epoch(self.model, self.optimizer, self.scheduler, self.train_ds, self.epoch, self.args,
                                torch.device("cpu"), self.generator, steps)
            seconds = time.perf_counter() - start
        self.epoch += 1
        return stats["images"] / seconds


class BareLoop:
    """The reference: slices of one pre-normalized tensor, plain forward/backward/AdamW, nothing else."""

    def __init__(self, train_ds, batch_size: int, seed: int = 0):
        defaults = build_train_parser().parse_args([])
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
        "batch_size": batch_size, "steps_per_round": steps, "rounds": rounds, "threads": torch.get_num_threads(),
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
             f" threads {result['threads']}, torch {result['torch']}",
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


def time_to_accuracy(rows: list[dict], target: float = 0.99) -> dict:
    """First epoch where test digit and sum accuracy both reach target, and the last epoch's figures."""
    if not rows:
        raise ValueError("no epoch lines with test figures found")
    first = next((r for r in rows if r["test_digit"] >= target and r["test_sum"] >= target), None)
    return {"target": target, "epochs_logged": len(rows), "reached": first is not None,
            "reached_at": first, "final": rows[-1]}


def format_time_to_accuracy(report: dict, log: str) -> str:
    """The time-to-accuracy report as plain text."""
    def row(r: dict) -> str:
        """One epoch's figures in a line."""
        return (f"epoch {r['epoch']}, {r['elapsed_s']:.0f} s: test digit {r['test_digit']:.4f}, "
                f"sum {r['test_sum']:.4f}, consistency {r['consistency']:.4f}, {r['images_per_s']:.0f} img/s")

    first = report["reached_at"]
    lines = [f"log: {log} ({report['epochs_logged']} epochs with test figures)",
             f"digit and sum >= {report['target']}: " + (row(first) if first else "never reached"),
             f"final: {row(report['final'])}"]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python benchmarks/train_speed.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default="data", help="folder holding MNIST/raw/ (never downloaded here)")
    p.add_argument("--steps", type=int, default=40, help="training steps per loop per round")
    p.add_argument("--rounds", type=int, default=5, help="timed rounds (each runs both loops)")
    p.add_argument("--batch-size", type=int, default=128, help="images per step (train.py's default)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--time-to-accuracy", metavar="LOG", default=None,
                   help="only analyse this training log: when test digit and sum accuracy first reach --target")
    p.add_argument("--target", type=float, default=0.99, help="accuracy target for --time-to-accuracy")
    return p


def main(argv=None) -> int:
    """Entry point."""
    args = build_parser().parse_args(argv)
    if args.time_to_accuracy:
        try:
            with open(args.time_to_accuracy, encoding="utf-8", errors="replace") as f:
                report = time_to_accuracy(parse_training_log(f.read()), args.target)
        except (OSError, ValueError) as e:
            sys.exit(f"error: {args.time_to_accuracy}: {e}")
        print(json.dumps(report) if args.json else format_time_to_accuracy(report, args.time_to_accuracy))
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
