"""The widget apps in a real browser: JupyterLab and Voila in Debian's Chromium, driven by Playwright.

Session fixtures build the notebooks and dashboards from their jupytext
scripts into a scratch folder (the repository is never written), start
JupyterLab and Voila on 127.0.0.1 (free ports, a token) and stop them, their
kernels included, at the end. Each test opens a fresh browser profile; every
request that does not go to 127.0.0.1 is aborted.

What a workshop attendee does, checked the way they would see it:

* notebook 04 (VM builder): Run > Run All Cells, toggle ``lewr``, switch the
  host policy; the guest's view changes;
* notebook 06 (runner): Run All, press Run, switch the host policy and a
  VM's ``lewr``, press Run again; the figure and the summary table change;
* after File > Save Notebook, the notebook's committed script is unchanged;
* the runner dashboard in Voila: the same, without JupyterLab;
* the policy chooser dashboard in Voila: switching the policy marks it in the summary;

and nowhere "Error displaying widget". Screenshots and server logs go to
``test-artifacts/browser/`` (ignored by git).

Chromium is Debian's ``/usr/bin/chromium`` (``apt-get install chromium``;
``.ci/run`` installs it). Without it these tests are skipped locally and fail
in CI (the ``CI`` environment variable set).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import jupytext.cli
import pytest
from playwright.sync_api import Locator, Page, Playwright, Route, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
HOST = "127.0.0.1"

# What Debian's Chromium needs to run headless here: as root, without a GPU, with no network but loopback.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Timeouts, generous: the machine has 2 cores shared with other work.
SERVER_START_S = 120
KERNEL_IDLE_MS = 120_000
RUN_ALL_MS = 300_000
CHANGE_MS = 120_000

pytestmark = pytest.mark.browser


def _makefile_words(variable: str) -> list[str]:
    """The words of ``variable := ...`` in the Makefile (the flags `make lab`/`make dashboard` use)."""
    m = re.search(rf"^{variable}\s*:?=\s*(.*)$", (ROOT / "Makefile").read_text(), flags=re.M)
    assert m, f"Makefile has no {variable}"
    return shlex.split(m.group(1))


def _make_build_args() -> list[str]:
    """The arguments of the Makefile's `jupytext` recipe that builds a notebook from its script."""
    m = re.search(r"^\t\S*jupytext (.*) \$<$", (ROOT / "Makefile").read_text(), flags=re.M)
    assert m, "the Makefile has no `jupytext ... $<` recipe"
    return shlex.split(m.group(1))


def _require_chromium() -> None:
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return
    reason = f"{CHROMIUM} not found: `apt-get install -y chromium` (Debian's package; .ci/run installs it)"
    if os.environ.get("CI"):
        pytest.fail(reason + "; CI must run the browser tests")
    pytest.skip(reason)


# ---------------------------------------------------------------------------
# Servers


@dataclass
class Server:
    """A server process in its own process group, with its log file."""

    name: str
    url: str
    token: str
    proc: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (Linux /proc), e.g. a server's kernels."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.add(int(stat.parent.name))
    return found


def _wait_until(what: str, condition: Callable[[], bool], timeout: float, server: Server | None = None) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` s or as soon as ``server`` dies."""
    deadline = time.monotonic() + timeout
    while not condition():
        if server is not None and server.proc.poll() is not None:
            pytest.fail(f"{server.name} exited with {server.proc.returncode} before {what}:\n{server.log_tail()}")
        if time.monotonic() > deadline:
            tail = f":\n{server.log_tail()}" if server else ""
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}{tail}")
        time.sleep(0.1)  # polling interval of a real condition, not a synchronisation


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _start(name: str, argv: list[str], *, env: dict[str, str], ready_path: str, port: int, token: str) -> Server:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / f"{name}{os.environ.get('PYTEST_XDIST_WORKER', '')}.log"  # one per xdist worker
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    server = Server(name, f"http://{HOST}:{port}", token, proc, log)
    sep = "&" if "?" in ready_path else "?"
    _wait_until(
        f"{name} to answer", lambda: _http_ok(f"{server.url}{ready_path}{sep}token={token}"), SERVER_START_S, server
    )
    return server


def _stop(server: Server) -> None:
    """SIGTERM the server's process group (it shuts its kernels down), then kill what is left."""
    kernels = _children(server.proc.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.proc.pid, signal.SIGTERM)
    try:
        server.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=30)
    for pid in kernels:  # kernels run in process groups of their own (jupyter_client)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """notebooks/ and dashboards/ built from their scripts, as `make lab` builds them, in a scratch folder."""
    _require_chromium()
    root = tmp_path_factory.mktemp("site")
    (root / "jupytext.toml").write_bytes((ROOT / "jupytext.toml").read_bytes())
    build = _make_build_args()
    for folder in ("notebooks", "dashboards"):
        (root / folder).mkdir()
        for script in sorted((ROOT / folder).glob("*.py")):
            copy = root / folder / script.name
            copy.write_bytes(script.read_bytes())
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                assert not jupytext.cli.jupytext([*build, str(copy)]), f"building {copy} failed"
    return root


@pytest.fixture(scope="session")
def jupyter_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Private Jupyter config, runtime, settings and workspace folders: the user's ~/.jupyter is not read."""
    base = tmp_path_factory.mktemp("jupyter")
    labconfig = base / "config" / "labconfig"
    labconfig.mkdir(parents=True)
    # The "Jupyter news?" toast stays despite news_url=None: disable the plugin that shows it.
    page_config = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}
    (labconfig / "page_config.json").write_text(json.dumps(page_config))
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(base / "config"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(base / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"),
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(scope="session")
def lab(site: Path, jupyter_env: dict[str, str]) -> Iterator[Server]:
    port, token = _free_port(), secrets.token_hex(16)
    argv = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        f"--ServerApp.ip={HOST}", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={site}",
        "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    if os.getuid() == 0:
        argv.append("--allow-root")
    server = _start("jupyterlab", argv, env=jupyter_env, ready_path="/api/status", port=port, token=token)
    yield server
    _stop(server)


@pytest.fixture(scope="session")
def voila(site: Path, jupyter_env: dict[str, str]) -> Iterator[Server]:
    port, token = _free_port(), secrets.token_hex(16)
    argv = [
        sys.executable, "-m", "voila", "--no-browser", f"--Voila.ip={HOST}", f"--port={port}",
        f"--token={token}", *_makefile_words("VOILA_FLAGS"), str(site / "dashboards"),
    ]  # fmt: skip
    server = _start("voila", argv, env=jupyter_env, ready_path="/", port=port, token=token)
    yield server
    _stop(server)


# ---------------------------------------------------------------------------
# Browser


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    _require_chromium()
    with sync_playwright() as p:
        yield p


@dataclass
class Tab:
    """One page of a fresh browser profile, with the requests it was not allowed to make."""

    page: Page
    blocked: list[str]
    name: str

    def shot(self, label: str) -> Path:
        path = ARTIFACTS / f"{self.name}-{label}.png"
        self.page.screenshot(path=str(path))
        return path


@pytest.fixture
def tab(playwright: Playwright, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Tab]:
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "chromium-profile"),  # a fresh user-data-dir for every test
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1400, "height": 1000},
    )
    blocked: list[str] = []

    def only_loopback(route: Route) -> None:
        if urlparse(route.request.url).hostname == HOST:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    page = context.pages[0] if context.pages else context.new_page()
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield Tab(page, blocked, name)
    finally:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(ARTIFACTS / f"{name}-last.png"))
        context.close()


# ---------------------------------------------------------------------------
# Helpers: what a person sees and does

WIDGET_ERROR = "Error displaying widget"
# A host policy that changes the default workload's numbers (allowlist refuses some guest launches).
RUNNER_POLICY = "allowlist"
# A host policy under which the VM builder's default guest is refused.
VM_BUILDER_POLICY = "single-le"
FIGURE = "img.sgxlab-figure, .sgxlab-figure img"


def _no_widget_errors(page: Page) -> None:
    body = page.locator("body").inner_text()
    assert WIDGET_ERROR not in body, f"the page shows {WIDGET_ERROR!r}"


def _select_another(select: Locator, prefer: str | None = None) -> str:
    """Choose option ``prefer`` of a <select>, or else one other than the current one; return its label."""
    current = select.input_value()
    options = select.locator("option").evaluate_all("os => os.map(o => [o.value, o.textContent.trim()])")
    others = [(v, label) for v, label in options if v != current]
    assert others, f"the <select> offers nothing but {current!r}"
    value, label = next(((v, label) for v, label in others if label == prefer), others[0])
    select.select_option(value)
    return str(label)


def _image_bytes(img: Locator) -> bytes:
    """What the figure shows: its element screenshot."""
    img.scroll_into_view_if_needed()
    return bytes(img.screenshot())


def _show_summary(scope: Locator) -> None:
    tab = scope.locator(".lm-TabBar-tab", has_text=re.compile(r"^\s*summary\s*$"))
    if tab.count():
        tab.first.click()


def _summary_text(scope: Locator) -> str:
    """The runner's summary table, after clicking its tab if it has one."""
    _show_summary(scope)
    summary = scope.locator(".sgxlab-summary").first
    summary.wait_for(state="visible", timeout=CHANGE_MS)
    return str(summary.inner_text())


def _show_figures(scope: Locator) -> None:
    tab = scope.locator(".lm-TabBar-tab", has_text=re.compile(r"^\s*figures\s*$"))
    if tab.count():
        tab.first.click()


def _run_and_wait(scope: Locator, before_summary: str, before_src: str | None) -> tuple[str, str]:
    """Press Run; wait until the summary and the figure both changed and Run is enabled again."""
    run = scope.locator(".sgxlab-run").first
    run.click()
    _show_figures(scope)
    img = scope.locator(FIGURE).first
    if before_src is None:
        expect(img).to_have_attribute("src", re.compile(r"^(blob:|data:image)"), timeout=CHANGE_MS)
    else:
        expect(img).not_to_have_attribute("src", before_src, timeout=CHANGE_MS)
    src = str(img.get_attribute("src"))
    _show_summary(scope)
    summary = scope.locator(".sgxlab-summary").first
    expect(summary).not_to_have_text(before_summary, use_inner_text=True, timeout=CHANGE_MS)
    expect(run).to_be_enabled(timeout=CHANGE_MS)  # the run's last step: the job has ended
    return str(summary.inner_text()), src


def _open_section(scope: Locator, title: str) -> None:
    """Open an accordion section by its title, if the app has one."""
    header = scope.get_by_text(title, exact=True)
    if header.count() and header.first.is_visible():
        header.first.click()


def _drive_runner(scope: Locator, page: Page, shot: Callable[[str], Path]) -> None:
    """Run, then switch the host policy (and a VM's lewr), run again: figure and summary change."""
    scope.locator(".sgxlab-run").first.wait_for(state="visible", timeout=CHANGE_MS)
    _show_figures(scope)
    before_summary = _summary_text(scope)
    summary1, src1 = _run_and_wait(scope, before_summary, None)
    _show_figures(scope)
    image1 = _image_bytes(scope.locator(FIGURE).first)
    shot("run1")

    _open_section(scope, "host policy and VMs")
    policy = scope.locator(".sgxlab-policy select").first
    policy.wait_for(state="visible", timeout=CHANGE_MS)
    chosen = _select_another(policy, prefer=RUNNER_POLICY)
    lewr = scope.locator(".sgxlab-lewr")
    if lewr.count():
        box = lewr.first.locator("input[type=checkbox]")
        (box if box.count() else lewr.first).click()
    summary2, _ = _run_and_wait(scope, summary1, src1)
    _show_figures(scope)
    image2 = _image_bytes(scope.locator(FIGURE).first)
    shot("run2")
    assert summary2 != summary1, f"the summary did not change after choosing policy {chosen!r}"
    assert image2 != image1, f"the figure did not change after choosing policy {chosen!r}"
    _no_widget_errors(page)


# JupyterLab's state, read through window.jupyterapp (expose_app_in_browser).
KERNEL_IDLE_JS = """(path) => {
  const app = window.jupyterapp;
  const panel = app && app.shell.currentWidget;
  const ctx = panel && panel.sessionContext;
  return !!(panel && panel.context && panel.context.path === path && panel.context.isReady && ctx
            && ctx.session && ctx.session.kernel && ctx.kernelDisplayStatus === 'idle');
}"""

RUN_STATE_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  let pending = 0; const errors = [];
  for (const cell of panel.content.model.cells) {
    if (cell.type !== 'code') continue;
    if (cell.executionCount === null) pending += 1;
    for (let i = 0; i < cell.outputs.length; i++) {
      const out = cell.outputs.get(i).toJSON();
      if (out.output_type === 'error') errors.push(out.ename + ': ' + out.evalue);
    }
  }
  const idle = panel.sessionContext.kernelDisplayStatus === 'idle';
  return {done: errors.length > 0 || (pending === 0 && idle), pending, errors};
}"""


def _open_in_lab(tab: Tab, lab: Server, notebook: str) -> None:
    """Open ``notebook`` alone, in a fresh workspace of the test's own, and wait for its kernel."""
    workspace = re.sub(r"[^A-Za-z0-9]+", "-", tab.name)
    tab.page.goto(
        f"{lab.url}/lab/workspaces/{workspace}/tree/notebooks/{notebook}?reset&token={lab.token}",
        wait_until="domcontentloaded",
        timeout=KERNEL_IDLE_MS,
    )
    tab.page.wait_for_function(KERNEL_IDLE_JS, arg=f"notebooks/{notebook}", timeout=KERNEL_IDLE_MS)


def _run_all_cells(tab: Tab) -> None:
    """Run > Run All Cells, through the menu bar, and wait until every cell ran (or one failed)."""
    page = tab.page
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-item:not(.lm-mod-hidden)", has_text=re.compile(r"^Run All Cells")).first.click()
    page.wait_for_function(f"() => ({RUN_STATE_JS})().done", timeout=RUN_ALL_MS)
    state = page.evaluate(RUN_STATE_JS)
    assert not state["errors"], f"Run All Cells raised: {state['errors']}"


DIRTY_JS = "() => !window.jupyterapp.shell.currentWidget.context.model.dirty"


def _save_and_check_script_unchanged(tab: Tab, site: Path, notebook: str) -> None:
    """File > Save Notebook: the outputs go to the .ipynb, and the committed script is unchanged."""
    page = tab.page
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^File$")).click()
    page.locator(".lm-Menu-item:not(.lm-mod-hidden)", has_text=re.compile(r"^Save Notebook")).first.click()
    page.wait_for_function(DIRTY_JS, timeout=CHANGE_MS)
    script = Path("notebooks") / notebook.replace(".ipynb", ".py")
    assert (site / script).read_bytes() == (ROOT / script).read_bytes(), f"saving in JupyterLab rewrote {script}"
    saved = json.loads((site / "notebooks" / notebook).read_text())
    assert any(c.get("outputs") for c in saved["cells"]), f"the saved {notebook} holds no outputs"


def _notebook(prefix: str) -> str:
    found = sorted((ROOT / "notebooks").glob(f"{prefix}-*.py"))
    if not found:
        pytest.skip(f"notebooks/{prefix}-*.py is not there yet")
    return found[0].with_suffix(".ipynb").name


def _output_with(page: Page, selector: str) -> Locator:
    """The notebook output area that shows the app with ``selector``."""
    area = page.locator(".jp-OutputArea-child").filter(has=page.locator(selector))
    area.first.wait_for(state="attached", timeout=CHANGE_MS)
    return area.first


# ---------------------------------------------------------------------------
# Tests


def test_lab_vm_builder_lewr_and_policy_change_the_guest_view(tab: Tab, lab: Server, site: Path) -> None:
    _open_in_lab(tab, lab, _notebook("04"))
    tab.shot("opened")
    _run_all_cells(tab)
    app = _output_with(tab.page, ".sgxlab-lewr")
    app.scroll_into_view_if_needed()
    guest = app.locator(".sgxlab-guest-view").first
    expect(guest).not_to_have_text("", timeout=CHANGE_MS)
    before = guest.inner_text()
    tab.shot("ran")

    app.locator(".sgxlab-lewr").first.click()
    expect(guest).not_to_have_text(before, use_inner_text=True, timeout=CHANGE_MS)
    after_lewr = guest.inner_text()
    tab.shot("lewr")

    _select_another(app.locator(".sgxlab-policy select").first, prefer=VM_BUILDER_POLICY)
    expect(guest).not_to_have_text(after_lewr, use_inner_text=True, timeout=CHANGE_MS)
    tab.shot("policy")
    _no_widget_errors(tab.page)
    _save_and_check_script_unchanged(tab, site, _notebook("04"))


def test_lab_runner_policy_and_lewr_change_figure_and_summary(tab: Tab, lab: Server, site: Path) -> None:
    _open_in_lab(tab, lab, _notebook("06"))
    tab.shot("opened")
    _run_all_cells(tab)
    app = _output_with(tab.page, ".sgxlab-run")
    app.scroll_into_view_if_needed()
    _drive_runner(app, tab.page, tab.shot)
    _save_and_check_script_unchanged(tab, site, _notebook("06"))


def test_voila_runner_dashboard(tab: Tab, voila: Server) -> None:
    page = tab.page
    # Voila runs the notebook while it sends the page: the page is complete when the kernel is done.
    page.goto(
        f"{voila.url}/voila/render/runner.ipynb?token={voila.token}", wait_until="domcontentloaded", timeout=RUN_ALL_MS
    )
    page.locator(".sgxlab-run").first.wait_for(state="visible", timeout=RUN_ALL_MS)
    tab.shot("opened")
    _drive_runner(page.locator("body"), page, tab.shot)


def test_voila_policy_chooser_dashboard(tab: Tab, voila: Server) -> None:
    page = tab.page
    page.goto(
        f"{voila.url}/voila/render/policy-chooser.ipynb?token={voila.token}",
        wait_until="domcontentloaded",
        timeout=RUN_ALL_MS,
    )
    summary = page.locator(".sgxlab-summary").first
    expect(summary.locator("table")).to_be_visible(timeout=RUN_ALL_MS)
    tab.shot("opened")
    before = summary.inner_html()
    chosen = _select_another(page.locator(".sgxlab-policy select").first)
    page.wait_for_function(
        "([sel, prev]) => document.querySelector(sel).innerHTML !== prev",
        arg=[".sgxlab-summary", before],
        timeout=CHANGE_MS,
    )
    assert f"<b>{chosen}</b>" in summary.inner_html(), f"the summary does not mark policy {chosen!r}"
    tab.shot("policy")
    _no_widget_errors(page)
