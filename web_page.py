"""What the page loads to draw and read drawings itself (web/pad.js, web/page.js, web/worker.js, web/reader.js,
web/explain_view.js): the model file, made from the served weights when the app starts, the URLs the app
serves them at, and the pad's `head` that loads them.

The app serves every one of these files itself (gr.set_static_paths): the page needs no third-party host.
"""

import hashlib
import json
import tempfile
from pathlib import Path

from mnist_sum.weights import write_atomically
from pad import WEB_DIR
from serving import LOG

SCRIPTS = ("pad.js", "explain_view.js", "page.js")  # loaded by the pad's head, in this order: page.js uses both
STYLES = ("explain_view.css",)
WEB_CACHE = Path(tempfile.gettempdir()) / "mnist-sum-web"  # model files, named by their content


def model_file(weights: Path, folder: Path = WEB_CACHE) -> Path | None:
    """The page's model file for weights (mnist_sum.webmodel), written once per content; None (the server
    reads every drawing) when it cannot be made."""
    try:
        from mnist_sum.webmodel import export

        data = export(weights)
    except Exception as e:  # the page falls back to the server: say why, and serve
        LOG.warning("mnist-sum: the page cannot read drawings itself, the server will: %r", e)
        return None
    path = folder / f"model-{hashlib.sha256(data).hexdigest()[:16]}.bin"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        write_atomically(path, data, durable=False)  # made again at the next start if lost
    return path


def url(path: Path) -> str:
    """A file the app serves itself (see served_files), relative to the page; ?v= its content's hash, so that a
    browser never runs a stale copy after an update."""
    version = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return f"gradio_api/file={path.resolve().as_posix()}?v={version}"


def served_files(model: Path | None, examples: list[Path]) -> list[Path]:
    """The files the page fetches: its scripts and styles, the examples, the reader, its worker and, where it
    could be made, the model file."""
    return ([WEB_DIR / name for name in SCRIPTS + STYLES + ("worker.js", "reader.js")] + list(examples)
            + ([model] if model else []))


def head(settings: dict, model: Path | None) -> str:
    """The pad's `head`: its settings (with the reader's URLs where there is a model file), then its scripts and
    stylesheets, all served by the app.
    Without a model file the page has no reader to load and asks the server for every reading."""
    config = dict(settings)
    reader = WEB_DIR / "reader.js"
    if model is not None and reader.is_file():
        config.update(workerUrl=url(WEB_DIR / "worker.js"), readerUrl=url(reader), modelUrl=url(model))
    config_json = json.dumps(config).replace("</", "<\\/")  # nothing in it may end the <script> element
    return "\n".join([f"<script>window.mnistSumConfig = {config_json};</script>"]
                     + [f'<script src="{url(WEB_DIR / name)}"></script>' for name in SCRIPTS]
                     + [f'<link rel="stylesheet" href="{url(WEB_DIR / name)}">' for name in STYLES])
