#!/usr/bin/env bash
# Deploy the app to a Hugging Face Space: only the files it needs at run time.
#
#   hf auth login                        # once: a token with write access
#   deploy/space.sh OWNER/SPACE-NAME     # creates the Space (Gradio) if missing, then uploads
#
# What goes up: the files git tracks, as they are in this checkout (never untracked files: no runs/, data/,
# .venv/ or caches), kept by INCLUDE and not dropped by EXCLUDE (Hub globs: `*` also matches `/`). Files on
# the Space that are no longer among them are deleted, so the Space mirrors this list; `hf upload` sends the
# weights and images through the Hub's large file storage. tests/test_space.py runs this script with a
# stand-in `hf` and checks the list: keep INCLUDE and EXCLUDE on one line each.
set -euo pipefail

INCLUDE=(README.md requirements.txt app.py pad.py serving.py gradio_cache.py web_page.py 'mnist_sum/*.py' 'mnist_sum/weights/*.safetensors' 'demo/*.png' 'web/*')
EXCLUDE=('*__pycache__*' '*.pyc' '*/.*')

space="${1:?usage: deploy/space.sh OWNER/SPACE-NAME}"
cd "$(dirname "$0")/.."
tree="$(mktemp -d)"
trap 'rm -rf "$tree"' EXIT
git ls-files -z | tar --null --files-from=- --create --file=- | tar --extract --directory="$tree"

patterns=()
for pattern in "${INCLUDE[@]}"; do patterns+=(--include "$pattern"); done
for pattern in "${EXCLUDE[@]}"; do patterns+=(--exclude "$pattern"); done
hf repos create "$space" --repo-type space --space-sdk gradio --exist-ok
hf upload "$space" "$tree" . --repo-type space "${patterns[@]}" --delete '*' \
    --commit-message "Deploy $(git describe --always --dirty)"
