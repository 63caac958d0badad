"""The notebooks in a real JupyterLab under headless Chromium: "Run All", then read the DOM.

A JupyterLab server (a subprocess on 127.0.0.1 with a token) serves a temporary copy of
``notebooks/`` converted to ``.ipynb``, with ``STACFETCH_*`` pointing at the session's seeded
pgstac server. For each notebook, playwright opens it, picks *Run > Run All Cells* from the
menu bar, and waits until every code cell has an execution count and the kernel is idle (a hang
fails here, with a screenshot). It then asserts from the DOM that each entry's progress bar
(``.stacfetch-bar``) rendered, reached 100 % in the expected colour, and that bars were seen
moving while the cells ran (live updates); in the failures notebook, that the failure table
(``.stacfetch-failures``) lists the injected 503s of March 2023. One more test clicks the
"Retry failed" button of a failed run and waits for the retry to complete in the page.

Every notebook runs on two catalogs, each a kernel whose ``kernel.json`` sets the search (and
puts this checkout first on ``PYTHONPATH``; the last, appended cell proves it): ``thousands``
(all 4,500 seeded items) and ``empty`` (a search that matches nothing). A run fails when ANY
cell raised: the DOM's output areas are read for tracebacks, and the notebook is saved from the
page and read back for ``error`` outputs. In the failures notebook, the timeline's red
segments (``rect.stacfetch-seg[data-state=failed]``) must carry exactly the intervals of the
failure table's cells (``.stacfetch-failure-interval[data-interval]``), entry by entry.

Screenshots go to ``test-artifacts/``; with ``STACFETCH_UPDATE_DOCS_IMAGES=1`` the matrix run
also replaces ``docs/images/notebook-widgets.png`` and the failures run
``docs/images/notebook-timeline.png`` (the README pictures).

Needs Debian's ``chromium`` (``/usr/bin/chromium``, or ``$STACFETCH_CHROMIUM``) and the Python
packages ``playwright``, ``jupyterlab`` and ``jupytext``. When one is missing the tests fail and
say what to install: ``playwright install`` cannot download browsers on the CI machines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
ARTIFACTS = REPO / "test-artifacts"
README_IMAGE = REPO / "docs" / "images" / "notebook-widgets.png"
CHROMIUM = os.environ.get("STACFETCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""Without the background-networking flags Chromium's connections are refused on a closed
network."""
INSTALL_HINT = (
    "apt-get install -y chromium && pip install playwright jupyterlab jupytext "
    "(Debian's browser is used; `playwright install` is not needed)"
)
RUN_TIMEOUT = 150.0
"""Seconds "Run All" of one notebook may take."""
SETTINGS = {
    "STACFETCH_COLLECTIONS": "sf-a,sf-b",
    "STACFETCH_DATETIME": "2021-07-01/2021-09-30",
    "STACFETCH_BBOX": "",
}
"""The notebooks' settings besides ``STACFETCH_CATALOG_URL`` (as in test_notebooks.py)."""
CATALOGS = {
    # no datetime filter: all 4,500 seeded items
    "thousands": {"STACFETCH_DATETIME": ""},
    # years before the seeded collections begin: the search matches nothing
    "empty": {"STACFETCH_DATETIME": "1990-01-01/1990-12-31"},
}
"""Each catalog is a kernel (its ``kernel.json`` sets the search); a notebook runs on each."""
TIMELINE_IMAGE = REPO / "docs" / "images" / "notebook-timeline.png"
WHERE = "import stacfetch as _sf\nprint(_sf.__file__)"
"""Appended to every notebook: the kernel must import the checkout under test."""
LAB_SETTINGS = {
    # every cell in the DOM, so that the whole notebook can be read
    "@jupyterlab/notebook-extension/tracker": '{"windowingMode": "none"}',
    # no "receive news?" toast over the page, no update checks
    "@jupyterlab/apputils-extension/notification": '{"fetchNews": "false", '
    '"checkForUpdates": false}',
}
DEMO = ("sentinel-2-l2a", "landsat-c2-l2")

# What each notebook shows: per progress widget (in page order), its entries as
# (label, bar colour); every bar must end at 100 %.
EXPECTED: dict[str, list[list[tuple[str, str]]]] = {
    "01-quickstart": [[("sf-a", "success")]],
    "02-matrix": [[("sf-a", "success"), ("sf-b", "success")]] * 2,
    "03-failures-and-retry": [
        [(DEMO[0], "danger"), (DEMO[1], "danger")],  # March 2023 answers 503
        [(DEMO[0], "success"), (DEMO[1], "success")],  # healed, retry_failed()
    ],
    "04-files-and-geoparquet": [
        [("sf-a", "success"), ("sf-b", "success")],  # to_parquet
        [("stacfetch-items.parquet", "success")],  # file mode
    ],
}
EXPECTED_EMPTY: dict[str, list[list[tuple[str, str]]]] = {
    **EXPECTED,
    # nothing written: no file mode run
    "04-files-and-geoparquet": [[("sf-a", "success"), ("sf-b", "success")]],
}
RUNS = [
    ("thousands", name) for name in sorted(EXPECTED)
] + [  # 03 runs its own demo server, whatever the catalog
    ("empty", name) for name in sorted(EXPECTED) if name != "03-failures-and-retry"
]

KERNEL_STATUS = """(name) => [...document.querySelectorAll('.jp-StatusBar-TextItem')]
  .filter(e => e.title === `Change kernel for ${name}`).map(e => e.textContent.trim())[0] ?? ''"""
"""The status bar's kernel item for notebook ``name``, e.g. "Python 3 (ipykernel) | Idle"."""

READ_PAGE = r"""() => {
  const all = (sel, root = document) => [...root.querySelectorAll(sel)];
  const panels = all('.jp-NotebookPanel');
  if (panels.length !== 1) return {panels: panels.length};
  const nb = panels[0];
  const own = (el, box) => el.closest('.stacfetch-progress') === box;
  const shown = (el) => !!el && getComputedStyle(el).display !== 'none' && el.offsetParent !== null;
  return {
    panels: 1,
    prompts: all('.jp-CodeCell .jp-InputArea-prompt', nb).map(e => e.textContent.trim()),
    stderr: all('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]', nb)
      .map(e => e.textContent),
    progress: all('.stacfetch-progress', nb).map(box => ({
      classes: [...box.classList],
      header: box.querySelector('.stacfetch-header')?.textContent ?? '',
      entries: all('.stacfetch-entry', box).filter(e => own(e, box)).map(e => ({
        classes: [...e.classList],
        label: e.querySelector('.stacfetch-bar .widget-label')?.textContent ?? '',
        width: e.querySelector('.stacfetch-bar .progress-bar')?.style.width ?? '',
        bar: [...(e.querySelector('.stacfetch-bar .progress-bar')?.classList ?? [])],
        text: e.querySelector('.stacfetch-text')?.textContent ?? '',
        segments: all('.stacfetch-timeline rect.stacfetch-seg', e).map(r => ({
          state: r.dataset.state, interval: r.dataset.interval,
          title: r.querySelector('title')?.textContent ?? '',
          width: r.getBoundingClientRect().width,
        })),
      })),
      failures: all('.stacfetch-failure-viewer', box).filter(e => own(e, box)).map(v => ({
        shown: shown(v),
        table: v.querySelector('.stacfetch-failures')?.textContent ?? '',
        retry: !v.querySelector('.stacfetch-retry')?.disabled,
        status: v.querySelector('.stacfetch-retry-status')?.textContent ?? '',
        intervals: all('.stacfetch-failure-interval', v).map(td => ({
          entry: td.dataset.entry, interval: td.dataset.interval,
        })),
      })),
    })),
    viewers: all('.stacfetch-failure-viewer', nb).filter(v => !v.closest('.stacfetch-progress'))
      .map(v => ({
        table: v.querySelector('.stacfetch-failures')?.textContent ?? '',
        retry: !!v.querySelector('.stacfetch-retry'),
      })),
    outputs: all('.jp-OutputArea-output', nb).map(e => e.textContent),
    // an error output renders as stderr text holding the traceback (JupyterLab's rendermime)
    errors: all('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]', nb)
      .map(e => e.textContent)
      .filter(t => /Traceback \(most recent call last\)|^\s*Cell In\[\d+\]/m.test(t)),
  };
}"""


def percent(width: str) -> float | None:
    """``"37.5%"`` -> 37.5 (``None`` for anything else)."""
    match = re.fullmatch(r"([\d.]+)%", width.strip())
    return float(match.group(1)) if match else None


# -- JupyterLab --------------------------------------------------------------------------------
@dataclasses.dataclass
class Lab:
    """A running JupyterLab server."""

    url: str
    token: str
    root: Path

    def page_url(self, notebook: str) -> str:
        """The notebook alone in a fresh workspace (no tabs restored from an earlier test)."""
        workspace = re.sub(r"\W", "-", notebook)
        return f"{self.url}/lab/workspaces/{workspace}/tree/{notebook}?reset&token={self.token}"

    def api(self, method: str, path: str) -> httpx.Response:
        headers = {"Authorization": f"token {self.token}"}
        return httpx.request(method, f"{self.url}/api/{path}", headers=headers, timeout=10)

    def stop_kernels(self) -> None:
        """Shut down every kernel (a notebook's demo server dies with its kernel)."""
        for kernel in self.api("GET", "kernels").json():
            self.api("DELETE", f"kernels/{kernel['id']}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def notebook_name(notebook: str, catalog: str) -> str:
    """The copy of ``notebook`` that runs on ``catalog`` (``01-quickstart-empty``)."""
    return f"{notebook}-{catalog}"


def write_notebooks(root: Path) -> list[str]:
    """Convert the jupytext sources into ``root`` as clean ``.ipynb``, one copy per catalog
    (its kernel chosen in the metadata), each ending with a cell printing where stacfetch was
    imported from; their names."""
    try:
        import jupytext
        import nbformat
        from nbformat.v4 import new_code_cell
    except ImportError as exc:
        pytest.fail(f"browser tests need jupytext ({exc}); {INSTALL_HINT}", pytrace=False)
    names = []
    for source in sorted(NOTEBOOKS.glob("*.py")):
        for catalog in CATALOGS:
            nb = jupytext.read(source)
            nb.metadata.pop("jupytext", None)
            nb.metadata["kernelspec"] = {
                "name": f"stacfetch-{catalog}",
                "display_name": f"stacfetch {catalog}",
                "language": "python",
            }
            nb.cells.append(new_code_cell(WHERE))
            name = notebook_name(source.stem, catalog)
            nbformat.write(nb, root / f"{name}.ipynb")
            names.append(name)
    return names


def write_kernels(data: Path, stac_url: str) -> None:
    """One kernel per catalog: this Python, this checkout first on the path, its search."""
    import json

    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    for catalog, settings in CATALOGS.items():
        spec = {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": f"stacfetch {catalog}",
            "language": "python",
            "env": {
                "STACFETCH_CATALOG_URL": stac_url,
                **SETTINGS,
                **settings,
                "PYTHONPATH": path,
            },
        }
        folder = data / "kernels" / f"stacfetch-{catalog}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "kernel.json").write_text(json.dumps(spec))


@pytest.fixture(scope="module")
def lab(stac_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A JupyterLab server over a copy of the notebooks, isolated from the user's settings."""
    if not _importable("jupyterlab"):
        pytest.fail(f"browser tests need JupyterLab; {INSTALL_HINT}", pytrace=False)
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "notebooks"
    root.mkdir()
    write_notebooks(root)
    write_kernels(base / "data", stac_url)
    settings = base / "settings"
    for name, text in LAB_SETTINGS.items():
        target = settings / f"{name}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    env = {
        **os.environ,
        "STACFETCH_CATALOG_URL": stac_url,
        **SETTINGS,
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "IPYTHONDIR": str(base / "ipython"),
        "JUPYTER_DATA_DIR": str(base / "data"),
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
        ),
    }
    token = secrets.token_hex(16)
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
        "--LabApp.extension_manager=readonly",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI containers run as root
    log_path = base / "jupyterlab.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = Lab(f"http://127.0.0.1:{port}", token, root)
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(f"JupyterLab exited:\n{_tail(log_path)}", pytrace=False)
            with contextlib.suppress(httpx.HTTPError):
                if server.api("GET", "status").status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not start:\n{_tail(log_path)}", pytrace=False)
            time.sleep(0.25)
        yield server
    finally:
        with contextlib.suppress(httpx.HTTPError):
            server.stop_kernels()
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copyfile(log_path, ARTIFACTS / "jupyterlab.log")


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _tail(path: Path, limit: int = 4000) -> str:
    return path.read_text(errors="replace")[-limit:]


# -- the browser -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium driven by playwright (sync API)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"browser tests need the playwright package; {INSTALL_HINT}", pytrace=False)
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"browser tests need Chromium at {CHROMIUM} (or set STACFETCH_CHROMIUM); "
            f"{INSTALL_HINT}",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, lab: Lab) -> Iterator[Any]:
    """A fresh page; its kernels are shut down afterwards."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    try:
        yield context.new_page()
    finally:
        context.close()
        lab.stop_kernels()


@dataclasses.dataclass
class Run:
    """What the page showed at the end of "Run All", and the bar widths seen meanwhile."""

    final: dict[str, Any]
    seen: dict[tuple[int, int], set[float]]
    seconds: float


def saved_errors(page: Any, lab: Lab, filename: str, cells: int) -> list[str]:
    """Save the notebook from the page and read it back: the error outputs of every cell
    (``ename: evalue``), whatever the DOM shows. Fails if the save never lands."""
    deadline = time.monotonic() + 30
    attempt = 0
    while time.monotonic() < deadline:
        if attempt % 20 == 0:  # (again) every 2 s until the executed notebook is on disk
            page.locator(".jp-NotebookPanel .jp-Notebook").first.click(position={"x": 5, "y": 5})
            page.keyboard.press("Escape")
            page.keyboard.press("Control+s")
        attempt += 1
        response = lab.api("GET", f"contents/{filename}?content=1")
        if response.status_code != 200 or "content" not in response.json():
            time.sleep(0.1)  # read while the save was writing the file: read again
            continue
        saved = response.json()["content"]
        code = [c for c in saved["cells"] if c["cell_type"] == "code"]
        if len(code) == cells and all(c.get("execution_count") for c in code):
            return [
                f"{o.get('ename')}: {o.get('evalue')}"
                for c in code
                for o in c.get("outputs", ())
                if o.get("output_type") == "error"
            ]
        time.sleep(0.1)
    pytest.fail(f"{filename}: the executed notebook was never saved", pytrace=False)


def run_all(page: Any, lab: Lab, notebook: str) -> Run:
    """Open ``notebook``, Run > Run All Cells, wait for the end; fail on a hang or an error."""
    import nbformat

    filename = f"{notebook}.ipynb"
    saved = nbformat.read(lab.root / filename, as_version=4)
    cells = sum(cell.cell_type == "code" for cell in saved.cells)
    page.goto(lab.page_url(filename))
    # every cell rendered, and the kernel connected and idle (before that, Run All is lost)
    page.wait_for_function(
        "n => document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell').length === n",
        arg=cells,
        timeout=60_000,
    )
    page.wait_for_function(
        f"name => ({KERNEL_STATUS})(name).endsWith('| Idle')", arg=filename, timeout=60_000
    )
    page.keyboard.press("Control+b")  # hide the file browser: wider cells, clearer pictures
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    started = time.monotonic()
    stopped_since: float | None = None
    seen: dict[tuple[int, int], set[float]] = {}
    while True:
        state = page.evaluate(READ_PAGE)
        assert state["panels"] == 1, f"{state['panels']} notebook panels open"
        kernel = page.evaluate(KERNEL_STATUS, filename)
        for i, box in enumerate(state["progress"]):
            for j, entry in enumerate(box["entries"]):
                value = percent(entry["width"])
                if value is not None:
                    seen.setdefault((i, j), set()).add(value)
        prompts = state["prompts"]
        finished = all(re.fullmatch(r"\[\d+\]:", p) for p in prompts)
        idle = kernel.endswith("| Idle")
        if len(prompts) == cells and finished and idle:
            run = Run(state, seen, time.monotonic() - started)
            assert not state["errors"], f"{notebook}: a cell raised:\n" + "\n".join(state["errors"])
            errors = saved_errors(page, lab, filename, cells)
            assert not errors, f"{notebook}: a cell raised: {errors}"
            return run
        # Run All stops at a cell that raised: the kernel idles, later cells stay unrun
        if idle and "[*]:" not in prompts:
            stopped_since = stopped_since or time.monotonic()
            if time.monotonic() - stopped_since > 3:
                shot(page, f"{notebook}-error")
                pytest.fail(
                    f"{notebook}: Run All stopped: prompts {prompts}, stderr:\n"
                    + "\n".join(state["stderr"])
                )
        else:
            stopped_since = None
        if time.monotonic() - started > RUN_TIMEOUT:
            shot(page, f"{notebook}-timeout")
            pytest.fail(
                f"{notebook}: Run All did not finish in {RUN_TIMEOUT:.0f} s: prompts {prompts}, "
                f"kernel {kernel!r}, stderr {state['stderr']}"
            )
        time.sleep(0.1)


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def assert_progress(run: Run, expected: list[list[tuple[str, str]]]) -> None:
    """Every progress widget rendered its entries, ended full, in colour, marked complete."""
    boxes = run.final["progress"]
    assert len(boxes) == len(expected), boxes
    for box, entries in zip(boxes, expected, strict=True):
        assert "stacfetch-complete" in box["classes"], box
        assert [(e["label"], e["bar"]) for e in box["entries"]] == [
            (label, ["progress-bar", f"progress-bar-{style}"]) for label, style in entries
        ], box
        for entry in box["entries"]:
            assert percent(entry["width"]) == 100.0, entry


def moved(run: Run, box: int) -> bool:
    """Did any bar of progress widget ``box`` show a value strictly between 0 and 100 %?"""
    return any(0 < v < 100 for (i, _), values in run.seen.items() if i == box for v in values)


# -- the tests ---------------------------------------------------------------------------------
def assert_where(run: Run) -> None:
    """The kernel imported stacfetch from this checkout (the notebook's last output)."""
    assert run.final["outputs"][-1].strip() == str(REPO / "stacfetch" / "__init__.py"), run.final[
        "outputs"
    ][-1]


def assert_red_where_failed(box: dict[str, Any]) -> set[str]:
    """Per entry, the timeline's red segments are exactly the failure table's intervals."""
    (viewer,) = box["failures"]
    red_everywhere: set[str] = set()
    for entry in box["entries"]:
        listed = {
            f["interval"] for f in viewer["intervals"] if f["entry"].endswith("#" + entry["label"])
        }
        red = [seg for seg in entry["segments"] if seg["state"] == "failed"]
        assert listed, (entry["label"], viewer["intervals"])
        assert {seg["interval"] for seg in red} == listed, (entry["label"], red, listed)
        assert len(red) == len(listed), red  # one red segment per failed chunk
        for seg in red:
            assert seg["width"] > 0, seg  # drawn, not just in the markup
            assert seg["interval"] in seg["title"], seg  # the hover text says where
            assert "failed" in seg["title"], seg
        # the rest of the year arrived: green segments around the red ones
        assert any(seg["state"] == "done" for seg in entry["segments"]), entry["segments"]
        red_everywhere |= listed
    return red_everywhere


@pytest.mark.parametrize(("catalog", "notebook"), RUNS)
def test_run_all(page: Any, lab: Lab, catalog: str, notebook: str) -> None:
    """Run All on one catalog: no cell raised (DOM and saved notebook), bars full, and what
    each notebook must show (in 03: red timeline segments exactly at the failed chunks)."""
    name = notebook_name(notebook, catalog)
    run = run_all(page, lab, name)
    print(f"{name}: Run All finished in {run.seconds:.1f} s")
    final = run.final
    assert_where(run)
    assert_progress(run, (EXPECTED if catalog == "thousands" else EXPECTED_EMPTY)[notebook])

    page.locator(".stacfetch-progress").first.scroll_into_view_if_needed()
    shot(page, name)

    if catalog == "empty":
        text = "\n".join(final["outputs"])
        assert "matched no items" in text, text
        assert not final["stderr"], final["stderr"]
        return
    if notebook != "03-failures-and-retry":  # a timeline under every bar, all green at the end
        for box in final["progress"]:
            for entry in box["entries"]:
                states = {seg["state"] for seg in entry["segments"]}
                if entry["label"].endswith(".parquet"):  # file mode: no interval to draw
                    assert states == set(), entry
                    continue
                assert states in ({"done"}, {"done", "split"}), entry

    if notebook == "02-matrix":
        # live: the bars moved while ingest() (worker thread) and aingest() (kernel loop) ran
        assert moved(run, 0), run.seen
        assert moved(run, 1), run.seen
        cell = page.locator(".jp-CodeCell", has=page.locator(".stacfetch-progress")).first
        ARTIFACTS.mkdir(exist_ok=True)
        cell.screenshot(path=str(ARTIFACTS / "notebook-widgets.png"))
        if os.environ.get("STACFETCH_UPDATE_DOCS_IMAGES") == "1":
            README_IMAGE.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ARTIFACTS / "notebook-widgets.png", README_IMAGE)

    if notebook == "03-failures-and-retry":
        first, retried = final["progress"]
        # the failed run's own table, shown under its bars
        (viewer,) = first["failures"]
        assert viewer["shown"], viewer
        for text in ("503", "2023-03", *DEMO):
            assert text in viewer["table"], viewer
        # the timeline: red exactly where the failed chunks are, and they touch March 2023
        red = assert_red_where_failed(first)
        assert all("2023-0" in interval for interval in red), red
        # after the retry: its own timeline, every chunk green
        for entry in retried["entries"]:
            assert {seg["state"] for seg in entry["segments"]} == {"done"}, entry
        cell = page.locator(".jp-CodeCell", has=page.locator(".stacfetch-progress")).first
        cell.scroll_into_view_if_needed()
        ARTIFACTS.mkdir(exist_ok=True)
        cell.locator(".stacfetch-progress").first.screenshot(
            path=str(ARTIFACTS / "notebook-timeline.png")
        )
        if os.environ.get("STACFETCH_UPDATE_DOCS_IMAGES") == "1":
            TIMELINE_IMAGE.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ARTIFACTS / "notebook-timeline.png", TIMELINE_IMAGE)
        # ing.failure_table(): the same chunks, with a Retry button
        (table,) = final["viewers"]
        assert table["retry"], table
        for text in ("503", "2023-03", *DEMO):
            assert text in table["table"], table
        # after heal + retry_failed(): nothing failed, nothing left
        assert all(not v["shown"] for v in retried["failures"]), retried
        assert "no failed chunks" in final["outputs"][-2], final["outputs"][-2]
    else:
        assert not final["stderr"], final["stderr"]
        for box in final["progress"]:
            assert all(not v["shown"] for v in box["failures"]), box


RETRY_NOTEBOOK = [
    "import stacfetch\n"
    "from stacfetch._testing.demo import DEMO_COLLECTIONS, demo_server\n"
    "\n"
    'server = demo_server(fail_window=("2023-03-01", "2023-03-31"))\n'
    "ing = stacfetch.Ingestor(\n"
    '    server.url, collections=DEMO_COLLECTIONS, retry={"max_retries": 1, "backoff_base": 0.1}\n'
    ")\n"
    "gdf = ing.ingest()",
    "server.heal()",
]


def test_retry_button(page: Any, lab: Lab) -> None:
    """A click on "Retry failed" under a failed run fetches the missing chunks, live."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell(source) for source in RETRY_NOTEBOOK])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, lab.root / "retry-button.ipynb")
    run = run_all(page, lab, "retry-button")
    (box,) = run.final["progress"]
    (viewer,) = box["failures"]
    assert viewer["shown"], viewer
    assert viewer["retry"], viewer
    assert "503" in viewer["table"], viewer

    page.locator(".stacfetch-progress .stacfetch-retry").first.click()
    status = page.locator(".stacfetch-progress .stacfetch-retry-status").first
    status.filter(has_text="Retry finished").wait_for(timeout=60_000)
    shot(page, "retry-button")
    assert "every failed chunk was fetched" in status.inner_text()

    final = page.evaluate(READ_PAGE)
    outer = final["progress"][0]
    assert "no failed chunks" in outer["failures"][0]["table"].lower(), outer
    assert not outer["failures"][0]["retry"], outer  # nothing left to retry
    # the retry's own bars, displayed under the button while it runs
    assert len(final["progress"]) == 2, "the retry's progress bars did not appear in the page"
    inner = final["progress"][1]
    assert [(e["label"], e["bar"][-1]) for e in inner["entries"]] == [
        (DEMO[0], "progress-bar-success"),
        (DEMO[1], "progress-bar-success"),
    ], inner
    assert all(percent(e["width"]) == 100.0 for e in inner["entries"]), inner


def test_a_cell_that_raises_fails_the_run(page: Any, lab: Lab) -> None:
    """The check itself: a raising LAST cell (Run All has nothing left to stop) is caught."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell("x = 1"), new_code_cell("{}['id']")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, lab.root / "raises.ipynb")
    with pytest.raises(AssertionError, match="a cell raised") as caught:
        run_all(page, lab, "raises")
    assert "KeyError" in str(caught.value), caught.value
