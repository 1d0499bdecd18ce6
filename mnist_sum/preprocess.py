"""Turn what people draw or upload into the 28x28 input MNIST digits look like.

MNIST digits are light strokes on black, size-normalized so the longest side is 20 px, centred by centre
of mass in 28x28, with strokes about 2.4 px wide. A sketch is nothing like that, so `to_input28`:

1. reads any supported input into an "ink" map in [0, 1] (1 = ink), whatever the polarity, colour or
   alpha, at a working resolution of at most 320 px (box-reduced: cheap, and thin pens stay visible);
2. says "blank" (returns None) when there is no ink: no image, one colour, or a few stray pixels;
3. crops to the ink's bounding box and scales its longest side to 80 px (4x the MNIST box);
4. measures the stroke width there and dilates or erodes the ink to MNIST's width, whatever the pen;
5. reduces to 20 px (anti-aliased), places it in 28x28 by its centre of mass.

Inputs: PIL images in any mode; numpy uint8 arrays (H, W), (H, W, 1|2|3|4); the dict of Gradio's
Sketchpad/ImageEditor ({"background", "layers", "composite"}, any of them None); a file path.
Images above MAX_PIXELS raise ValueError before they are decoded or copied. Files and PIL images are read
as a viewer shows them: a phone stores a photo's pixels as the sensor saw them and says in its EXIF
orientation how to turn them (`upright`).
"""

import math
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps

MAX_PIXELS = 4096 * 4096  # 16.8 MP: far above any canvas, far below a decompression bomb
WORK_SIDE = 320  # longest side (px) of the working resolution the ink is analysed at (800 -> 267)
MIN_CONTRAST = 32  # 0-255: weaker differences from the background are paper, not ink
PALE_INK_CONTRAST = 96  # 0-255: below this difference in green, ink is also looked for in red and blue
MIN_INK_PIXELS = 20  # ink (in original pixels) below this is stray dots, not a digit
MIN_INK_FRACTION = 2e-4  # ... or below this share of the canvas (128 px on 800x800)
BOX = 20  # MNIST's size-normalization box (px)
SCALE = 4  # the stroke width is normalized at SCALE x BOX px
MNIST_STROKE = 2.4  # median stroke width of MNIST digits (px in 28x28), measured with stroke_width()


def to_input28(image) -> np.ndarray | None:
    """Any supported image -> (28, 28) float32 ink in [0, 1], MNIST-style; None when nothing is drawn."""
    ink = ink_map(image)
    if ink is None:
        return None
    return normalize_ink(ink)


# --- 1. reading inputs into ink --------------------------------------------------------------------------

def ink_map(image) -> np.ndarray | None:
    """Ink in [0, 1] at working resolution, (h, w) float32; None when the input holds no ink."""
    if isinstance(image, dict):
        return _ink_from_editor(image)
    if image is None:
        return None
    if isinstance(image, (str, Path)):
        image = _open_checked(image)
    if isinstance(image, Image.Image):
        return _ink_from_pil(image)
    if isinstance(image, np.ndarray):
        return _ink_from_array(image)
    raise ValueError(f"unsupported image type {type(image).__name__}: expected a PIL image, a numpy array, "
                     f"a file path or a Sketchpad dict")


def _check_size(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise ValueError(f"image of {width}x{height} pixels is too large: at most {MAX_PIXELS:,} pixels")


def _open_checked(path) -> Image.Image:
    """Open an image file, checking its size from the header before decoding it."""
    try:
        img = Image.open(path)
    except (OSError, Image.DecompressionBombError) as e:
        raise ValueError(f"cannot read image file {path}: {e}") from None
    _check_size(*img.size)
    try:
        img.load()
        return upright(img)
    except (OSError, SyntaxError) as e:
        raise ValueError(f"cannot decode image file {path} (truncated or corrupt): {e}") from None


def upright(img: Image.Image) -> Image.Image:
    """The image as a viewer shows it: turned (or mirrored) as its EXIF orientation says; itself when upright."""
    # getexif: a JPEG's or WebP's EXIF is read with the header; a PNG's eXIf chunk may follow the pixels,
    # so there it decodes the image (size checks come first).
    if img.getexif().get(ExifTags.Base.Orientation, 1) == 1:
        return img
    return ImageOps.exif_transpose(img)  # a copy without the orientation tag: never turned twice


def _ink_from_editor(value: dict) -> np.ndarray | None:
    """Gradio Sketchpad/ImageEditor value: the composite when present, else layers over background."""
    composite = value.get("composite")
    if _has_pixels(composite):
        return ink_map(composite)
    layers = [layer for layer in (value.get("layers") or []) if _has_pixels(layer)]
    inks = [ink for ink in (ink_map(layer) for layer in layers) if ink is not None]
    if inks:  # ink in the layers' alpha; sizes agree since all layers share the canvas
        shape = min(i.shape for i in inks)
        return np.maximum.reduce([i[:shape[0], :shape[1]] for i in inks])
    background = value.get("background")
    return ink_map(background) if _has_pixels(background) else None


def _has_pixels(value) -> bool:
    if value is None:
        return False
    if isinstance(value, np.ndarray):
        return value.size > 0
    if isinstance(value, Image.Image):
        return value.width > 0 and value.height > 0
    return isinstance(value, (str, Path)) and str(value) != ""


def _ink_from_pil(img: Image.Image) -> np.ndarray | None:
    """Any PIL image -> ink at working resolution (via its pixels as an array)."""
    _check_size(*img.size)
    try:
        img = upright(img)
    except (OSError, SyntaxError) as e:
        raise ValueError(f"cannot decode the image (truncated or corrupt): {e}") from None
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info)
    if img.mode not in ("L", "RGB", "RGBA", "LA"):
        try:  # integer and float modes (I, I;16, F) only convert to L; everything else to RGB(A)
            img = img.convert("L" if img.mode.startswith(("I", "F")) else "RGBA" if has_alpha else "RGB")
        except (ValueError, OSError) as e:
            raise ValueError(f"unsupported image mode {img.mode}: {e}") from None
    return _ink_from_array(np.asarray(img))


def _ink_from_array(arr: np.ndarray) -> np.ndarray | None:
    """(H, W) or (H, W, 1|2|3|4) uint8 -> ink in [0, 1] at working resolution, or None when there is none."""
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 2, 3, 4)):
        raise ValueError(f"unsupported array shape {arr.shape}: expected (H, W), (H, W, 3) or (H, W, 4)")
    _check_size(arr.shape[1], arr.shape[0])
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.dtype != np.uint8:
        raise ValueError(f"unsupported array dtype {arr.dtype}: expected uint8")
    if arr.size == 0:
        return None
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    factor = math.ceil(max(arr.shape[:2]) / WORK_SIDE)
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        alpha = arr[..., -1]
        if np.median(_border(alpha)) < 128:  # transparent canvas: the ink is what is opaque
            return _scale_ink(_band_distance(alpha, factor, paper=0), factor)
        if alpha[::factor, ::factor].min() < 255:  # see-through holes (looked for once per working pixel)
            a = alpha[..., None].astype(np.uint16)
            arr = ((arr[..., :-1] * a + 255 * (255 - a)) // 255).astype(np.uint8)  # shown as white paper
        else:
            arr = arr[..., :-1]  # opaque: alpha carries nothing
        if arr.shape[2] == 1:  # was LA
            arr = arr[..., 0]
    if arr.ndim == 2:
        return _scale_ink(_band_distance(arr, factor), factor)
    # Green carries most of the brightness (0.59 of luma) and costs one band instead of a colour conversion;
    # ink that barely differs from the paper in green (yellow, cyan) is looked for in red and blue as well.
    distance = _band_distance(arr[..., 1], factor)
    if distance.max() < PALE_INK_CONTRAST:
        for c in (0, 2):
            np.maximum(distance, _band_distance(arr[..., c], factor), out=distance)
    return _scale_ink(distance, factor)


def _band_distance(band: np.ndarray, factor: int, paper: int | None = None) -> np.ndarray:
    """How far one (H, W) uint8 band is from the paper (default: its border's median), at working
    resolution, as int16 (h, w)."""
    small = _reduced(Image.fromarray(np.ascontiguousarray(band)), factor)
    if paper is None:
        paper = int(np.median(_border(small)))
    return np.abs(small - np.int16(paper))


def _reduced(band: Image.Image, factor: int) -> np.ndarray:
    """A single-band image box-reduced by factor, as int16 (h, w); box averaging keeps a thin pen as faint
    ink instead of dropping it, and Pillow reduces single bands several times faster than RGB(A)."""
    if factor > 1:
        band = band.reduce((min(factor, band.width), min(factor, band.height)))
    return np.asarray(band, dtype=np.int16)


def _border(a: np.ndarray) -> np.ndarray:
    """The outermost pixels of an image, where a drawing's background shows."""
    return np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])


def _scale_ink(distance: np.ndarray, factor: int) -> np.ndarray | None:
    """Contrast (0-255) at working resolution -> ink in [0, 1], with a noise floor at 15 % and saturation
    at 85 % of the peak; None when the contrast or the amount of ink is too small to be a drawing."""
    pixels_per_px = factor * factor  # original pixels per working pixel
    peak = float(distance.max())
    if peak < MIN_CONTRAST:
        return None
    ink = np.clip((distance - 0.15 * peak) * (1 / (0.7 * peak)), 0, 1, dtype=np.float32)
    full_ink = ink.sum() * pixels_per_px  # in original pixels
    if full_ink < max(MIN_INK_PIXELS, MIN_INK_FRACTION * ink.size * pixels_per_px):
        return None
    return ink


# --- 2. MNIST-style normalization ------------------------------------------------------------------------

def normalize_ink(ink: np.ndarray) -> np.ndarray:
    """Ink map -> (28, 28) float32 in [0, 1]: cropped, stroke width normalized, 20 px box, centred by mass."""
    big = _fit(_crop(ink), BOX * SCALE)  # longest side 80 px
    big = _set_stroke_width(big, MNIST_STROKE * SCALE)
    core = big[big > 0.1]
    if core.size:  # a thin pen on a big canvas arrives as faint ink; MNIST strokes have solid cores
        big = np.clip(big / max(float(np.percentile(core, 90)), 0.25), 0, 1)
    big = _fit(_crop(big), BOX * SCALE)  # dilation grew the box; fit it again
    h, w = big.shape
    small = np.asarray(Image.fromarray(big).resize((max(1, round(w / SCALE)), max(1, round(h / SCALE))),
                                                   Image.Resampling.BOX), dtype=np.float32)
    return _place_by_mass(small)


def _crop(ink: np.ndarray, trim: float = 0.002) -> np.ndarray:
    """Crop to the ink's bounding box, ignoring the outermost `trim` of the ink mass on each side (stray dots)."""
    bounds = []
    for axis in (1, 0):
        profile = ink.sum(axis=axis)
        cumulative = np.cumsum(profile)
        total = cumulative[-1]
        lo = int(np.searchsorted(cumulative, trim * total, side="right"))
        hi = int(np.searchsorted(cumulative, (1 - trim) * total, side="left"))
        bounds.append((lo, max(hi, lo) + 1))
    (top, bottom), (left, right) = bounds
    return ink[top:bottom, left:right]


def _fit(ink: np.ndarray, side: int) -> np.ndarray:
    """Scale so the longest side is `side` px, keeping the aspect ratio (anti-aliased)."""
    h, w = ink.shape
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resample = Image.Resampling.BILINEAR if scale > 1 else Image.Resampling.BOX
    return np.asarray(Image.fromarray(ink.astype(np.float32)).resize(size, resample), dtype=np.float32)


def stroke_width(ink: np.ndarray) -> float:
    """Mean stroke width (px) of soft ink: 2 * area / perimeter, the perimeter from the total variation.

    Total variation is the perimeter averaged over all ink levels, so blur and anti-aliasing don't bias
    it; the anisotropic |dx| + |dy| overestimates a curve's length by 4/pi on average.
    """
    tv = np.abs(np.diff(ink, axis=0)).sum() + np.abs(np.diff(ink, axis=1)).sum()
    return float(2 * ink.sum() / max(tv * math.pi / 4, 1e-6))


def _set_stroke_width(ink: np.ndarray, target: float) -> np.ndarray:
    """Dilate or erode (grey-level, 3x3) so the mean stroke width is about `target` px."""
    pad = math.ceil(target)
    ink = np.pad(ink, pad)
    steps = (target - stroke_width(ink)) / 2  # a 3x3 filter changes the width by 2 px
    if steps > 0:
        whole, frac = int(steps), steps - int(steps)
        for _ in range(whole):
            ink = _max3(ink)
        return ink if frac < 0.05 else (1 - frac) * ink + frac * _max3(ink)
    # thinning: keep strokes at least 3 px (of 80) wide so none vanishes
    steps = min(-steps, max(0.0, (stroke_width(ink) - 3) / 2))
    for _ in range(int(round(steps))):
        ink = -_max3(-ink)
    return ink


def _max3(a: np.ndarray) -> np.ndarray:
    """3x3 grey dilation (separable maxima), edges padded with zeros."""
    p = np.pad(a, 1)
    rows = np.maximum(np.maximum(p[:-2], p[1:-1]), p[2:])
    return np.maximum(np.maximum(rows[:, :-2], rows[:, 1:-1]), rows[:, 2:])


def _place_by_mass(small: np.ndarray) -> np.ndarray:
    """Paste a (h <= 20, w <= 20) digit into 28x28 so its centre of mass is at the centre."""
    out = np.zeros((28, 28), np.float32)
    h, w = small.shape
    total = small.sum()
    if total <= 0:
        return out
    cy = (small.sum(axis=1) * np.arange(h)).sum() / total
    cx = (small.sum(axis=0) * np.arange(w)).sum() / total
    top = int(round(13.5 - cy))
    left = int(round(13.5 - cx))
    # clip where the centring pushes part of the digit out of the frame (very lopsided digits)
    top = min(max(top, 0), 28 - h)
    left = min(max(left, 0), 28 - w)
    out[top:top + h, left:left + w] = np.clip(small, 0, 1)
    return out
