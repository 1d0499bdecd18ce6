"""Saving and loading weights: safetensors only, written atomically, validated on load.

A run killed at any moment leaves the previous file intact: the new weights go to a temporary file in
the same folder, are flushed and fsynced, then os.replace()d over the old one in a single step.
"""

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from .model import MODEL_CONFIG, MNISTSumNet

WEIGHTS_DIR = Path(__file__).parent / "weights"
# Two shipped models, each for its own job, each made by one command of the README:
# the course exercise (MNIST only, 5 epochs: `python -m mnist_sum.train`), the MNIST record and where --pen starts;
EXERCISE_WEIGHTS = WEIGHTS_DIR / "exercise.safetensors"
# and the real-handwriting model (`python -m mnist_sum.train --pen`, from the exercise), which reads pen-written
# digits from unseen writers and knows when a drawing is not a digit: what the app and Predictor() use.
HANDWRITING_WEIGHTS = WEIGHTS_DIR / "handwriting.safetensors"
SHIPPED_WEIGHTS = HANDWRITING_WEIGHTS
SHIPPED_MODELS = {"exercise": EXERCISE_WEIGHTS, "handwriting": HANDWRITING_WEIGHTS}
FORMAT = "mnist-sum/1"


class WeightsError(ValueError):
    """A weights file is missing, unreadable, or does not fit MNISTSumNet; the message names file and fault."""


JSON_FIELDS = ("model_config", "train_args", "metrics", "not_a_digit")


def save_weights(model: torch.nn.Module, path, train_args: dict | None = None, metrics: dict | None = None,
                 not_a_digit: dict | None = None) -> Path:
    """Write model's state dict and metadata to path atomically (temp file + fsync + os.replace).

    not_a_digit: the score and threshold below which a drawing is called "not a digit" (see predict.py)."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "model_config": json.dumps(MODEL_CONFIG),
        "train_args": json.dumps(train_args or {}),
        "metrics": json.dumps(metrics or {}),
        "not_a_digit": json.dumps(not_a_digit or {}),
        "torch_version": torch.__version__,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return write_atomically(path, save_safetensors_bytes(tensors, metadata=metadata))


def write_atomically(path, data: bytes, durable: bool = True) -> Path:
    """Replace path's content with data in one step (temp file in the same folder, os.replace): a process
    killed at any moment leaves the old file or the new one, never a mix. durable also fsyncs file and
    folder, so a power cut cannot lose the rename; the app's throw-away images skip that cost."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the permissions open() would
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(path.parent)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_metadata(path) -> dict:
    """The metadata of a weights file, JSON fields decoded."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
    except (OSError, SafetensorError) as e:
        raise WeightsError(f"{path}: cannot read safetensors header ({e})") from None
    try:
        return {k: (json.loads(v) if k in JSON_FIELDS else v) for k, v in raw.items()}
    except json.JSONDecodeError as e:
        raise WeightsError(f"{path}: corrupt metadata in the safetensors header ({e})") from None


def load_state_dict(path) -> dict[str, torch.Tensor]:
    """Read and fully validate a weights file against MNISTSumNet; raise WeightsError on any fault."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise WeightsError(f"{path}: cannot read weights file ({e.strerror})") from None
    try:
        tensors = load_safetensors_bytes(data)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise WeightsError(f"{path}: not a valid safetensors file, truncated or corrupt ({e})") from None

    expected = MNISTSumNet().state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise WeightsError(f"{path}: does not match MNISTSumNet (missing keys {missing}, unexpected keys {unexpected})")
    for name, ref in expected.items():
        t = tensors[name]
        if t.shape != ref.shape:
            raise WeightsError(f"{path}: {name} has shape {tuple(t.shape)}, expected {tuple(ref.shape)}")
        if t.dtype != ref.dtype:
            raise WeightsError(f"{path}: {name} has dtype {t.dtype}, expected {ref.dtype}")
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise WeightsError(f"{path}: {name} contains NaN or infinite values")
    return tensors


def load_model(path=None) -> MNISTSumNet:
    """The network in eval mode on CPU, from path (default: the shipped weights), validated."""
    model = MNISTSumNet()
    model.load_state_dict(load_state_dict(SHIPPED_WEIGHTS if path is None else path))
    return model.eval()
