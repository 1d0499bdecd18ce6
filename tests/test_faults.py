"""Faults: killed saves and training runs, broken weights files, and MNIST missing with no network.

Everything here runs in a few seconds' worth of subprocesses on a tiny IDX data set written by the tests;
nothing touches the shipped weights or the network.

Temporary files: save_weights writes `.<name>.<random>.tmp` next to the target and renames it over the
target. SIGKILL cannot be caught, so a save killed before the rename leaves that temp file behind. That
is accepted: the name is hidden, matches `*.tmp` (git-ignored), is never read by load_model (which opens
only the exact path), and the next save uses a fresh random name, so it neither trips over nor reuses it.
The tests check that nothing else is ever left behind and that the target is always complete.
"""

import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from mnist_sum.model import MNISTSumNet
from mnist_sum.weights import WeightsError, load_model, save_weights

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
POSIX_ONLY = pytest.mark.skipif(not hasattr(os, "fork") or not hasattr(signal, "SIGKILL"),
                                reason="needs fork and SIGKILL")


# --- helpers --------------------------------------------------------------------------------------------

def seeded_model(seed: int) -> MNISTSumNet:
    """A freshly initialised network; the same seed gives the same weights."""
    torch.manual_seed(seed)
    return MNISTSumNet().eval()


def probe_outputs(model) -> tuple[torch.Tensor, torch.Tensor]:
    """The network's digit and sum logits on a fixed batch of 10 inputs, one per number."""
    x = torch.randn(10, 1, 28, 28, generator=torch.Generator().manual_seed(123))
    numbers = torch.eye(10)
    with torch.inference_mode():
        return model.eval()(x, numbers)


def same_outputs(a, b) -> bool:
    """Bit-identical outputs."""
    return all(torch.equal(x, y) for x, y in zip(a, b))


def which_model(path: Path, candidates: dict[str, tuple]) -> str:
    """Load path and say which of the candidate models' outputs it reproduces exactly (else AssertionError)."""
    outputs = probe_outputs(load_model(path))  # raises WeightsError on a broken file
    for name, expected in candidates.items():
        if same_outputs(outputs, expected):
            return name
    raise AssertionError(f"{path} loads but matches none of {sorted(candidates)}")


def stray_files(folder: Path, keep: set[str]) -> list[str]:
    """Files in folder that are neither in keep nor a hidden `.*.tmp` left by a killed atomic write."""
    return sorted(p.name for p in folder.iterdir()
                  if p.name not in keep and not (p.name.startswith(".") and p.name.endswith(".tmp")))


def write_idx(folder: Path, n_train: int = 64, n_test: int = 32) -> Path:
    """A tiny MNIST in the real IDX format (big-endian; magic 2051 images, 2049 labels) under folder/MNIST/raw."""
    raw = folder / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        images = np.zeros((n, 28, 28), np.uint8)
        for i, label in enumerate(labels):  # a bar whose position says the label: learnable, cheap
            images[i, 4:24, 2 + 2 * label:5 + 2 * label] = 255
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())
    return folder


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_clean_error(path: Path, make_broken) -> None:
    """load_model(path) raises exactly one WeightsError (no chained exception) whose message names path."""
    make_broken(path)
    with pytest.raises(WeightsError) as info:
        load_model(path)
    err = info.value
    assert type(err) is WeightsError
    assert str(path) in str(err), f"message does not name the file: {err}"
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__), "chained exception"


# --- killed saves ---------------------------------------------------------------------------------------

# Runs in one subprocess: loads the two reference models once, then for each command on stdin forks a child
# that saves with the real save_weights and is SIGKILLed, by the test after a delay ("loop": saves new and
# old alternately, without end) or by itself at a chosen point inside save_weights ("inject <point>").
SAVER = r"""
import os, signal, sys
import torch
torch.set_num_threads(1)  # no thread pool exists when forking
from mnist_sum import weights as W

target, old_path, new_path = sys.argv[1:4]
models = {"old": W.load_model(old_path), "new": W.load_model(new_path)}

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

class HalfWriter:
    "A file that writes the first half of what it is given, then dies."
    def __init__(self, fd, mode):
        self.f = os.fdopen(fd, mode)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self.f.close()
    def write(self, data):
        self.f.write(data[: len(data) // 2])
        self.f.flush()
        die()

class FaultyOS:
    "The os module as weights.py sees it, except that one function kills the process."
    def __init__(self, point):
        self.point = point
    def __getattr__(self, name):
        if self.point == "write" and name == "fdopen":
            return HalfWriter
        if name == {"fsync": "fsync", "replace": "replace", "dirsync": "open"}.get(self.point):
            return die
        return getattr(os, name)

print("ready", flush=True)
for line in sys.stdin:
    command = line.split()
    pid = os.fork()
    if pid == 0:
        if command[0] == "loop":
            for i in range(100_000):
                W.save_weights(models[("new", "old")[i % 2]], target)
        else:
            W.os = FaultyOS(command[1])
            W.save_weights(models["new"], target)
        os._exit(0)  # only reached when no kill happened
    print(f"child {pid}", flush=True)
    print(f"status {os.waitpid(pid, 0)[1]}", flush=True)
"""


class Saver:
    """The SAVER subprocess, driven one command at a time, with every wait bounded."""

    def __init__(self, target: Path, old: Path, new: Path, timeout: float = 60):
        self.proc = subprocess.Popen([sys.executable, "-c", SAVER, str(target), str(old), str(new)], cwd=ROOT,
                                     env=ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.timeout = timeout
        assert self.read_line() == "ready"

    def read_line(self) -> str:
        """The subprocess's next output line, waiting at most self.timeout seconds."""
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        assert ready, "saver subprocess did not answer in time"
        line = self.proc.stdout.readline()
        assert line, f"saver subprocess ended (exit status {self.proc.poll()})"
        return line.strip()

    def run(self, command: str, kill_after: float | None = None) -> int:
        """Run one command; kill its child after kill_after seconds if given; return the child's wait status."""
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        pid = int(self.read_line().split()[1])
        if kill_after is not None:
            time.sleep(kill_after)
            os.kill(pid, signal.SIGKILL)
        return int(self.read_line().split()[1])

    def close(self) -> None:
        """Stop the subprocess."""
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@POSIX_ONLY
def test_killed_save_leaves_the_old_or_the_new_weights_never_a_broken_file(tmp_path):
    """SIGKILL at each step inside save_weights and at timed moments of a save loop: always a whole file."""
    refs, folder = tmp_path / "refs", tmp_path / "weights"
    old_model, new_model = seeded_model(1), seeded_model(2)
    save_weights(old_model, refs / "old.safetensors")
    save_weights(new_model, refs / "new.safetensors")
    expected = {"old": probe_outputs(old_model), "new": probe_outputs(new_model)}
    assert not same_outputs(expected["old"], expected["new"])
    target = folder / "w.safetensors"

    saver = Saver(target, refs / "old.safetensors", refs / "new.safetensors")
    try:
        # killed inside the save: before the rename the old file stays, after it the new one is complete
        for point, survivor in [("write", "old"), ("fsync", "old"), ("replace", "old"), ("dirsync", "new")]:
            save_weights(old_model, target)
            status = saver.run(f"inject {point}")
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, \
                f"fault point {point!r} was never reached: has save_weights changed?"
            assert which_model(target, expected) == survivor, point
            assert stray_files(folder, {target.name}) == [], point
        # killed at arbitrary moments of back-to-back saves
        for delay in (0.0, 0.004, 0.02, 0.05, 0.13):
            status = saver.run("loop", kill_after=delay)
            assert os.WIFSIGNALED(status), f"save loop ended by itself after {delay} s"
            which_model(target, expected)  # old or new, never broken
            assert stray_files(folder, {target.name}) == [], delay
    finally:
        saver.close()
    # at most one temp file per killed save; load_model ignores them and the next save is unaffected
    assert len(list(folder.glob(".*.tmp"))) <= 9
    save_weights(new_model, target)
    assert which_model(target, expected) == "new"


# --- killed training runs -------------------------------------------------------------------------------

# Runs the real `python -m mnist_sum.train`, with os.replace in mnist_sum.weights killing the process: a
# run killed in the instant between writing the final weights and putting them in place.
TRAIN_KILLED_AT_REPLACE = r"""
import os, runpy, signal, sys
import mnist_sum.weights as W

class KillAtReplace:
    def __getattr__(self, name):
        if name == "replace":
            return lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
        return getattr(os, name)

W.os = KillAtReplace()
sys.argv = ["mnist_sum.train", *sys.argv[1:]]
runpy.run_module("mnist_sum.train", run_name="__main__", alter_sys=True)
"""


@POSIX_ONLY
def test_killed_training_run_leaves_the_previous_weights(tmp_path):
    """SIGKILL `python -m mnist_sum.train` at several points; --out still holds the previous weights."""
    data = write_idx(tmp_path / "data")
    previous = seeded_model(1)
    expected = {"previous": probe_outputs(previous)}
    common = ["--data-dir", str(data), "--batch-size", "32", "--threads", "1"]
    runs = {  # name -> (extra arguments, kill when this text is in the output; None: kills itself)
        "importing": (["--epochs", "1000"], 0.3),
        "first epoch done": (["--epochs", "1000"], "epoch: 0 "),
        "final save": (["--epochs", "1", "--max-steps", "3"], None),
    }
    procs = {}
    for i, (name, (extra, _)) in enumerate(runs.items()):
        out = tmp_path / f"run{i}" / "w.safetensors"
        save_weights(previous, out)
        log = tmp_path / f"run{i}.log"
        args = [*common, *extra, "--out", str(out)]
        cmd = ([sys.executable, "-c", TRAIN_KILLED_AT_REPLACE, *args] if runs[name][1] is None
               else [sys.executable, "-m", "mnist_sum.train", *args])
        with open(log, "w") as f:
            procs[name] = (subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=f, stderr=subprocess.STDOUT), out, log)
    started = time.monotonic()
    try:
        pending = set(runs)
        while pending and time.monotonic() - started < 120:
            for name in sorted(pending):
                proc, _, log = procs[name]
                trigger = runs[name][1]
                if proc.poll() is not None:
                    pending.discard(name)
                elif (isinstance(trigger, float) and time.monotonic() - started >= trigger
                      or isinstance(trigger, str) and trigger in log.read_text(errors="replace")):
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(timeout=10)
                    pending.discard(name)
            time.sleep(0.02)
    finally:
        for proc, _, _ in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for name, (proc, out, log) in procs.items():
        output = log.read_text(errors="replace")
        assert proc.returncode == -signal.SIGKILL, f"{name}: not killed (exit {proc.returncode}):\n{output[-2000:]}"
        if not isinstance(runs[name][1], float):
            assert "config:" in output, f"{name}: killed before training started:\n{output[-2000:]}"
        assert which_model(out, expected) == "previous", name
        assert stray_files(out.parent, {out.name, "w.curves.png"}) == [], name


# --- broken weights -------------------------------------------------------------------------------------

def _good_file(path: Path) -> bytes:
    """Save a valid weights file at path; its bytes."""
    save_weights(seeded_model(1), path)
    return path.read_bytes()


def _header_size(data: bytes) -> int:
    """Length of the JSON header of a safetensors file, from its 8-byte little-endian prefix."""
    return struct.unpack("<Q", data[:8])[0]


def _truncate(at):
    """A valid file cut at byte `at` (an int, or a function of the file's bytes)."""
    def make(path: Path) -> None:
        """Write the truncated file."""
        data = _good_file(path)
        cut = at(data) if callable(at) else at
        path.write_bytes(data[:cut])
    return make


def _flip_header_byte(find: bytes, offset: int = 0, bit: int = 1):
    """Flip one bit of the header byte at the first occurrence of `find` (plus offset)."""
    def make(path: Path) -> None:
        """Write the flipped file."""
        data = bytearray(_good_file(path))
        pos = data.index(find, 8, 8 + _header_size(data)) + offset
        data[pos] ^= 1 << bit
        path.write_bytes(bytes(data))
    return make


def _rewrite_tensors(change):
    """A well-formed safetensors file whose tensors were changed by change(dict)."""
    def make(path: Path) -> None:
        """Write the changed file."""
        tensors = {k: v.clone().contiguous() for k, v in seeded_model(1).state_dict().items()}
        change(tensors)
        save_file(tensors, str(path))
    return make


BROKEN = {
    "missing": lambda path: None,
    "empty": lambda path: path.write_bytes(b""),
    "not safetensors (a torch pickle)": lambda path: torch.save(seeded_model(1).state_dict(), path),
    "truncated in the length prefix": _truncate(4),
    "truncated in the header": _truncate(lambda d: 8 + _header_size(d) // 2),
    "truncated in the tensor data": _truncate(lambda d: len(d) // 2),
    "truncated by one byte": _truncate(lambda d: len(d) - 1),
    "bit flip: header opening brace": _flip_header_byte(b"{", bit=0),
    "bit flip: dtype": _flip_header_byte(b'"F32"', offset=1, bit=1),
    "bit flip: shape": _flip_header_byte(b'"shape":[512', offset=9, bit=0),
    "bit flip: data offsets": _flip_header_byte(b'"data_offsets":[16,', offset=17, bit=2),
    "bit flip: tensor name": _flip_header_byte(b'"classifier.0.bias"', offset=3, bit=5),
    "wrong shape": _rewrite_tensors(lambda t: t.update({"classifier.0.weight": torch.zeros(512, 999)})),
    "wrong dtype": _rewrite_tensors(lambda t: t.update({"mix.0.weight": t["mix.0.weight"].double()})),
    "missing tensor": _rewrite_tensors(lambda t: t.pop("mix.2.bias")),
    "extra tensor": _rewrite_tensors(lambda t: t.update({"extra": torch.zeros(3)})),
    "NaN weights": _rewrite_tensors(lambda t: t["conv.0.weight"].view(-1)[7].fill_(float("nan"))),
}


@pytest.mark.parametrize("fault", list(BROKEN))
def test_broken_weights_fail_with_one_clear_error(tmp_path, fault):
    """Each kind of broken file fails load_model with a single WeightsError that names the file."""
    assert_clean_error(tmp_path / "broken.safetensors", BROKEN[fault])


def test_any_header_bit_flip_is_rejected_or_harmless(tmp_path):
    """Bit flips across the JSON header: a WeightsError naming the file, or (in metadata) the same weights."""
    path = tmp_path / "w.safetensors"
    good = _good_file(path)
    reference = probe_outputs(load_model(path))
    size = _header_size(good)
    rejected = 0
    for pos in range(8, 8 + size, max(1, size // 64)):  # ~64 positions spread over the header
        data = bytearray(good)
        data[pos] ^= 1 << (pos % 8)
        path.write_bytes(bytes(data))
        try:
            model = load_model(path)
        except WeightsError as e:
            assert str(path) in str(e)
            rejected += 1
            continue
        assert same_outputs(probe_outputs(model), reference), f"flip at byte {pos} silently changed the model"
    assert rejected > 0


def test_corrupt_metadata_fails_with_one_clear_error(tmp_path):
    """A bit flip that breaks a JSON value inside __metadata__: read_metadata (used by the app) says which file."""
    path = tmp_path / "w.safetensors"
    save_weights(seeded_model(1), path, metrics={"final": {"test_digit": 0.99}})
    data = bytearray(path.read_bytes())
    pos = data.index(b"test_digit", 8, 8 + _header_size(data)) - 3  # the escaped quote before the key
    data[pos] ^= 0x40  # '"' -> 'b': the metrics string is no longer JSON, the header still is
    path.write_bytes(bytes(data))
    load_model(path)  # the tensors are intact
    from mnist_sum.weights import read_metadata

    with pytest.raises(WeightsError, match=re.escape(str(path))):
        read_metadata(path)


# --- the app with broken weights ------------------------------------------------------------------------

def test_app_refuses_to_start_with_broken_weights(tmp_path):
    """`python app.py` with MNIST_SUM_WEIGHTS pointing at a truncated file: one clear line, exit status != 0.

    One fault is enough here: every kind of broken file reaches the app as the same WeightsError (above).
    """
    weights = tmp_path / "truncated.safetensors"
    _truncate(lambda d: len(d) // 3)(weights)
    env = {**ENV, "MNIST_SUM_WEIGHTS": str(weights), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_SERVER_PORT": str(free_port())}
    try:
        proc = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("app.py kept running with broken weights")
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"exit status 0\n{output}"
    assert str(weights) in output, f"message does not name the file\n{output}"
    assert "Traceback" not in output, f"traceback instead of a message\n{output}"


# --- no MNIST and no network ----------------------------------------------------------------------------

@pytest.mark.parametrize("command", [
    ["mnist_sum.train", "--epochs", "1"],
    ["mnist_sum.evaluate"],
    ["mnist_sum.sketches", "--write-examples", "examples"],
])
def test_no_data_and_no_network_says_why_and_what_to_provide(tmp_path, command):
    """Empty --data-dir and every download refused: exit != 0 fast, the reason and the "provide these files"
    text, no traceback, and no empty MNIST/raw/ folders left behind."""
    blocked = "http://127.0.0.1:9"  # the discard port: connections are refused at once, even where a network exists
    env = {k: v for k, v in ENV.items() if k.lower() != "no_proxy"}
    env.update(http_proxy=blocked, https_proxy=blocked, HTTP_PROXY=blocked, HTTPS_PROXY=blocked)
    data = tmp_path / "empty"
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", *command, "--data-dir", str(data)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    seconds = time.monotonic() - started
    assert proc.returncode != 0
    assert "could not be downloaded (no network: " in proc.stderr, proc.stderr
    assert "Provide the four files" in proc.stderr and "train-images-idx3-ubyte" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert not data.exists(), "a failed lookup left folders behind"
    assert not (tmp_path / "runs").exists() and not (tmp_path / "examples").exists()
    assert seconds < 60, f"took {seconds:.0f} s to give up"
