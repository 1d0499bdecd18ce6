"""Training curves as a PNG, drawn with Pillow alone (no plotting library needed at run time)."""

import io
from pathlib import Path

from PIL import Image, ImageDraw

from .weights import write_atomically

SERIES = {  # history key -> (panel, colour, label)
    "train_loss": (0, (31, 119, 180), "train loss"),
    "train_digit": (1, (31, 119, 180), "train digit"),
    "train_sum": (1, (255, 127, 14), "train sum"),
    "test_digit": (1, (44, 160, 44), "test digit"),
    "test_sum": (1, (214, 39, 40), "test sum"),
}


def plot_curves(history: list[dict], path, size: tuple[int, int] = (900, 360)) -> Path:
    """Loss (left) and accuracies (right) per epoch; written atomically to path."""
    w, h = size
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    panels = [(60, 30, w // 2 - 20, h - 50), (w // 2 + 60, 30, w - 20, h - 50)]  # (x0, y0, x1, y1)
    titles = ["loss per epoch", "accuracy per epoch"]
    epochs = [r["epoch"] for r in history]
    span = max(max(epochs, default=0), 1)
    accs = [r[k] for r in history for k in SERIES if SERIES[k][0] == 1 and k in r]
    ranges = [(0.0, max([r["train_loss"] for r in history] + [1e-3]) * 1.1),
              (min(accs + [0.98]) - 0.002, 1.0)]
    for i, (x0, y0, x1, y1) in enumerate(panels):
        draw.rectangle((x0, y0, x1, y1), outline="black")
        draw.text((x0, 8), titles[i], fill="black")
        lo, hi = ranges[i]
        for frac in (0, 0.5, 1):
            y = y1 - frac * (y1 - y0)
            draw.text((x0 - 55, y - 6), f"{lo + frac * (hi - lo):.4f}", fill="gray")
        for e in epochs:
            draw.text((x0 + (x1 - x0) * e / span - 3, y1 + 6), str(e), fill="gray")
        draw.text(((x0 + x1) // 2 - 15, y1 + 22), "epoch", fill="black")
    legend_y = {0: 40, 1: 40}
    for key, (panel, colour, label) in SERIES.items():
        pts = [(r["epoch"], r[key]) for r in history if key in r]
        if not pts:
            continue
        x0, y0, x1, y1 = panels[panel]
        lo, hi = ranges[panel]
        xy = [(x0 + (x1 - x0) * e / span, y1 - (y1 - y0) * (min(max(v, lo), hi) - lo) / (hi - lo)) for e, v in pts]
        if len(xy) > 1:
            draw.line(xy, fill=colour, width=2)
        for x, y in xy:
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)
        draw.text((x1 - 90, legend_y[panel]), label, fill=colour)
        legend_y[panel] += 14
    png = io.BytesIO()
    img.save(png, format="PNG")
    return write_atomically(path, png.getvalue())
