#!/usr/bin/env bash
# The app on another Gradio release, checked in headless Chromium by deploy/gradio_check.py, in a throwaway
# environment: gradio==VERSION with its own dependencies, and torch and the rest of this project's environment
# behind it (not installed again).
#
#   deploy/check_gradio.sh 6.20.0      # the lowest release pyproject.toml admits
#   deploy/check_gradio.sh 6.31.0      # the one requirements.txt pins
#
# Run it with the project's environment active (or PYTHON=its python). pip installs gradio into a new venv that
# cannot see that environment, so nothing in it changes; a .pth file then appends the environment's
# site-packages after the venv's own, so that the venv's gradio (and its pinned gradio_client) win.
set -euo pipefail
version="${1:?usage: deploy/check_gradio.sh VERSION}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python}"
"$python" -c 'import torch, playwright' || { echo "check_gradio: activate the project's environment" >&2; exit 2; }
main_site="$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

venv="$(mktemp -d "/tmp/gradio-$version.XXXXXX")"
trap 'rm -rf "$venv"' EXIT
"$python" -m venv "$venv"
# this environment's numpy and pillow where the release takes them (6.0.0 wants pillow<12)
"$python" -c 'from importlib.metadata import version as v; print("numpy==" + v("numpy")); print("pillow==" + v("pillow"))' \
    >"$venv/constraints.txt"
if ! "$venv/bin/pip" install -q "gradio==$version" -c "$venv/constraints.txt" >"$venv/pip.log" 2>&1; then
    "$venv/bin/pip" install -q "gradio==$version" >"$venv/pip.log" 2>&1 || { cat "$venv/pip.log" >&2; exit 2; }
fi
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "import site; site.addsitedir('$main_site')" >"$site/_main_env.pth"

cd "$repo"
GRADIO_ANALYTICS_ENABLED=False PYTHONPATH="$repo" "$venv/bin/python" deploy/gradio_check.py
