"""What the app keeps in Gradio's cache, and how that cache stays bounded on a busy server (Gradio 6.31.0).

The pictures of what the network saw are files in Gradio's cache (`seen_png`), and cached files (uploads
included) are deleted CACHE_AGE seconds after they were last handed out: by Gradio's delete_cache and by
this module's own pass (`clean_cache`, a FastAPI lifespan), which keeps working where Gradio's stops and
also removes the empty folders Gradio leaves behind. docs/gradio-notes.md shows each Gradio behaviour in a
few lines; each piece here says when it can go.
"""

import asyncio
import hashlib
import io
import logging
import os
import time
from contextlib import asynccontextmanager
from pathlib import Path

import gradio as gr
import numpy as np
import PIL.Image
from gradio.utils import get_upload_folder

from mnist_sum.weights import write_atomically

LOG = logging.getLogger("mnist_sum.app")  # one warning line per failed clean-up (stderr, even unconfigured)
# The PNGs of what the network saw (~1 kB each) live in Gradio's cache, which delete_cache prunes.
SEEN_DIR = Path(get_upload_folder()) / "mnist-sum-seen"
# Cached files (uploads, the PNGs above) are deleted CACHE_AGE seconds after they were last handed out,
# checked every tenth of that, by Gradio's delete_cache and by this app's own pass (see delete_old_files),
# and so are the empty folders Gradio leaves behind (one per uploaded file): disk use stays at about
# (requests/s) x 1.1 CACHE_AGE x ~10 kB.
CACHE_AGE = int(os.environ.get("MNIST_SUM_CACHE_AGE") or 600)
DELETE_CACHE = (max(1, CACHE_AGE // 10), CACHE_AGE)  # Gradio's delete_cache: (every, older than), seconds


def seen_png(pixels: np.ndarray, folder: Path = SEEN_DIR) -> str:
    """The network's input as a PNG file in Gradio's cache, named by its content, written atomically.

    Why a file: Gradio caches an image returned as an array under a name derived from its content and
    rewrites that file in place, so two requests with the same picture at the same moment can send a
    half-written file (seen under load: 12 of 640 requests failed). A file already in Gradio's cache is
    served as it is and deleted by delete_cache once CACHE_AGE old, so these files stay bounded too.
    Gradio 6.31.0 (processing_utils.save_pil_to_cache writes in place); can go, returning the array again,
    once Gradio writes cached files atomically (docs/gradio-notes.md, 3).
    """
    buffer = io.BytesIO()
    PIL.Image.fromarray(pixels).save(buffer, format="PNG")
    data = buffer.getvalue()
    path = folder / f"{hashlib.sha256(data).hexdigest()[:32]}.png"
    try:
        os.utime(path)  # handed out again: delete_cache ages files by their change time
    except FileNotFoundError:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomically(path, data, durable=False)  # a preview: atomic matters, surviving a power cut not
    return str(path)


def prune_empty_folders(cache: Path, age: float) -> int:
    """Remove the empty folders in cache unchanged for age seconds; returns how many were removed.

    Gradio stores each uploaded file in a folder of its own (named by a hash) and delete_cache removes the
    file but not the folder: 4 kB of disk per request for good. A folder's time changes when a file is
    added or removed, so one unchanged for CACHE_AGE has stayed empty that long; rmdir never removes a
    folder with anything in it. Gradio 6.31.0; can go once delete_cache removes the folders it empties
    (docs/gradio-notes.md, 2).
    """
    removed, now = 0, time.time()
    try:
        entries = list(os.scandir(cache))
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False) and now - entry.stat(follow_symlinks=False).st_mtime > age:
                os.rmdir(entry.path)
                removed += 1
        except OSError:  # not empty, or already gone
            pass
    return removed


def delete_old_files(blocks: gr.Blocks, age: float) -> int:
    """Delete the files the app's components put in Gradio's cache once age seconds old; returns how many.

    What delete_cache does, made safe under load: Gradio's own pass walks its sets of cached files while
    requests add to them, fails with "set changed size during iteration" on a busy server and then never
    runs again (seen in benchmarks/soak.py: not one file deleted over 2,000 requests). This pass walks
    copies of the sets and removes what it deleted from them, so the sets stay bounded too. Gradio 6.31.0
    (route_utils.delete_files_created_by_app); can go once that pass iterates over copies (docs/gradio-notes.md, 1).
    """
    keep = set().union(*(getattr(block, "keep_in_cache", set()) for block in blocks.blocks.values()))
    deleted, now = 0, time.time()
    for files in blocks.temp_file_sets:
        for path in list(files):  # a copy, taken at once (the GIL is held): requests add files meanwhile
            if path in keep:
                continue
            try:
                if now - os.lstat(path).st_ctime > age:  # ctime, as delete_cache: a file handed out again is touched
                    os.remove(path)
                    deleted += 1
                    files.discard(path)
            except FileNotFoundError:
                files.discard(path)
    return deleted


@asynccontextmanager
async def clean_cache(app):
    """While the server runs (a FastAPI lifespan): delete_old_files and prune_empty_folders as often as delete_cache.

    Passed to Blocks.launch as app_kwargs={"lifespan": ...}; Gradio 6.31.0 runs it beside its own delete_cache
    task. Goes when both passes above can go.
    """
    async def every_while():
        """Delete and prune, then wait, until cancelled."""
        while True:
            await asyncio.sleep(DELETE_CACHE[0])
            try:
                await asyncio.to_thread(delete_old_files, app.get_blocks(), CACHE_AGE)
                await asyncio.to_thread(prune_empty_folders, Path(get_upload_folder()), CACHE_AGE)
            except Exception as e:  # housekeeping must outlive any one failure: say so and go on
                LOG.warning("mnist-sum: cache clean-up failed: %r", e)

    task = asyncio.create_task(every_while())
    try:
        yield
    finally:
        task.cancel()
