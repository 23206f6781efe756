#!/usr/bin/env bash
# System packages for the display tests, from Debian only (no browser downloads):
#   chromium            -> tests/test_browser.py drives it with Playwright (executable_path=/usr/bin/chromium)
#   texlive-latex-base  -> tests/test_display_latex.py compiles wb.latex output with pdflatex
# Called from .ci/run by the lead. Python packages (playwright, jupyterlab) come from pyproject's test extra.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pdflatex >/dev/null 2>&1 || need+=(texlive-latex-base)
if [ "${#need[@]}" -gt 0 ]; then
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${need[@]}"
fi
chromium --version
pdflatex --version | head -1
