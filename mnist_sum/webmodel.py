"""The model file the page's in-browser reader (web/reader.js) loads, made from a safetensors weights file.

Layout, all little-endian:

    uint32      n, the length of the JSON header in bytes
    n bytes     JSON header: format, threshold (the not-a-digit cut, or null), source_sha256 (of the weights
                file), data_offset, and per tensor its name, shape and byte offset into the data
    padding     zeros up to data_offset, a multiple of 4, so the data can be viewed as float32 in place
    data        the float32 tensors, one after another, in the order of MNISTSumNet's state dict

Only floating-point tensors travel (BatchNorm's num_batches_tracked is an int and unused in eval mode).
The bytes depend only on the weights file, so exporting twice gives the same file. The app calls
`export()` at start-up for the weights it serves; `python -m mnist_sum.webmodel --out FILE` writes one.
"""

import argparse
import hashlib
import json
import struct
import sys
from pathlib import Path

import numpy as np

from .cli import HelpFormatter
from .model import MNISTSumNet
from .weights import SHIPPED_WEIGHTS, load_state_dict, read_metadata, write_atomically

FORMAT = "mnist-sum-web/1"  # web/reader.js checks it


def export(weights_path=None) -> bytes:
    """The model file's bytes for a weights file (default: the shipped weights); WeightsError if invalid."""
    path = Path(SHIPPED_WEIGHTS if weights_path is None else weights_path)
    tensors = load_state_dict(path)  # validated against MNISTSumNet
    threshold = read_metadata(path).get("not_a_digit", {}).get("threshold")
    entries, chunks, offset = [], [], 0
    for name in MNISTSumNet().state_dict():  # a fixed order: the file's loader returns its own
        tensor = tensors[name]
        if not tensor.is_floating_point():
            continue
        data = tensor.detach().cpu().float().contiguous().numpy().astype("<f4").tobytes()
        entries.append({"name": name, "shape": list(tensor.shape), "offset": offset})
        chunks.append(data)
        offset += len(data)
    header = {"format": FORMAT, "threshold": None if threshold is None else float(threshold),
              "source_sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "data_offset": 0, "tensors": entries}
    # data_offset is counted from the file's start; its own digits change the header's length, so settle it
    for _ in range(3):
        text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
        data_offset = -(-(4 + len(text)) // 4) * 4
        if header["data_offset"] == data_offset:
            break
        header["data_offset"] = data_offset
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    padding = header["data_offset"] - 4 - len(text)
    return struct.pack("<I", len(text)) + text + b"\0" * padding + b"".join(chunks)


def read(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """A model file's header and tensors (float32 arrays), as web/reader.js reads them; ValueError if corrupt."""
    if len(data) < 4:
        raise ValueError("model file too short")
    (n,) = struct.unpack_from("<I", data)
    try:
        header = json.loads(data[4:4 + n])
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"model file header is not JSON: {e}") from None
    if header.get("format") != FORMAT:
        raise ValueError(f"model file format {header.get('format')!r}, expected {FORMAT!r}")
    body = data[header["data_offset"]:]
    tensors = {}
    for t in header["tensors"]:
        count = int(np.prod(t["shape"]))
        if t["offset"] + 4 * count > len(body):
            raise ValueError(f"model file truncated at {t['name']}")
        tensors[t["name"]] = np.frombuffer(body, "<f4", count, t["offset"]).reshape(t["shape"])
    return header, tensors


def main(argv=None) -> int:
    """Command line: write the model file for a weights file."""
    parser = argparse.ArgumentParser(prog="python -m mnist_sum.webmodel", description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--weights", type=Path, default=None,
                        help="safetensors weights to export (default: the shipped weights, "
                             "mnist_sum.weights.SHIPPED_WEIGHTS)")
    parser.add_argument("--out", type=Path, required=True,
                        help="where to write the model file (e.g. mnist_sum.web.bin)")
    args = parser.parse_args(argv)
    try:
        data = export(args.weights)
    except ValueError as e:  # WeightsError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 1
    write_atomically(args.out, data, durable=False)
    print(f"wrote {args.out} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
