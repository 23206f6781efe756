"""The quickstart in a real browser: JupyterLab + Debian's headless Chromium via Playwright.

Starts JupyterLab on 127.0.0.1 (random free port, no token, temporary config,
settings, runtime and workspace directories, root_dir a temporary copy of
notebooks/), opens 01_quickstart.ipynb, runs all cells and checks what a person
would see: MathJax-rendered LaTeX (no raw ``$$``), the explorer's sliders and
plot, and that typing a new leader value into a slider changes the displayed
follower response. A screenshot goes to tests/artifacts/ (git-ignored).
JupyterLab runs in its own process group, killed in ``finally``; every wait
has a timeout, so the test ends by itself.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NOTEBOOK = "01_quickstart.ipynb"
SETTINGS = {  # render every cell (no windowing) and ask no news/update questions
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
}

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(tmp: Path, port: int) -> subprocess.Popen:
    root = tmp / "notebooks"
    shutil.copytree(ROOT / "notebooks", root)
    settings = tmp / "settings"
    for name, value in SETTINGS.items():
        plugin, file = name.rsplit("/", 1)
        (settings / plugin).mkdir(parents=True, exist_ok=True)
        (settings / plugin / file).write_text(json.dumps(value))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               MPLBACKEND="Agg")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           "--ServerApp.port_retries=0", "--IdentityProvider.token=", "--ServerApp.password=",
           f"--ServerApp.root_dir={root}", "--ServerApp.disable_check_xsrf=True",
           f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
           "--LabApp.expose_app_in_browser=True"] + (["--allow-root"] if os.geteuid() == 0 else [])
    log = open(tmp / "jupyterlab.log", "w")
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_for_server(port: int, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "JupyterLab exited during start-up:\n" + log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"JupyterLab did not answer on port {port} within {timeout} s")


def stop_lab(proc: subprocess.Popen) -> None:
    """Terminate JupyterLab's whole process group (server and kernels); kill after 15 s."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


FOLLOWER_CELL = "document.querySelector(\"td.wb-value[data-key='y*']\")?.textContent ?? null"
ERROR_OUTPUT = ".jp-RenderedText[data-mime-type='application/vnd.jupyter.error']"
# done when every code cell has an execution number, or when a cell raised (Lab stops there)
ALL_RAN = """() => {
  const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent.trim());
  if (document.querySelector("%s")) return true;
  return prompts.length > 0 && prompts.every(t => /^\\[\\d+\\]:$/.test(t));
}""" % ERROR_OUTPUT.replace('"', '\\"')


def test_quickstart_renders_and_explorer_reacts(tmp_path):
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "install Debian's chromium (.ci/browser-deps.sh)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = start_lab(tmp_path, port)
    try:
        wait_for_server(port, proc, tmp_path / "jupyterlab.log")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, timeout=60_000,
                                         args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                               "--disable-dev-shm-usage"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            passed = False
            try:
                page.set_default_timeout(60_000)
                page.goto(f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK}")
                page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
                page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                                       " && window.jupyterapp.shell.currentWidget.sessionContext?.session?.kernel"
                                       " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                                       ".status === 'idle'", timeout=90_000)
                page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
                page.wait_for_function(ALL_RAN, timeout=240_000, polling=1000)
                errors = page.locator(ERROR_OUTPUT)
                assert errors.count() == 0, errors.first.inner_text()[-2000:]

                # LaTeX went through MathJax: containers exist, no raw TeX delimiters remain
                page.wait_for_selector(".jp-RenderedLatex mjx-container, .jp-RenderedMarkdown mjx-container")
                assert page.locator(".jp-RenderedLatex mjx-container").count() >= 1
                shown = page.locator(".jp-OutputArea").all_inner_texts() + \
                    page.locator(".jp-RenderedMarkdown").all_inner_texts()
                raw = [t for t in shown if "$$" in t or "\\begin{aligned}" in t or "$\\displaystyle" in t]
                assert not raw, raw[0][:300]

                # the explorer: sliders, plot image, table with the follower's reply
                explorer = page.locator(".wb-explorer").last
                explorer.wait_for(timeout=60_000)
                explorer.scroll_into_view_if_needed()
                assert explorer.locator(".widget-slider").count() >= 1
                plot = explorer.locator("img.wb-explore-plot")
                plot.wait_for()
                assert plot.evaluate("img => img.naturalWidth") > 100
                before = page.evaluate(FOLLOWER_CELL)
                assert before is not None
                readout = explorer.locator(".widget-slider .widget-readout").first
                old = float(readout.inner_text())
                new = old + 0.75 if old <= 0 else old - 0.75  # stays inside the quickstart's [-2, 2]
                readout.click()
                page.keyboard.press("Control+A")
                page.keyboard.type(f"{new:.4g}")
                page.keyboard.press("Enter")
                page.wait_for_function(f"() => ({FOLLOWER_CELL}) !== {json.dumps(before)}", timeout=60_000)
                after = page.evaluate(FOLLOWER_CELL)
                assert after != before
                page.wait_for_timeout(1000)
                explorer.scroll_into_view_if_needed()
                page.screenshot(path=str(ARTIFACTS / "browser_quickstart_explorer.png"))
                passed = True
            finally:
                if not passed:  # what the page looked like when the test failed
                    page.screenshot(path=str(ARTIFACTS / "browser_failure.png"), timeout=10_000)
                browser.close()
    finally:
        stop_lab(proc)
    assert proc.poll() is not None
