"""Evaluate weights on the MNIST test split, the drawn-digit set (--sketches) or real pen handwriting (--pen).

    python -m mnist_sum.evaluate --data-dir ../shared/mnist            # both shipped models, side by side
    python -m mnist_sum.evaluate --data-dir ../shared/mnist --json     # one JSON object
    python -m mnist_sum.evaluate --data-dir ../shared/mnist --sketches # drawn digits, per pixel format
    python -m mnist_sum.evaluate --pen ../shared/pendigits             # the handwriting model on pen digits
    python -m mnist_sum.evaluate --pen pendigits --weights A,B,C       # a leave-sources-out rotation, pooled

consistency: over every test image and every number 0-9 (100,000 pairs), the share where the predicted
sum equals the predicted digit + number.
"""

import argparse
import json
import os
import sys

import torch
from tqdm import tqdm

from .cli import HelpFormatter, exit_with
from .data import DataNotFoundError, MNISTSum, one_hot, open_split
from .pen import kept_out
from .weights import SHIPPED_MODELS, SHIPPED_WEIGHTS, WeightsError, load_model, read_metadata


@torch.inference_mode()
def evaluate_model(model, ds: MNISTSum, device="cpu", batch_size: int = 1000, progress: bool = True) -> dict:
    """Digit accuracy, sum accuracy (with the split's numbers) and digit/sum consistency over all 10 numbers."""
    model.eval()
    digit_ok = sum_ok = consistent = 0
    all_numbers = torch.arange(10, device=device)
    for start in tqdm(range(0, len(ds), batch_size), desc="evaluate", leave=False, disable=not progress):
        end = min(start + batch_size, len(ds))
        images = ds.images[start:end].to(device)  # (B, 1, 28, 28)
        digits = ds.targets[start:end].to(device)
        numbers = ds.numbers[start:end].to(device)
        digit_logits, sum_logits = model(images, one_hot(numbers))
        predicted_digit = digit_logits.argmax(1)
        digit_ok += (predicted_digit == digits).sum().item()
        sum_ok += (sum_logits.argmax(1) == digits + numbers).sum().item()
        b = end - start
        # every image with every number: (B*10,) pairs through the mix head only
        pair_logits = model.add(digit_logits.repeat_interleave(10, 0), one_hot(all_numbers.repeat(b)))
        expected = predicted_digit.repeat_interleave(10) + all_numbers.repeat(b)
        consistent += (pair_logits.argmax(1) == expected).sum().item()
    n = len(ds)
    return {"digit_accuracy": digit_ok / n, "sum_accuracy": sum_ok / n, "consistency": consistent / (10 * n), "n": n}


def format_table(rows: list[tuple[str, ...]]) -> str:
    """Plain-text table, left-aligned columns."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join([*(f"{c:<{w}}" for c, w in zip(row, widths)), row[-1]]) for row in rows)


def format_metrics(reports: dict[str, dict]) -> str:
    """MNIST test figures of one or more weights, a column each."""
    names = list(reports)
    rows = [("", *names)] if len(names) > 1 else []
    rows += [("weights", *(r["weights"] for r in reports.values())),
             ("test images", *(f"{r['n']:,}" for r in reports.values())),
             ("digit accuracy", *(f"{r['digit_accuracy']:.2%}" for r in reports.values())),
             ("sum accuracy", *(f"{r['sum_accuracy']:.2%}" for r in reports.values())),
             ("consistency", *(f"{r['consistency']:.2%}" for r in reports.values()))]
    pairs = next(iter(reports.values()))["n"] * 10
    return format_table(rows) + f"\nconsistency: sum == digit + number over {pairs:,} pairs (every image, every number)"


def weights_to_evaluate(args) -> dict[str, str]:
    """{name: path} of what to evaluate: --weights, else the handwriting model (--pen) or both shipped models."""
    if args.weights:
        return {args.weights: args.weights}
    if args.pen:
        return {"handwriting": os.path.relpath(SHIPPED_WEIGHTS)}
    return {name: os.path.relpath(path) for name, path in SHIPPED_MODELS.items()}


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of `python -m mnist_sum.evaluate`."""
    p = argparse.ArgumentParser(prog="python -m mnist_sum.evaluate", description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("--weights", default=None,
                   help="safetensors weights to evaluate (default: both shipped models side by side; with --pen the "
                        "handwriting model, the one the app serves); with --pen, several comma-separated "
                        "leave-sources-out runs "
                        "are a rotation: each is measured on its own held-out sources, and the figures pooled")
    p.add_argument("--data-dir", default="data", help="folder holding MNIST/raw/ (downloaded there if missing)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--sketches", action="store_true", help="evaluate on the drawn-digit set instead of MNIST")
    p.add_argument("--pen", metavar="DIR", default=None,
                   help="evaluate on real pen-written digits and letters in DIR (digits.npz, letters.npz) instead: "
                        "the sources the weights did not train on")
    p.add_argument("--sources", default=None,
                   help="--pen only: comma-separated sources to evaluate (default: those held out in training)")
    p.add_argument("--workers", type=int, default=2, help="--pen only: worker processes, one CPU thread each")
    p.add_argument("--limit", type=int, default=None,
                   help="--sketches: draw the first N test digits (default 500, each in 4 formats); "
                        "--pen: at most N digits and N letters (a fixed random subsample; default all)")
    return p


def pen_holdout(weights) -> tuple[str, ...] | None:
    """The pen sources a weights file was trained without, from its metadata; None when it never saw pen data."""
    args = read_metadata(weights).get("train_args", {})
    if not args.get("pen"):
        return None
    return tuple(s for s in args["pen_holdout"].split(",") if s)


def unseen_sources(weights, available: tuple[str, ...]) -> tuple[tuple[str, ...], bool, str]:
    """The pen sources a weights file did not train on, from its metadata; whether only the never-trained
    items (`data.kept_out`) of them are unseen; and a note saying which."""
    holdout = pen_holdout(weights)
    if holdout is None:
        return available, False, "trained on MNIST only: every source is unseen"
    if not holdout:
        return available, True, ("trained on every pen source: only its kept-out writers' digits and letters "
                                 "(never trained on, same sites) are measured; held-out sources: the README's folds")
    return holdout, False, f"trained without the sources {', '.join(holdout)}: held-out figures"


def evaluate_pen_cli(args) -> dict:
    """--pen: the weights on pen digits and letters from the chosen (by default unseen) sources."""
    from .evaluate_pen import evaluate_pen
    from .pen import load_pen
    from .predict import Predictor

    digits, letters = load_pen(args.pen, "digits"), load_pen(args.pen, "letters")
    if args.sources:
        sources, only_kept_out, note = tuple(args.sources.split(",")), False, "sources chosen with --sources"
    else:
        sources, only_kept_out, note = unseen_sources(args.weights, digits.sources)
    digits, letters = digits.select(sources), letters.select(sources)
    if only_kept_out:
        digits, letters = digits.subset(kept_out(digits)), letters.subset(kept_out(letters))
    report = evaluate_pen(Predictor(args.weights), digits, letters,
                          limit=args.limit, progress=not args.json, workers=args.workers)
    return {"weights": args.weights, "sources": list(sources), "note": note, **report}


def evaluate_rotation(args) -> dict:
    """--pen with several weights (leave-sources-out folds): each on the sources it did not train on, then one
    report over all of them (the folds must hold out disjoint sources); each fold's ROC table is kept."""
    runs = args.weights.split(",")
    holdouts = [pen_holdout(weights) for weights in runs]  # checked before minutes of drawing and reading
    for weights, holdout in zip(runs, holdouts):
        if not holdout:
            raise ValueError(f"{weights} held out no pen source: a rotation needs leave-sources-out runs")
    sources = [s for holdout in holdouts for s in holdout]
    if len(set(sources)) < len(sources):
        raise ValueError(f"the folds hold out overlapping sources ({', '.join(sources)}): each must be its own")
    return combine_pen_reports([evaluate_pen_cli(argparse.Namespace(**{**vars(args), "weights": weights}))
                                for weights in runs])


def combine_pen_reports(folds: list[dict]) -> dict:
    """Pool evaluate_pen reports over disjoint sources: per-source rows side by side, overall shares weighted
    by their counts; the ROC tables stay per fold (their thresholds are each fold's own)."""
    def pooled(rows: list[dict], weight: str, shares: tuple[str, ...], counts: tuple[str, ...]) -> dict:
        total = sum(r[weight] for r in rows)
        out = {k: sum(r[k] * r[weight] for r in rows) / max(total, 1) for k in shares}
        out.update({k: sum(r[k] for r in rows) for k in counts})
        return out

    first = folds[0]
    digits = {
        "all": pooled([r["digits"]["all"] for r in folds], "n", ("digit_accuracy", "sum_accuracy",
                      "naive_digit_accuracy", "naive_sum_accuracy", "flagged", "max_prob_flagged"), ("n", "blank")),
        "sources": {k: v for r in folds for k, v in r["digits"]["sources"].items()},
        "confusions": {k: v for r in folds for k, v in r["digits"]["confusions"].items()},
    }
    letters = [r["letters"] for r in folds]
    pooled_letters = {
        **pooled(letters, "n_not_digit_like", ("flagged", "max_prob_flagged"), ("n", "n_not_digit_like", "blank")),
        **pooled(letters, "n", ("flagged_all", "max_prob_flagged_all"), ()),
        "sources": {k: v for r in letters for k, v in r["sources"].items()},
    }
    return {**{k: first[k] for k in ("seed", "limit", "canvas_sides", "height_range", "brush_range",
                                     "max_prob_threshold")},
            "weights": ",".join(r["weights"] for r in folds), "sources": [s for r in folds for s in r["sources"]],
            "note": "rotation: " + "; ".join(f"{r['weights']} on {', '.join(r['sources'])}" for r in folds),
            "digits": digits, "letters": pooled_letters, "roc": None,
            "folds": [{"weights": r["weights"], "sources": r["sources"], "roc": r["roc"]} for r in folds],
            "seconds": sum(r["seconds"] for r in folds)}


def main(argv=None) -> int:
    """Entry point of `python -m mnist_sum.evaluate`."""
    args = build_parser().parse_args(argv)
    models = weights_to_evaluate(args)
    try:
        if args.pen:
            from .evaluate_pen import format_pen_report

            args.weights = next(iter(models.values()))
            report = evaluate_rotation(args) if "," in args.weights else evaluate_pen_cli(args)
            print(json.dumps(report) if args.json else f"{report['weights']}: {report['note']}\n"
                                                         + format_pen_report(report))
            return 0
        test = open_split(args.data_dir, train=False)
        if args.sketches:
            from .sketches import evaluate_sketches, format_sketch_report

            reports = {name: evaluate_sketches(path, test, limit=args.limit, progress=not args.json)
                       for name, path in models.items()}
            if args.json:
                print(json.dumps(reports[args.weights] if args.weights else reports))
            else:
                print("\n\n".join((f"{path}\n" if len(models) > 1 else "") + format_sketch_report(reports[name])
                                  for name, path in models.items()))
            return 0
        reports = {name: {"weights": path, **evaluate_model(load_model(path), test, progress=not args.json)}
                   for name, path in models.items()}
    except (WeightsError, DataNotFoundError, FileNotFoundError, ValueError) as e:
        exit_with(e)
    if args.json:  # one weights file: its figures; the two shipped models: {name: figures}
        print(json.dumps({k: v for k, v in reports[args.weights].items() if k != "weights"} if args.weights
                         else reports))
    else:
        print(format_metrics(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
