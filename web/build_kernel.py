"""Build web/kernel.wasm from web/kernel.c and embed it in web/reader.js (its KERNEL_WASM line).

    apt-get install clang lld      # Debian 12: clang 14, wasm-ld 14
    python web/build_kernel.py     # deterministic: the same compiler gives the same bytes

The .wasm is committed next to its source, so the page needs no compiler; tests/test_web_reader.py checks that
reader.js embeds exactly the committed .wasm.
"""

import argparse
import base64
import re
import subprocess
import sys
from pathlib import Path

WEB = Path(__file__).resolve().parent
MEMORY = 112 * 65536  # bytes (112 pages): weights 2.9 MB + activations 3 MB + 64 KB stack, rounded up
LINE = re.compile(r'^(  const KERNEL_WASM = ")[A-Za-z0-9+/=]*(";.*)$', re.M)


def build(clang: str = "clang") -> bytes:
    """Compile the kernel (wasm32, SIMD, no libc: copies become bulk-memory instructions) and return the bytes."""
    out = WEB / "kernel.wasm"
    subprocess.run([clang, "--target=wasm32", "-O3", "-msimd128", "-mbulk-memory", "-nostdlib", "-Wl,--no-entry",
                    f"-Wl,--initial-memory={MEMORY}", "-Wl,--strip-all", "-o", str(out), str(WEB / "kernel.c")],
                   check=True)
    return out.read_bytes()


def embed(wasm: bytes) -> None:
    """Write the .wasm, base64-encoded, into reader.js's KERNEL_WASM line."""
    reader = WEB / "reader.js"
    text = reader.read_text()
    new, count = LINE.subn(lambda m: m.group(1) + base64.b64encode(wasm).decode() + m.group(2), text)
    if count != 1:
        raise SystemExit("reader.js: expected exactly one KERNEL_WASM line")
    reader.write_text(new)


def main(argv=None) -> int:
    """Command line: build and embed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clang", default="clang", help="the clang to compile with (default: clang on PATH)")
    args = parser.parse_args(argv)
    wasm = build(args.clang)
    embed(wasm)
    print(f"web/kernel.wasm: {len(wasm)} bytes, embedded in web/reader.js")
    return 0


if __name__ == "__main__":
    sys.exit(main())
