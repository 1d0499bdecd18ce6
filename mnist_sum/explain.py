"""How the network adds, as one picture: `python -m mnist_sum.explain IMAGE --number N --out FIG.png`.

    python -m mnist_sum.explain demo/examples/digit_4.png --number 3 --out fig.png

The figure shows Predictor.explain's Explanation (mnist_sum/explanation.py). Left, how the network reads the
drawing: the 28x28 input it sees, each conv layer's activations after its ReLU (one tile a channel, coloured on
one scale per layer) and the ten digit probabilities. Right, how it adds: the sum it gives for every number 0-9,
its sum probabilities next to those of an exact adder fed the same digit probabilities, and the table "digit +
number" its mix head learned (one-hot digit and number in), coloured by confidence. Drawn with Pillow alone, as
curves.py; its built-in font has ASCII only, so the text keeps to it.
"""

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .cli import HelpFormatter, exit_with
from .explanation import Explanation
from .predict import Predictor
from .weights import write_atomically

WIDTH = 1200  # px; the height follows the content
MARGIN, GAP = 24, 30  # px around the figure, between panels
RIGHT = 860  # px: x where the right column ("how it adds") starts
BLUE, ORANGE, RED, GREY = (31, 119, 180), (255, 127, 14), (214, 39, 40), (120, 120, 120)
HIGHLIGHT = (255, 214, 102)  # the current number's row, the predicted digit's row and the number's column
# (maps per row, px per map pixel) for each layer's grid of tiles
GRIDS = {"conv1": (16, 2), "conv2": (16, 2), "conv3": (10, 3)}
INFERNO = [(0, 0, 4), (87, 16, 110), (188, 55, 84), (249, 142, 9), (252, 255, 164)]  # activation 0 -> max
BLUES = [(247, 251, 255), (107, 174, 214), (8, 48, 107)]  # confidence 0 -> 1


def font(size: int) -> ImageFont.ImageFont:
    """Pillow's built-in font at size px (FreeType's Aileron; a bitmap font where FreeType is missing)."""
    return ImageFont.load_default(size=size)


def palette(anchors: list[tuple[int, int, int]]) -> np.ndarray:
    """A (256, 3) uint8 colour map through the anchor colours, evenly spaced."""
    stops = np.linspace(0, 255, len(anchors))
    return np.stack([np.interp(np.arange(256), stops, [c[i] for c in anchors]) for i in range(3)], 1).astype(np.uint8)


def colour(lut: np.ndarray, fraction: float) -> tuple[int, int, int]:
    """The colour of a value at fraction (0-1) of its scale."""
    return tuple(int(v) for v in lut[int(round(min(max(fraction, 0.0), 1.0) * 255))])


def legend(draw: ImageDraw.ImageDraw, x: int, y: int, lut: np.ndarray, low: str, high: str, width: int = 120) -> None:
    """A horizontal colour bar at (x, y), labelled with its ends."""
    for i in range(width):
        draw.line((x + i, y, x + i, y + 10), fill=colour(lut, i / (width - 1)))
    draw.rectangle((x, y, x + width, y + 10), outline=GREY)
    small = font(12)
    draw.text((x - 4 - draw.textlength(low, font=small), y - 2), low, font=small, fill="black")
    draw.text((x + width + 4, y - 2), high, font=small, fill="black")


def draw_input(img: Image.Image, draw: ImageDraw.ImageDraw, x: int, y: int, e: Explanation) -> int:
    """The 28x28 input at 6x; returns its bottom."""
    draw.text((x, y), "input: 28x28", font=font(15), fill="black")
    side = 28 * 6
    img.paste(Image.fromarray(e.prediction.input28).resize((side, side), Image.NEAREST), (x, y + 22))
    draw.rectangle((x - 1, y + 21, x + side, y + 22 + side), outline=GREY)
    return y + 22 + side


def draw_digit_probs(draw: ImageDraw.ImageDraw, x: int, y: int, e: Explanation, width: int = 330) -> int:
    """Ten bars, P(digit = 0..9), the digit read in blue; returns the bottom."""
    p = e.prediction
    verdict = "" if p.is_digit else "  (doesn't look like a digit)"
    draw.text((x, y), f"digit probabilities: reads {p.digit} ({p.digit_probs[p.digit]:.1%}){verdict}",
              font=font(15), fill=RED if verdict else "black")
    top, height, step = y + 40, 120, width / 10
    for d, prob in enumerate(p.digit_probs):
        x0 = x + d * step + 4
        draw.rectangle((x0, top + height * (1 - prob), x0 + step - 8, top + height),
                       fill=BLUE if d == p.digit else (174, 199, 232))
        draw.text((x0 + step / 2 - 8, top + height + 4), str(d), font=font(14), fill="black")
        if prob >= 0.005:
            draw.text((x0, top + height * (1 - prob) - 16), f"{prob:.0%}", font=font(12), fill=GREY)
    draw.line((x, top + height, x + width, top + height), fill=GREY)
    return top + height + 22


def draw_maps(img: Image.Image, draw: ImageDraw.ImageDraw, x: int, y: int, name: str, maps: np.ndarray,
              lut: np.ndarray) -> int:
    """One layer's activations, a tile per channel on one colour scale (0 to the layer's max); returns the bottom."""
    channels, h, w = maps.shape  # (C, H, W)
    cols, scale = GRIDS[name]
    high = float(maps.max())
    draw.text((x, y), f"{name}: {channels} maps, {h}x{w}", font=font(15), fill="black")
    legend(draw, x + 330, y + 4, lut, "0", f"{high:.2f}")
    draw.text((x + 510, y + 2), "after ReLU; 0 to the layer's max", font=font(12), fill=GREY)
    levels = np.clip(maps / (high if high > 0 else 1.0) * 255, 0, 255).round().astype(np.uint8)
    tiles = lut[levels]  # (C, H, W, 3)
    top = y + 24
    for c in range(channels):
        tile = Image.fromarray(tiles[c]).resize((w * scale, h * scale), Image.NEAREST)
        img.paste(tile, (x + (c % cols) * (w * scale + 2), top + (c // cols) * (h * scale + 2)))
    return top + -(-channels // cols) * (h * scale + 2)


def draw_what_if(draw: ImageDraw.ImageDraw, x: int, y: int, e: Explanation, width: int = 300) -> int:
    """Row n: the sum with number n and its probability; the current number highlighted, a sum other than
    digit + n in red; returns the bottom."""
    digit = e.prediction.digit
    draw.text((x, y), "what if the number were 0-9?", font=font(15), fill="black")
    top, row = y + 24, 22
    for n, s in enumerate(e.what_if):
        y0 = top + n * row
        if n == e.number:
            draw.rectangle((x - 4, y0 - 2, x + width, y0 + row - 3), fill=HIGHLIGHT)
        wrong = s != digit + n
        draw.text((x, y0), f"{digit} + {n}  ->  {s}", font=font(15), fill=RED if wrong else "black")
        prob = float(e.what_if_probs[n, s])
        draw.rectangle((x + 130, y0 + 4, x + 130 + 90 * prob, y0 + 14), fill=BLUE)
        draw.text((x + 228, y0 + 1), f"{prob:.1%}", font=font(13), fill="black")
        if wrong:
            draw.text((x + 272, y0 + 1), f"not {digit + n}", font=font(13), fill=RED)
    wrong = sum(s != digit + n for n, s in enumerate(e.what_if))
    note = f"{wrong} of 10 sums differ from digit + number" if wrong else "every sum is digit + number"
    draw.text((x, top + 10 * row + 2), note, font=font(13), fill=RED if wrong else GREY)
    return top + 10 * row + 20


def draw_sums(draw: ImageDraw.ImageDraw, x: int, y: int, e: Explanation, width: int = 310) -> int:
    """P(sum = 0..18): the network's (blue) next to an exact adder's (orange); returns the bottom."""
    draw.text((x, y), f"sum probabilities with number {e.number}", font=font(15), fill="black")
    draw.rectangle((x, y + 24, x + 10, y + 34), fill=BLUE)
    draw.text((x + 14, y + 22), "network", font=font(13), fill="black")
    draw.rectangle((x + 80, y + 24, x + 90, y + 34), fill=ORANGE)
    draw.text((x + 94, y + 22), f"exact adder: P(digit = sum - {e.number})", font=font(13), fill="black")
    top, height, step = y + 60, 110, width / 19
    for s in range(19):
        x0 = x + s * step
        for k, (probs, fill) in enumerate(((e.sum_probs, BLUE), (e.adder_probs, ORANGE))):
            bar_x = x0 + 1 + k * (step - 2) / 2
            draw.rectangle((bar_x, top + height * (1 - float(probs[s])), bar_x + (step - 2) / 2 - 1, top + height),
                           fill=fill)
        label = str(s)
        bold = s == e.prediction.sum
        draw.text((x0 + step / 2 - draw.textlength(label, font=font(11)) / 2, top + height + 3), label,
                  font=font(11), fill="black" if bold else GREY)
    draw.line((x, top + height, x + width, top + height), fill=GREY)
    gap = float(np.abs(e.sum_probs - e.adder_probs).sum()) / 2
    draw.text((x, top + height + 20), f"sum {e.prediction.sum}; total variation from the adder: {gap:.4f}",
              font=font(13), fill=GREY)
    return top + height + 38


def draw_table(draw: ImageDraw.ImageDraw, x: int, y: int, e: Explanation, lut: np.ndarray) -> int:
    """The mix head's sum for one-hot digit d (row) and number n (column), coloured by its probability; the
    digit read and the number highlighted, a sum other than d + n in red; returns the bottom."""
    draw.text((x, y), "learned table: digit (row) + number (column)", font=font(15), fill="black")
    cell, left, top = 27, x + 22, y + 44
    for n in range(10):
        draw.text((left + n * cell + 10, top - 16), str(n), font=font(12), fill="black")
    for d in range(10):
        draw.text((x + 6, top + d * cell + 7), str(d), font=font(12), fill="black")
        for n in range(10):
            s, prob = int(e.sum_table[d, n]), float(e.sum_table_probs[d, n])
            box = (left + n * cell, top + d * cell, left + (n + 1) * cell - 1, top + (d + 1) * cell - 1)
            draw.rectangle(box, fill=colour(lut, prob))
            label = str(s)
            ink = RED if s != d + n else ("white" if prob > 0.5 else "black")
            draw.text((box[0] + (cell - draw.textlength(label, font=font(13))) / 2, box[1] + 6), label,
                      font=font(13), fill=ink)
            if s != d + n:
                draw.rectangle(box, outline=RED, width=2)
    d, n = e.prediction.digit, e.number
    draw.rectangle((left - 2, top + d * cell - 2, left + 10 * cell + 1, top + (d + 1) * cell + 1), outline=HIGHLIGHT,
                   width=3)
    draw.rectangle((left + n * cell - 2, top - 2, left + (n + 1) * cell + 1, top + 10 * cell + 1), outline=HIGHLIGHT,
                   width=3)
    bottom = top + 10 * cell + 10
    right = (e.sum_table == np.add.outer(np.arange(10), np.arange(10))).sum()
    draw.text((x, bottom), f"sum = d + n in {right} of 100 cells; least sure {e.sum_table_probs.min():.1%}",
              font=font(13), fill="black" if right == 100 else RED)
    legend(draw, x + 110, bottom + 24, lut, "confidence 0", "1")
    return bottom + 40


def draw_figure(e: Explanation, title: str = "") -> Image.Image:
    """The whole figure for one explanation, WIDTH px wide."""
    img = Image.new("RGB", (WIDTH, 2000), "white")
    draw = ImageDraw.Draw(img)
    p = e.prediction
    reads = f"reads {p.digit}" if p.is_digit else f"doesn't look like a digit; best guess {p.digit}"
    headline = f"How it adds: {reads}, {p.digit} + {e.number} = {p.sum} ({p.sum_probs[p.sum]:.1%})"
    draw.text((MARGIN, 14), headline + (f"   {title}" if title else ""), font=font(20), fill="black")
    inferno, blues = palette(INFERNO), palette(BLUES)
    y = 56
    bottom = draw_input(img, draw, MARGIN, y, e)
    draw_digit_probs(draw, MARGIN + 220, y + 10, e)
    y = bottom + GAP
    for name, maps in e.feature_maps.items():
        y = draw_maps(img, draw, MARGIN, y, name, maps, inferno) + GAP
    left_bottom = y
    y = draw_what_if(draw, RIGHT, 56, e) + GAP
    y = draw_sums(draw, RIGHT, y, e) + GAP
    y = draw_table(draw, RIGHT, y, e, blues)
    draw.line((RIGHT - 24, 56, RIGHT - 24, max(left_bottom, y) - GAP), fill=(220, 220, 220))
    return img.crop((0, 0, WIDTH, max(left_bottom - GAP, y) + MARGIN))


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of `python -m mnist_sum.explain`."""
    p = argparse.ArgumentParser(prog="python -m mnist_sum.explain", description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("image", type=Path, help="the drawing: any image file Pillow reads (PNG, JPEG, ...)")
    p.add_argument("--number", type=int, required=True, choices=range(10), metavar="N",
                   help="the number 0-9 added to the digit")
    p.add_argument("--out", type=Path, required=True, help="where to write the figure (PNG)")
    p.add_argument("--weights", type=Path, default=None,
                   help="safetensors weights (default: the shipped handwriting model)")
    return p


def main(argv=None) -> int:
    """Entry point of `python -m mnist_sum.explain`."""
    args = build_parser().parse_args(argv)
    try:
        if not args.image.is_file():
            raise FileNotFoundError(f"no image file {args.image}")
        explanation = Predictor(args.weights).explain(args.image, args.number)
        if explanation is None:
            raise ValueError(f"nothing is drawn in {args.image}: the image is blank")
    except (FileNotFoundError, ValueError) as e:  # WeightsError is a ValueError
        exit_with(e)
    png = io.BytesIO()
    draw_figure(explanation, title=args.image.name).save(png, format="PNG")
    write_atomically(args.out, png.getvalue())
    p = explanation.prediction
    print(f"{args.out}: {p.digit} + {args.number} = {p.sum}; what if 0-9: {explanation.what_if}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
