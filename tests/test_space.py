"""The repository stays a valid Hugging Face Space, offline: its README configures a Gradio Space that runs
app.py on the pinned Gradio, every file the app reads at run time is tracked and small enough, and the
deploy script (deploy/space.sh, run here with a stand-in `hf`) uploads those files and nothing else."""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from huggingface_hub import SpaceCard
from huggingface_hub.hf_api import DEFAULT_IGNORE_PATTERNS
from huggingface_hub.utils import filter_repo_objects

ROOT = Path(__file__).resolve().parent.parent
MAX_FILE_BYTES = 10 * 1024 * 1024  # the Hub takes larger files only through its large file storage
# The thumbnail colours a Space may use (the Hub's Spaces configuration reference).
SPACE_COLOURS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
# Files the Space reads without the app opening them: its configuration and its dependencies.
SPACE_CONFIG = {"README.md", "requirements.txt"}


def tracked() -> set[str]:
    """The files git tracks, as repository-relative paths with / separators."""
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return {p for p in out.decode().split("\0") if p}


def pinned(package: str) -> str:
    """The version requirements.txt pins package to (`package==version`)."""
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / "requirements.txt").read_text(), re.MULTILINE))
    return pins[package]


# A fresh interpreter imports the app (as the Space does: weights loaded, demo built, examples read) and
# lists the repository files it opened or imported.
AUDIT = textwrap.dedent("""
    import json, os, sys
    root = os.getcwd()
    seen = set()

    def note(path):
        path = os.path.abspath(os.fsdecode(path))
        if path.startswith(root + os.sep) and os.path.isfile(path) and "__pycache__" not in path:
            seen.add(os.path.relpath(path, root).replace(os.sep, "/"))

    def hook(event, args):
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            note(args[0])

    sys.addaudithook(hook)
    sys.path.insert(0, root)
    import app
    for module in list(sys.modules.values()):
        if os.path.isabs(getattr(module, "__file__", None) or ""):
            note(module.__file__)
    print(json.dumps(sorted(seen)))
""")


@pytest.fixture(scope="module")
def runtime_files() -> set[str]:
    """Every repository file the running app needs: what importing it reads, its Space configuration, and
    the files under web/ (served to the browser on request)."""
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    done = subprocess.run([sys.executable, "-c", AUDIT], cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    read = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert {"app.py", "mnist_sum/predict.py"} <= read  # the audit sees what the app reads
    return read | SPACE_CONFIG | {p for p in tracked() if p.startswith("web/")}


@pytest.fixture(scope="module")
def deploy(tmp_path_factory) -> dict:
    """deploy/space.sh run with a stand-in `hf` (the real CLI, its Hub calls recorded instead of made):
    {"create_repo": {...}, "upload_folder": {..., "files": {path it would upload: bytes}}}."""
    folder = tmp_path_factory.mktemp("hf")
    record = folder / "calls.jsonl"
    stand_in = folder / "hf"
    stand_in.write_text(f"#!{sys.executable}\n" + textwrap.dedent("""
        import json, os, sys
        from huggingface_hub import HfApi
        from huggingface_hub.cli.hf import main
        from huggingface_hub.hf_api import DEFAULT_IGNORE_PATTERNS, RepoUrl

        def record(call, **entry):
            with open(os.environ["HF_STAND_IN_RECORD"], "a") as f:
                f.write(json.dumps({"call": call, **entry}) + "\\n")

        def create_repo(self, repo_id, **options):
            record("create_repo", repo_id=repo_id, **{k: options.get(k) for k in ("repo_type", "space_sdk", "exist_ok")})
            return RepoUrl(f"https://huggingface.co/spaces/{repo_id}")

        def upload_folder(self, *, repo_id, folder_path, path_in_repo=None, allow_patterns=None, ignore_patterns=None,
                          delete_patterns=None, **options):
            # the files upload_folder would add, by its own listing and filtering (the README's YAML, which
            # it would send to the Hub to check, is checked offline by the test)
            self._validate_yaml = lambda *args, **kwargs: None
            adds = self._prepare_upload_folder_additions(
                folder_path, path_in_repo or "", allow_patterns=allow_patterns,
                ignore_patterns=list(ignore_patterns or []) + DEFAULT_IGNORE_PATTERNS, repo_type=options.get("repo_type"))
            record("upload_folder", repo_id=repo_id, repo_type=options.get("repo_type"), path_in_repo=path_in_repo,
                   allow_patterns=allow_patterns, ignore_patterns=ignore_patterns, delete_patterns=delete_patterns,
                   files={op.path_in_repo: os.path.getsize(op.path_or_fileobj) for op in adds})
            return f"https://huggingface.co/spaces/{repo_id}"

        HfApi.create_repo, HfApi.upload_folder = create_repo, upload_folder
        sys.argv[0] = "hf"
        sys.exit(main())
    """))
    stand_in.chmod(0o755)
    env = {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}", "HF_STAND_IN_RECORD": str(record),
           "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_UPDATE_CHECK": "1", "HF_HOME": str(folder / "home")}
    done = subprocess.run(["bash", str(ROOT / "deploy" / "space.sh"), "someone/mnist-sum"], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    # `hf repos create`, then `hf upload` (which also makes sure the repository exists)
    assert calls[0]["call"] == "create_repo" and calls[-1]["call"] == "upload_folder", calls
    assert {c["call"] for c in calls} == {"create_repo", "upload_folder"}, calls
    return {"create_repo": calls[0], "upload_folder": calls[-1]}


def kept(paths, upload: dict) -> set[str]:
    """Which of paths the recorded upload's patterns keep (the Hub's own matching, default ignores included)."""
    return set(filter_repo_objects(paths, allow_patterns=upload["allow_patterns"],
                                   ignore_patterns=upload["ignore_patterns"] + DEFAULT_IGNORE_PATTERNS))


def test_readme_configures_a_gradio_space_on_the_pinned_gradio():
    card = SpaceCard.load(ROOT / "README.md")  # the Hub's own parser of the YAML front matter
    config = card.data
    assert config.sdk == "gradio"
    assert config.sdk_version == pinned("gradio")  # the Space runs the Gradio the app is tested on
    assert config.app_file and (ROOT / config.app_file).is_file() and config.app_file in tracked()
    # a string such as "3.11" (unquoted, YAML would read 3.10 as the number 3.1)
    assert isinstance(config.python_version, str) and re.fullmatch(r"3\.\d+(\.\d+)?", config.python_version)
    assert config.title and {config.colorFrom, config.colorTo} <= SPACE_COLOURS


def test_every_file_the_app_needs_is_tracked_and_under_10_mb(runtime_files):
    assert "mnist_sum/weights/mnist_sum.safetensors" in runtime_files or any(
        re.fullmatch(r"mnist_sum/weights/[^/]+\.safetensors", p) for p in runtime_files)
    untracked = sorted(runtime_files - tracked())
    assert not untracked, f"the app needs files git does not track: {untracked}"
    large = {p: (ROOT / p).stat().st_size for p in runtime_files if (ROOT / p).stat().st_size >= MAX_FILE_BYTES}
    assert not large, f"files of 10 MB or more: {large}"


def test_the_deploy_script_creates_a_gradio_space_and_mirrors_the_file_list(deploy):
    create, upload = deploy["create_repo"], deploy["upload_folder"]
    assert (create["repo_id"], create["repo_type"], create["space_sdk"], create["exist_ok"]) == \
        ("someone/mnist-sum", "space", "gradio", True)
    assert (upload["repo_id"], upload["repo_type"], upload["path_in_repo"]) == ("someone/mnist-sum", "space", ".")
    assert upload["delete_patterns"] == ["*"]  # files no longer uploaded leave the Space too


def test_the_upload_holds_every_runtime_file_and_nothing_else(deploy, runtime_files):
    files = deploy["upload_folder"]["files"]
    missing = sorted(runtime_files - set(files))
    assert not missing, f"the Space would lack: {missing}"
    # besides what the app reads: the package's other modules and shipped models (the library the app is part
    # of; MNIST_SUM_WEIGHTS picks the exercise) and the README's pictures
    extra = {p for p in set(files) - runtime_files
             if not re.fullmatch(r"mnist_sum/[^/]+\.py|mnist_sum/weights/[^/]+\.safetensors|demo/[^/]+\.png", p)}
    assert not extra, f"uploaded but not needed: {sorted(extra)}"
    assert all(size < MAX_FILE_BYTES for size in files.values())


def test_the_patterns_keep_the_coming_files_and_drop_junk(deploy):
    upload = deploy["upload_folder"]
    coming = ["web/index.html", "web/js/pad.js", "mnist_sum/weights/exercise.safetensors",
              "mnist_sum/weights/handwriting.safetensors", "serving.py", "gradio_cache.py"]
    assert kept(coming, upload) == set(coming)
    junk = ["runs/2026-12-01/mnist_sum.safetensors", "runs/x/mnist_sum.curves.png",
            ".venv/lib/python3.11/site-packages/gradio/__init__.py", "venv/bin/python",
            "mnist_sum/__pycache__/predict.cpython-311.pyc", "__pycache__/app.cpython-311.pyc",
            "web/__pycache__/x.cpython-311.pyc", "web/.DS_Store", ".pytest_cache/v/cache/nodeids",
            ".hypothesis/examples/0a/1b", ".gradio/certificate.pem", "flagged/log.csv",
            "data/MNIST/raw/t10k-images-idx3-ubyte", "tests/test_app.py", "benchmarks/load.py",
            "pendigits/digits.npz", "mnist_sum/weights/mnist_sum.train.log", "mnist_sum/weights/mnist_sum.curves.png",
            "build/lib/mnist_sum/predict.py", "mnist_sum.egg-info/PKG-INFO", ".git/config", ".ci/run",
            "pyproject.toml", "requirements-dev.txt"]
    assert kept(junk, upload) == set()
