"""The extra training data of a --pen run, each item read by the predictor's own preprocessing.

Real pen digits (UNIPEN, `pen`) drawn on random canvases, as other hands might write them and in styles
MNIST barely has (`synthetic`), letters that do not look like digits and synthetic non-digits, and MNIST
training digits re-drawn as pen strokes (the way `sketches` draws the test digits). Drawing is the slow
part, so it runs in worker processes, chunk by chunk, each chunk with its own seed.
"""

from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from tqdm import tqdm

from .pen import DIGIT_LIKE_LETTERS, kept_out, load_pen, render_inputs28
from .preprocess import to_input28
from .sketches import centre_line, draw_digit
from .synthetic import nondigit_strokes, styled, writer_jitter

NOT_A_DIGIT = -1  # the target of a drawing that is not a digit: trained toward the uniform distribution


def pen_training_set(pen_dir, holdout: tuple[str, ...] = (), copies: int = 2, n_shapes: int = 6000, seed: int = 0,
                     workers: int = 2, jittered: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Pen digits (each drawn `copies` times on random canvases, `jittered` more times as another hand might
    write it (`synthetic.writer_jitter`), plus a `synthetic.styled` variant of each 0, 1, 5 and 7, jittered
    ones too: slashed, flagged, crossed, bar apart), letters that do not look like digits and synthetic
    non-digits (spirals, smileys, stars, ...), all read by the predictor's own preprocessing.

    Sources in `holdout` and the `kept_out` items are left out. Returns pixels (M, 1, 28, 28) float32 in
    [0, 1] and targets (M,) int64: the digit, or NOT_A_DIGIT."""
    digits, letters = load_pen(pen_dir, "digits"), load_pen(pen_dir, "letters")
    digits = digits.subset(~np.isin(digits.source, holdout) & ~kept_out(digits))
    letters = letters.subset(~np.isin(letters.source, holdout) & ~kept_out(letters)
                             & ~np.isin(letters.labels, sorted(DIGIT_LIKE_LETTERS)))
    rng = np.random.default_rng(seed)
    others = [writer_jitter(strokes, rng) for _ in range(jittered) for strokes in digits.items]
    labels = np.tile(digits.labels, 1 + jittered)
    variants = [(v, d) for strokes, d in zip(digits.items + others, labels.tolist())
                if (v := styled(strokes, d, rng)) is not None]
    shapes = [nondigit_strokes(rng) for _ in range(n_shapes)]
    items = digits.items * copies + others + [v for v, _ in variants] + letters.items + shapes
    targets = np.concatenate([np.tile(digits.labels, copies + jittered), np.array([d for _, d in variants], int),
                              np.full(len(letters) + n_shapes, NOT_A_DIGIT)])
    pixels, kept = render_all(items, seed, workers)
    return torch.from_numpy(pixels).unsqueeze(1), torch.from_numpy(targets[kept]).long()


def render_all(items: list, seed: int, workers: int, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """`pen.render_inputs28` over many items in `workers` processes, chunk by chunk, each chunk with its own
    seed (the result does not depend on `workers`); (K, 28, 28) float32 inputs and the (K,) kept indices."""
    return _in_chunks(_render_chunk, items, seed, workers, chunk, "drawing pen data")


def _in_chunks(job_fn, items, seed: int, workers: int, chunk: int, desc: str) -> tuple[np.ndarray, np.ndarray]:
    """job_fn((items[i:i + chunk], seed_i)) -> (inputs, kept within the chunk), run over every chunk in `workers`
    processes; the inputs joined, and the kept positions as indices into `items`."""
    starts = range(0, len(items), chunk)
    jobs = [(items[i:i + chunk], seed * 100_003 + i) for i in starts]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(tqdm(pool.map(job_fn, jobs), total=len(jobs), desc=desc, leave=False))
    return (np.concatenate([r[0] for r in results]),
            np.concatenate([r[1] + start for r, start in zip(results, starts)]))


def _render_chunk(job: tuple) -> tuple:
    """One render_all chunk (a top-level function, so that worker processes can run it)."""
    items, seed = job
    return render_inputs28(items, np.random.default_rng(seed))


def redrawn_mnist(pixels: torch.Tensor, n: int, seed: int = 0, workers: int = 2,
                  skip: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n MNIST training digits re-drawn as pen strokes (centre line, round pen of random width, random canvas,
    size and place, as `sketches` draws the test digits, in the pad's format) and read back by the predictor's
    preprocessing: the thin, even strokes of a sketch pad, which MNIST's scanned ink lacks.

    pixels: (N, 1, 28, 28) in [0, 1] (the training split only). The digits are the n after the first `skip` in
    an order shuffled by `seed`, so skip=n of one call gives digits another call did not re-draw. Returns the
    (K, 1, 28, 28) inputs and the (K,) indices into pixels they come from (a drawing the reader calls blank is
    dropped)."""
    order = torch.randperm(len(pixels), generator=torch.Generator().manual_seed(seed))[skip:skip + n].numpy()
    inputs, kept = _in_chunks(_redraw_chunk, pixels[order, 0].numpy(), seed, workers, 500, "re-drawing MNIST")
    return torch.from_numpy(inputs).unsqueeze(1), torch.from_numpy(order[kept]).long()


def _redraw_chunk(job: tuple) -> tuple[np.ndarray, np.ndarray]:
    """One redrawn_mnist chunk: (K, 28, 28) inputs and the (K,) kept positions within the chunk."""
    digits, seed = job
    rng = np.random.default_rng(seed)
    inputs, kept = [], []
    for i, image in enumerate(digits):
        points, links = centre_line(image)
        if not len(points):
            continue
        # the pad's own format: the reader turns every format into the same ink
        drawing, _, _ = draw_digit(points, links, "dark_on_light", rng)
        ink = to_input28(drawing)
        if ink is not None:
            inputs.append(ink)
            kept.append(i)
    return np.asarray(inputs, np.float32).reshape(-1, 28, 28), np.asarray(kept, int)
