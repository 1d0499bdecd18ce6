"""What the page loads to read drawings itself (web/page.js, web/worker.js, web/reader.js): the model file, made
from the served weights when the server starts, and the <head> script that starts it all.

The app serves every one of these files itself (gr.set_static_paths): the page needs no third-party host.
"""

import hashlib
import json
import tempfile
from pathlib import Path

from mnist_sum.weights import write_atomically
from serving import LOG

WEB_DIR = Path(__file__).parent / "web"  # paint.js and page.js (inlined in the page), worker.js and reader.js (served)
INLINED = ("paint.js", "page.js")  # in this order: page.js uses paint.js
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


def served_files(model: Path | None) -> list[Path]:
    """The files the page fetches: the reader, its worker and, where it could be made, the model file."""
    return [WEB_DIR / "worker.js", WEB_DIR / "reader.js"] + ([model] if model else [])


def page_head(settings: dict, model: Path | None) -> str:
    """The page's <head> addition: web/paint.js and web/page.js with its settings, inlined (so they run before the
    pad starts).
    Without a model file the page has no reader to load and asks the server for every reading."""
    def url(path: Path) -> str:
        """A file the app serves itself (see served_files), relative to the page."""
        return f"gradio_api/file={path.resolve().as_posix()}"

    config = dict(settings)
    reader = WEB_DIR / "reader.js"
    if model is not None and reader.is_file():
        config.update(workerUrl=url(WEB_DIR / "worker.js"), readerUrl=url(reader), modelUrl=url(model))
    script = "\n".join((WEB_DIR / name).read_text(encoding="utf-8") for name in INLINED)
    if "</script" in script.lower():
        raise ValueError(f"{' and '.join(INLINED)} must not contain '</script'")
    config_json = json.dumps(config).replace("</", "<\\/")  # nothing in it may end the <script> element
    return f"<script>window.mnistSumConfig = {config_json};\n{script}</script>"
