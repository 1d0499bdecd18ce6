#!/usr/bin/env bash
# Run the app's Gradio check (deploy/gradio_check.py; CHECK=path names another)
# against another Gradio version, without touching the project's environment and without reinstalling torch.
#
#   deploy/check_gradio.sh VERSION [MAIN_SITE_PACKAGES] [-- ARGS...]
#
#   deploy/check_gradio.sh 6.10.0                 # the check under gradio 6.10.0
#   deploy/check_gradio.sh 6.31.0 -- --headed     # ARGS after -- go to the check
#   NO_CHECK=1 deploy/check_gradio.sh 6.0.0       # only build the venv and import gradio and torch
#   KEEP_VENV=1 deploy/check_gradio.sh 6.0.0      # keep the venv (its path is printed) instead of deleting it
#
# What it does:
#  1. Makes a throwaway venv under /tmp (mktemp -d /tmp/gradio-VERSION.XXXXXX) with the main environment's
#     Python (same minor version, so torch's compiled extensions load), and `pip install gradio==VERSION`
#     into it, with gradio's own dependency tree as pip resolves it for that version. Every gradio release
#     pins its client exactly (gradio 6.0.0: gradio-client==2.0.0-dev.3, 6.10.0: 2.4.0, 6.31.0: 2.7.2), so
#     the compatible gradio_client comes with it; GRADIO_CLIENT=X.Y.Z names another one. The venv sees
#     nothing of the main environment while pip runs, so pip cannot uninstall or change anything there. It
#     first tries to keep the main environment's numpy and pillow (as constraints) and, where the
#     release's pins refuse them (6.0.0 wants pillow<12), installs what gradio asks for instead.
#  2. Then writes _main_env.pth into the venv's site-packages: `import site; site.addsitedir(MAIN)`. The
#     main site-packages (and the .pth files in it) are appended to sys.path AFTER the venv's own
#     site-packages, so the venv's gradio, gradio_client and their dependencies win, and what only the main
#     environment has (torch, torchvision, safetensors, tqdm, playwright, pytest...) is found there.
#  3. Prints the gradio that the venv imports (version and path, which must be under the venv), checks
#     that torch imports, then runs `python CHECK ARGS` from the repository root with the
#     venv's python (PYTHONPATH=repository root, so the check can `import app`), and prints the gradio
#     version it ran with and the check's exit status, which is this script's exit status.
#
# MAIN_SITE_PACKAGES defaults to the purelib of $PYTHON. PYTHON defaults to the first of $VIRTUAL_ENV/bin/python,
# .venv/bin/python, /work/venv/bin/python, `python`, `python3` that has torch. The venv is made with
# $PYTHON's interpreter, which must be the Python that MAIN_SITE_PACKAGES belongs to (checked: pythonX.Y in
# the path), and MAIN_SITE_PACKAGES must hold torch (checked).
# pip needs PyPI (or the configured index); pip's cache makes a second run of a version quick.
set -euo pipefail

usage="usage: deploy/check_gradio.sh VERSION [MAIN_SITE_PACKAGES] [-- ARGS...]"
version="${1:?$usage}"
shift
main_site=""
if [[ $# -gt 0 && "$1" != "--" ]]; then main_site="$1"; shift; fi
if [[ $# -gt 0 && "$1" == "--" ]]; then shift; fi
check_args=("$@")

repo="$(cd "$(dirname "$0")/.." && pwd)"
if [[ -z "${PYTHON:-}" ]]; then  # the first of these that has torch
    for candidate in ${VIRTUAL_ENV:+"$VIRTUAL_ENV/bin/python"} "$repo/.venv/bin/python" /work/venv/bin/python \
                     "$(command -v python || true)" "$(command -v python3 || true)"; do
        if [[ -x "$candidate" ]] && "$candidate" -c 'import importlib.util, sys; sys.exit(not importlib.util.find_spec("torch"))' 2>/dev/null; then
            PYTHON="$candidate"; break
        fi
    done
    [[ -n "${PYTHON:-}" ]] || { echo "check_gradio: no python with torch found; set PYTHON" >&2; exit 2; }
fi
if [[ -z "$main_site" ]]; then
    main_site="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
fi
[[ -d "$main_site" ]] || { echo "check_gradio: no such directory: $main_site" >&2; exit 2; }
pyver="$("$PYTHON" -c 'import sys; print(f"python{sys.version_info[0]}.{sys.version_info[1]}")')"
if [[ "$main_site" != *"/$pyver/"* ]]; then
    echo "check_gradio: $main_site is not a $pyver site-packages ($PYTHON is $pyver); set PYTHON to its python" >&2
    exit 2
fi
[[ -d "$main_site/torch" ]] || { echo "check_gradio: no torch in $main_site" >&2; exit 2; }

CHECK="${CHECK:-deploy/gradio_check.py}"
if [[ "$CHECK" != /* && ! -f "$repo/$CHECK" && -f "$CHECK" ]]; then  # a path from here, not from the repository
    CHECK="$(cd "$(dirname "$CHECK")" && pwd)/$(basename "$CHECK")"
fi
if [[ "${NO_CHECK:-0}" != 1 && ! -f "$repo/$CHECK" && ! -f "$CHECK" ]]; then
    echo "check_gradio: no check at $CHECK (NO_CHECK=1 only builds the venv)" >&2
    exit 2
fi

venv="$(mktemp -d "/tmp/gradio-$version.XXXXXX")"
if [[ "${KEEP_VENV:-0}" == 1 ]]; then
    trap 'echo "check_gradio: venv kept at $venv"' EXIT
else
    trap 'rm -rf "$venv"' EXIT
fi
echo "check_gradio: venv $venv ($pyver from $PYTHON); main site-packages $main_site"
"$PYTHON" -m venv "$venv"
vpy="$venv/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1

# 1. gradio (and its pinned client) with its own dependencies, the main environment invisible to pip.
packages=("gradio==$version")
[[ -n "${GRADIO_CLIENT:-}" ]] && packages+=("gradio_client==$GRADIO_CLIENT")
constraints="$venv/main-constraints.txt"
"$PYTHON" - "$main_site" >"$constraints" <<'EOF'
import sys
from importlib.metadata import distributions
for dist in distributions(path=[sys.argv[1]]):
    if dist.metadata["Name"].lower() in ("numpy", "pillow"):
        print(f'{dist.metadata["Name"]}=={dist.version}')
EOF
pip_install() {  # pip's output goes to a log, shown when pip fails
    local log="$1"; shift
    "$vpy" -m pip install -q "$@" >"$log" 2>&1
}
if ! pip_install "$venv/pip-constrained.log" "${packages[@]}" -c "$constraints"; then
    if grep -q "No matching distribution found for gradio==" "$venv/pip-constrained.log"; then
        echo "check_gradio: gradio==$version is not on the package index (PyPI has no 6.17.0-6.17.2 or 6.23.0)" >&2
        exit 2
    fi
    echo "check_gradio: gradio==$version refuses the main environment's $(tr '\n' ' ' <"$constraints")- installing what it asks for"
    pip_install "$venv/pip.log" "${packages[@]}" || { grep -v 'is ignored: it is neither' "$venv/pip.log" >&2; exit 2; }
fi

# 2. The main environment behind the venv's own site-packages.
vsite="$("$vpy" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
printf 'import site; site.addsitedir(%s)\n' "$("$PYTHON" -c 'import sys; print(repr(sys.argv[1]))' "$main_site")" \
    >"$vsite/_main_env.pth"

# 3. What the venv imports, then the check.
"$vpy" - "$venv" <<'EOF'
import sys
from importlib.metadata import version

import gradio
import torch

venv = sys.argv[1]
assert gradio.__file__.startswith(venv), f"gradio imported from {gradio.__file__}, not from the venv {venv}"
print(f"check_gradio: gradio {gradio.__version__} ({gradio.__file__})")
print(f"check_gradio: gradio_client {version('gradio_client')}, numpy {version('numpy')}, pillow {version('pillow')}, "
      f"torch {torch.__version__} ({torch.__file__})")
EOF
ran="$("$vpy" -c 'import gradio; print(gradio.__version__)')"
if [[ "${NO_CHECK:-0}" == 1 ]]; then
    echo "check_gradio: NO_CHECK=1: venv with gradio $ran built and imported; check not run"
    exit 0
fi
status=0
(cd "$repo" && GRADIO_ANALYTICS_ENABLED=False PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" \
    "$vpy" "$CHECK" "${check_args[@]}") || status=$?
echo "check_gradio: $CHECK ran with gradio $ran: exit $status"
exit "$status"
