#!/usr/bin/env bash
# Setup step of the BLVPY comparison benchmark (issue 13): a separate virtual environment for
# BLVPY 0.5 (Python >= 3.12, CVXPY >= 1.9, cyipopt built against Debian's Ipopt).
#
#   bash benchmarks/blvpy/setup.sh            # creates benchmarks/blvpy/.venv
#   BLVPY_PYTHON=/path/to/python3.12 bash benchmarks/blvpy/setup.sh
#
# The workbench side runs in the workbench's own venv (make test / make demo create ./.venv).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${BLVPY_VENV:-$here/.venv}"

# Native Ipopt for cyipopt (root: install it; otherwise it must already be present).
# (liblapack-dev / libblas-dev: cyipopt links -llapack -lblas, which coinor-libipopt-dev does not pull in.)
if ! pkg-config --exists ipopt 2>/dev/null || ! [ -e /usr/lib/x86_64-linux-gnu/liblapack.so ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y coinor-libipopt-dev pkg-config liblapack-dev libblas-dev
    else
        echo "need Debian's coinor-libipopt-dev and pkg-config (sudo apt-get install coinor-libipopt-dev pkg-config liblapack-dev libblas-dev)" >&2
        exit 1
    fi
fi

# A Python >= 3.12: $BLVPY_PYTHON, else python3.12/3.13 on PATH, else pyenv's 3.12.
py="${BLVPY_PYTHON:-}"
if [ -z "$py" ]; then
    for cand in python3.13 python3.12 "$HOME/.pyenv/versions/3.12.1/bin/python" /root/.pyenv/versions/3.12.1/bin/python; do
        if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
            py="$cand"; break
        fi
    done
fi
[ -n "$py" ] || { echo "need Python >= 3.12 (set BLVPY_PYTHON)" >&2; exit 1; }

"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --upgrade pip
"$venv/bin/python" -m pip install "blvpy==0.5.0" cyipopt
"$venv/bin/python" - <<'PY'
import importlib.metadata as md, sys
import blvpy, cvxpy, cyipopt  # noqa: F401 - the import is the check
print("python", sys.version.split()[0], "| blvpy", md.version("blvpy"), "| cvxpy", md.version("cvxpy"),
      "| cyipopt", md.version("cyipopt"))
PY
echo "BLVPY venv ready: $venv"
