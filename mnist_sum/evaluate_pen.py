"""How a Predictor reads real pen-written digits and letters: accuracy, a naive baseline, not-a-digit flags.

Behind `python -m mnist_sum.evaluate --pen pendigits`: each UNIPEN item is drawn as the sketch pad would send
it (`pen.render_random`) with a number of its own, read by `predictor.predict`, and recorded (`RECORD`);
`evaluate_pen` sums the records up per source, per letter and as a ROC table of the two not-a-digit rules,
and `format_pen_report` prints them. Several worker processes give the same figures as one.
"""

import math
import multiprocessing
import time
from collections import Counter

import numpy as np
from PIL import Image
from tqdm import tqdm

from .pen import BRUSH_RANGE, CANVAS_SIDES, DIGIT_LIKE_LETTERS, HEIGHT_RANGE, PenSet, render_random

FLAG_RATES = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2)  # shares of digits flagged, the rows of the ROC table
MAX_PROB_THRESHOLD = 0.9  # the max-probability rule's cut in the per-source table: flag when below
CHUNK = 256  # items per job when evaluating with several worker processes


def naive_input28(canvas: np.ndarray) -> np.ndarray:
    """What typical MNIST demos feed the network: the whole canvas in grey, inverted (white ink on black),
    resized to 28x28 (Pillow, bilinear) and scaled to [0, 1]; (28, 28) float32."""
    grey = Image.fromarray(canvas).convert("L").resize((28, 28), Image.Resampling.BILINEAR)
    return (255 - np.asarray(grey, np.float32)) / 255


RECORD = np.dtype([("index", int), ("number", int), ("blank", bool), ("digit", int), ("sum", int),
                   ("flagged", bool), ("score", float), ("max_prob", float), ("naive_digit", int),
                   ("naive_sum", int)])


def read_items(predictor, items, indices, kind_id: int, seed: int, naive: bool) -> np.ndarray:
    """Draw each item (random canvas, number from an rng seeded by (seed, kind_id, index), so the same item
    always gets the same drawing and number) and run `predictor.predict`; (N,) RECORD array.

    A blank reading (None) has blank=True, digit and sum -1, not flagged and NaN scores. With `naive`, the
    naive baseline's digit and sum too (else -1).
    """
    out = np.zeros(len(items), RECORD)
    for row, strokes, index in zip(out, items, indices):  # rows of a structured array are views: filled in place
        rng = np.random.default_rng((seed, kind_id, int(index)))
        number = int(rng.integers(10))
        canvas = render_random(strokes, rng)
        p = predictor.predict(canvas, number)
        row["index"], row["number"], row["blank"] = index, number, p is None
        if p is None:
            row["digit"] = row["sum"] = -1
            row["score"] = row["max_prob"] = np.nan
        else:
            row["digit"], row["sum"], row["flagged"] = p.digit, p.sum, not p.is_digit
            row["max_prob"] = max(p.digit_probs)
            row["score"] = getattr(p, "digit_score", row["max_prob"])  # higher = more digit-like
        row["naive_digit"] = row["naive_sum"] = -1
        if naive:
            q = predictor.predict28(naive_input28(canvas), number)
            row["naive_digit"], row["naive_sum"] = q.digit, q.sum
    return out


def _read_job(job: tuple) -> np.ndarray:
    """read_items in a worker process, on one CPU thread (the workers share the cores)."""
    import torch  # the predictor's library; only touched here to keep each worker on one thread

    torch.set_num_threads(1)
    return read_items(*job)


def _read_all(predictor, pen: PenSet, kind_id: int, indices: np.ndarray, seed: int, naive: bool, workers: int,
              bar) -> np.ndarray:
    """read_items over `indices` of `pen`, in `workers` processes (fork) when more than one."""
    if workers <= 1:
        chunks = [indices[i:i + 1] for i in range(len(indices))]  # one at a time: a smooth progress bar
        parts = []
        for chunk in chunks:
            parts.append(read_items(predictor, [pen.items[i] for i in chunk], chunk, kind_id, seed, naive))
            bar.update(len(chunk))
        return np.concatenate(parts) if parts else np.zeros(0, RECORD)
    jobs = [(predictor, [pen.items[i] for i in chunk], chunk, kind_id, seed, naive)
            for chunk in np.array_split(indices, max(1, math.ceil(len(indices) / CHUNK)))]
    parts = []
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for part in pool.imap(_read_job, jobs):
            parts.append(part)
            bar.update(len(part))
    return np.concatenate(parts) if parts else np.zeros(0, RECORD)


def sample_indices(n: int, limit: int | None, seed: int) -> np.ndarray:
    """All of range(n), or a fixed random `limit` of them (seeded), in ascending order."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng((seed, 99)).permutation(n)[:limit])


def evaluate_pen(predictor, digits: PenSet, letters: PenSet | None = None, seed: int = 0, limit: int | None = None,
                 progress: bool = True, workers: int = 1, flag_rates=FLAG_RATES,
                 max_prob_threshold: float = MAX_PROB_THRESHOLD) -> dict:
    """A Predictor on real pen-written digits (and letters): accuracy, naive baseline, not-a-digit flags.

    Every item is drawn on a random 400 or 800 px canvas and read through `predictor.predict(canvas, number)`
    with a number drawn per item, so sums are tested too. `limit` keeps a fixed random subsample of at most
    that many items of each set; `workers` > 1 reads in that many processes (same figures). Returns a
    JSON-serialisable dict; see format_pen_report.
    """
    started = time.perf_counter()
    digit_idx = sample_indices(len(digits), limit, seed)
    letter_idx = sample_indices(len(letters), limit, seed) if letters is not None else np.zeros(0, int)
    with tqdm(total=len(digit_idx) + len(letter_idx), desc="pen", disable=not progress) as bar:
        d = _read_all(predictor, digits, 0, digit_idx, seed, True, workers, bar)
        l_rec = _read_all(predictor, letters, 1, letter_idx, seed, False, workers, bar) if letters is not None else None
    truth = digits.labels[d["index"]]
    d_source = digits.source[d["index"]]
    report = {
        "seed": seed, "limit": limit, "canvas_sides": list(CANVAS_SIDES), "height_range": list(HEIGHT_RANGE),
        "brush_range": list(BRUSH_RANGE), "max_prob_threshold": max_prob_threshold,
        "digits": {
            "all": _digit_figures(d, truth, max_prob_threshold),
            "sources": {s: _digit_figures(d[d_source == s], truth[d_source == s], max_prob_threshold)
                        for s in sorted(set(d_source.tolist()))},
            "confusions": {s: _confusions(d[d_source == s], truth[d_source == s])
                           for s in sorted(set(d_source.tolist()))},
        },
        "letters": None,
        "roc": None,
    }
    if l_rec is not None:
        chars = letters.labels[l_rec["index"]]
        other = ~np.isin(chars, sorted(DIGIT_LIKE_LETTERS))
        report["letters"] = _letter_figures(l_rec, chars, other, letters.source[l_rec["index"]], max_prob_threshold)
        report["roc"] = _roc(d, l_rec[other], flag_rates)
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def _share(mask: np.ndarray) -> float:
    """The share of True in a boolean array (0.0 when empty)."""
    return float(mask.mean()) if mask.size else 0.0


def _digit_figures(rec: np.ndarray, truth: np.ndarray, max_prob_threshold: float) -> dict:
    """Accuracy, naive baseline accuracy and flag rates of digit records; blanks count as wrong."""
    return {
        "n": int(len(rec)),
        "digit_accuracy": _share(rec["digit"] == truth),
        "sum_accuracy": _share(rec["sum"] == truth + rec["number"]),
        "naive_digit_accuracy": _share(rec["naive_digit"] == truth),
        "naive_sum_accuracy": _share(rec["naive_sum"] == truth + rec["number"]),
        "flagged": _share(rec["flagged"]),
        "max_prob_flagged": _share(rec["max_prob"] < max_prob_threshold),
        "blank": int(rec["blank"].sum()),
    }


def _confusions(rec: np.ndarray, truth: np.ndarray, top: int = 5) -> list[list[int]]:
    """The most common (true digit, read as, count) mistakes, blanks left out."""
    wrong = (rec["digit"] != truth) & ~rec["blank"]
    pairs = Counter(zip(truth[wrong].tolist(), rec["digit"][wrong].tolist()))
    return [[t, p, n] for (t, p), n in pairs.most_common(top)]


def _letter_figures(rec: np.ndarray, chars: np.ndarray, other: np.ndarray, source: np.ndarray,
                    max_prob_threshold: float) -> dict:
    """Not-a-digit flag rates on letters: over letters not written like digits (`other`), and over all."""
    low = rec["max_prob"] < max_prob_threshold
    per_letter = {}
    for c in sorted(set(chars.tolist())):
        mine = chars == c
        read = Counter(rec["digit"][mine & ~rec["blank"]].tolist()).most_common(1)
        per_letter[c] = {"n": int(mine.sum()), "flagged": int(rec["flagged"][mine].sum()),
                         "max_prob_flagged": int(low[mine].sum()), "read_as": read[0][0] if read else None}
    return {
        "n": int(len(rec)), "n_not_digit_like": int(other.sum()),
        "flagged": _share(rec["flagged"][other]), "flagged_all": _share(rec["flagged"]),
        "max_prob_flagged": _share(low[other]), "max_prob_flagged_all": _share(low),
        "blank": int(rec["blank"].sum()),
        "sources": {s: {"n": int((other & (source == s)).sum()), "flagged": _share(rec["flagged"][other & (source == s)]),
                        "max_prob_flagged": _share(low[other & (source == s)])}
                    for s in sorted(set(source.tolist()))},
        "per_letter": per_letter,
    }


def _roc(digits: np.ndarray, letters: np.ndarray, flag_rates) -> list[dict]:
    """For each target share of digits flagged: the digit_score and max-probability thresholds that flag that
    share (flag when score < threshold), and the shares of digits and of (not digit-like) letters flagged.
    Comparing both rules at the same cost in digits is what tells which one separates better."""
    rows = []
    for rate in flag_rates:
        row = {"target": rate}
        for name, field in (("digit_score", "score"), ("max_prob", "max_prob")):
            scores = digits[field][np.isfinite(digits[field])]  # blanks (NaN) have no score
            threshold = float(np.quantile(scores, rate)) if scores.size else float("nan")
            row[name] = {"threshold": threshold, "digits_flagged": _share(digits[field] < threshold),
                         "letters_flagged": _share(letters[field] < threshold)}
        rows.append(row)
    return rows


def format_pen_report(report: dict) -> str:
    """The report as plain-text tables: digits per source, letters, then the ROC comparison."""
    t = report["max_prob_threshold"]
    lines = [f"pen-written digits (UNIPEN) on {'/'.join(map(str, report['canvas_sides']))} px canvases, "
             f"seed {report['seed']}" + (f", at most {report['limit']} items per set" if report["limit"] else ""),
             f"{'source':<8} {'items':>6} {'digit':>7} {'sum':>7} {'naive d':>8} {'naive s':>8} {'flagged':>8} "
             f"{f'p<{t:g}':>7} {'blank':>5}  most common mistakes (true>read x count)"]
    digits = report["digits"]
    for name, r in [*digits["sources"].items(), ("all", digits["all"])]:
        mistakes = " ".join(f"{a}>{b}x{n}" for a, b, n in digits["confusions"].get(name, [])[:4])
        lines.append(f"{name:<8} {r['n']:>6} {r['digit_accuracy']:>7.2%} {r['sum_accuracy']:>7.2%} "
                     f"{r['naive_digit_accuracy']:>8.2%} {r['naive_sum_accuracy']:>8.2%} {r['flagged']:>8.2%} "
                     f"{r['max_prob_flagged']:>7.2%} {r['blank']:>5}  {mistakes}")
    letters = report["letters"]
    if letters:
        lines += ["", f"letters: {letters['n']} drawn, {letters['n_not_digit_like']} not written like digits "
                      f"(leaving out {''.join(sorted(DIGIT_LIKE_LETTERS))})",
                  f"  flagged not-a-digit: {letters['flagged']:.2%} (all letters {letters['flagged_all']:.2%}); "
                  f"max prob < {t:g}: {letters['max_prob_flagged']:.2%} (all {letters['max_prob_flagged_all']:.2%}); "
                  f"blank {letters['blank']}",
                  "  per source: " + ", ".join(f"{s} {r['flagged']:.1%} / p<{t:g} {r['max_prob_flagged']:.1%} (n={r['n']})"
                                                for s, r in letters["sources"].items())]
        folds = report.get("folds") or [{"roc": report["roc"]}]
        for fold in folds:
            title = f" ({fold['weights']}, on {', '.join(fold['sources'])})" if "weights" in fold else ""
            lines += ["", f"flag when score < threshold: digits flagged vs letters flagged (not digit-like){title}",
                      f"{'target':>7}  {'digit_score: thr':>17} {'digits':>7} {'letters':>8}  "
                      f"{'max prob: thr':>14} {'digits':>7} {'letters':>8}"]
            for row in fold["roc"]:
                a, b = row["digit_score"], row["max_prob"]
                lines.append(f"{row['target']:>7.1%}  {a['threshold']:>17.4g} {a['digits_flagged']:>7.2%} "
                             f"{a['letters_flagged']:>8.2%}  {b['threshold']:>14.4g} {b['digits_flagged']:>7.2%} "
                             f"{b['letters_flagged']:>8.2%}")
    lines.append(f"\n{report['seconds']:.0f} s")
    return "\n".join(lines)
