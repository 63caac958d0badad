"""The notebooks of ``notebooks/`` run top to bottom in a real kernel, against the pgstac server.

The jupytext sources are converted in-process and executed with nbclient, with the catalog
settings pointed at the session's seeded stac-fastapi-pgstac server (``03`` starts stacfetch's
own demo server instead). Beyond "no cell raised", each run is checked through what a reader
sees: the printed summaries, the HTML of the failure list, and the saved widget state of every
progress bar (its model's ``value`` reached ``max``, green, or red where a chunk failed).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
CELL_TIMEOUT = 120
"""Seconds any one cell may take."""
COLLECTIONS = ("sf-a", "sf-b")
SETTINGS = {
    "STACFETCH_COLLECTIONS": ",".join(COLLECTIONS),
    "STACFETCH_DATETIME": "2021-07-01/2021-09-30",
    "STACFETCH_BBOX": "",
}
"""The environment the notebooks read, besides ``STACFETCH_CATALOG_URL`` (a few seconds of
items of both seeded collections, no bbox: the seeded footprints cover the whole globe)."""
CATALOGS = {
    "some": {},
    # no datetime filter: all 4,500 seeded items (the env-driven notebooks' detailed tests)
    "thousands": {"STACFETCH_DATETIME": ""},
    # years before the seeded collections begin: the search matches nothing
    "empty": {"STACFETCH_DATETIME": "1990-01-01/1990-12-31"},
}
"""The catalogs' searches every env-driven notebook must run through without an error."""
WHERE = "import stacfetch as _sf\nprint(_sf.__file__)"
"""Appended to every notebook: the kernel must import the checkout under test."""
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def load_notebook(path: Path) -> Any:
    """A jupytext source as an nbformat notebook, without the jupytext header metadata."""
    import jupytext

    nb = jupytext.read(path)
    nb.metadata.pop("jupytext", None)
    return nb


def test_every_notebook_is_listed() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.py")) == [
        "01-quickstart.py",
        "02-matrix.py",
        "03-failures-and-retry.py",
        "04-files-and-geoparquet.py",
    ]


@pytest.fixture
def run_notebook(stac_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``run(name, catalog="some") -> executed notebook``, with the kernel's working directory
    in ``tmp_path`` and the search of ``CATALOGS[catalog]``; fails when any cell raised."""
    import nbclient
    from nbclient.exceptions import CellExecutionError
    from nbformat.v4 import new_code_cell

    monkeypatch.setenv("STACFETCH_CATALOG_URL", stac_url)
    path = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(REPO), path) if p))

    def run(name: str, catalog: str = "some") -> Any:
        for key, value in {**SETTINGS, **CATALOGS[catalog]}.items():
            monkeypatch.setenv(key, value)
        nb = load_notebook(NOTEBOOKS / f"{name}.py")
        nb.cells.append(new_code_cell(WHERE))
        client = nbclient.NotebookClient(
            nb,
            timeout=CELL_TIMEOUT,
            kernel_name="python3",
            resources={"metadata": {"path": str(tmp_path)}},
        )
        try:
            client.execute()
        except CellExecutionError as exc:
            pytest.fail(f"{name} ({catalog}): a cell raised\n{exc}", pytrace=False)
        errors = [
            (cell.source, output.get("ename"))
            for cell in code_cells(nb)
            for output in cell.outputs
            if output.output_type == "error"
        ]
        assert not errors, errors
        where = nb.cells.pop()
        assert text_of(where).strip() == str(REPO / "stacfetch" / "__init__.py"), text_of(where)
        return nb

    return run


# -- reading an executed notebook ------------------------------------------------------------
def code_cells(nb: Any) -> list[Any]:
    return [c for c in nb.cells if c.cell_type == "code"]


def cell_with(nb: Any, source: str) -> Any:
    """The one code cell whose source contains ``source``."""
    found = [c for c in code_cells(nb) if source in c.source]
    assert len(found) == 1, f"{len(found)} cells contain {source!r}"
    return found[0]


def text_of(cell: Any, stream: str = "stdout") -> str:
    return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == stream)


def printed(nb: Any) -> str:
    return "".join(text_of(cell) for cell in code_cells(nb))


def html_of(cell: Any) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for o in cell.outputs)


def widget_state(nb: Any) -> dict[str, Any]:
    state: dict[str, Any] = nb.metadata["widgets"][WIDGET_STATE]["state"]
    return state


def bars(nb: Any, cell: Any) -> list[dict[str, Any]]:
    """The state of every ``stacfetch-bar`` shown by ``cell``, in display order."""
    state = widget_state(nb)
    found: list[dict[str, Any]] = []

    def walk(model_id: str) -> None:
        model = state[model_id]["state"]
        if "stacfetch-bar" in model.get("_dom_classes", ()):
            found.append(model)
        for child in model.get("children", ()):
            walk(child.removeprefix("IPY_MODEL_"))

    for output in cell.outputs:
        view = output.get("data", {}).get(WIDGET_VIEW)
        if view:
            walk(view["model_id"])
    return found


def assert_bars(nb: Any, cell: Any, labels: list[str], style: str = "success") -> None:
    """``cell`` shows one full bar per label, in that order, all of ``style``."""
    shown = bars(nb, cell)
    assert [b["description"] for b in shown] == labels, shown
    for b in shown:
        assert b["max"] > 0, b
        assert b["value"] == b["max"], b
        assert b["bar_style"] == style, b


def assert_clean(nb: Any) -> None:
    """Every code cell ran, and nothing was written to stderr."""
    for cell in code_cells(nb):
        assert cell.execution_count is not None, cell.source
        assert not text_of(cell, "stderr"), (cell.source, text_of(cell, "stderr"))


# -- the notebooks ---------------------------------------------------------------------------
def assert_thousands(nb: Any) -> None:
    """Every count the notebook printed is of the thousands of seeded items."""
    counts = [int(n.replace(",", "")) for n in re.findall(r"^([\d,]+) items", printed(nb), re.M)]
    assert counts, printed(nb)
    assert min(counts) >= 1000, counts
    assert "matched no items" not in printed(nb)


def test_quickstart(run_notebook: Any) -> None:
    nb = run_notebook("01-quickstart", "thousands")
    assert_clean(nb)
    assert_thousands(nb)
    assert_bars(nb, cell_with(nb, "gdf = ing.ingest()"), ["sf-a"])
    summary = text_of(cell_with(nb, "ids unique"))
    assert re.fullmatch(r"[\d,]+ items, ids unique: True, failed chunks: 0\n", summary), summary
    footprints = cell_with(nb, "GeometryCollection").outputs
    assert any("image/svg+xml" in o.get("data", {}) for o in footprints)


def test_matrix(run_notebook: Any) -> None:
    nb = run_notebook("02-matrix", "thousands")
    assert_clean(nb)
    assert_thousands(nb)
    assert_bars(nb, cell_with(nb, "gdf = ing.ingest()"), list(COLLECTIONS))
    assert_bars(nb, cell_with(nb, "await ing2.aingest()"), list(COLLECTIONS))
    frames = cell_with(nb, "ing.frames").outputs[0]["data"]["text/plain"]
    assert re.fullmatch(r"\{'sf-a': \d+, 'sf-b': \d+\}", frames), frames
    assert "the same set as the first run: True" in text_of(cell_with(nb, "first, second"))
    summary = html_of(cell_with(nb, "ing2.summary"))
    assert "stacfetch-summary" in summary, summary


def test_failures_and_retry(run_notebook: Any) -> None:
    nb = run_notebook("03-failures-and-retry")
    for cell in code_cells(nb):
        assert cell.execution_count is not None, cell.source
    demo = ["sentinel-2-l2a", "landsat-c2-l2"]

    # the first run: red bars that still reached the end, and the failed chunks listed
    first = cell_with(nb, "gdf = ing.ingest()")
    assert_bars(nb, first, demo, style="danger")
    assert "503" in text_of(first, "stderr")  # the library's warning per failed chunk
    counts = re.fullmatch(
        r"[\d,]+ items fetched, (\d+) chunks failed\n", text_of(cell_with(nb, "chunks failed"))
    )
    assert counts is not None
    assert int(counts.group(1)) > 0
    before, after = (c for c in code_cells(nb) if c.source == "display(ing.failures)")
    assert "failed chunk" in html_of(before), html_of(before)
    assert "503" in html_of(before), html_of(before)

    # the failure table widget (ing.failure_table()): the failed chunks and a Retry button
    table = cell_with(nb, "ing.failure_table()").outputs[0]["data"][WIDGET_VIEW]["model_id"]
    viewer = widget_state(nb)[table]["state"]
    assert "stacfetch-failure-viewer" in viewer["_dom_classes"]
    tables = [
        m["state"]["value"]
        for m in widget_state(nb).values()
        if "stacfetch-failures" in m["state"].get("_dom_classes", ())
    ]
    assert any("503" in value and "2023-03" in value for value in tables), tables

    # heal and retry: green bars, nothing left, every demo item exactly once
    assert_bars(nb, cell_with(nb, "ing.retry_failed()"), demo)
    summary = text_of(cell_with(nb, "expected = len(demo_items())"))
    match = re.fullmatch(
        r"([\d,]+) items of ([\d,]+) served, ids unique: True, failed chunks left: 0\n", summary
    )
    assert match is not None, summary
    assert match.group(1) == match.group(2), summary
    assert "no failed chunks" in html_of(after), html_of(after)


def test_files_and_geoparquet(run_notebook: Any) -> None:
    nb = run_notebook("04-files-and-geoparquet", "thousands")
    assert_clean(nb)
    assert_thousands(nb)
    assert_bars(nb, cell_with(nb, "ing.to_parquet(OUT"), list(COLLECTIONS))
    listing = cell_with(nb, "ing.to_parquet(OUT").outputs[-1]["data"]["text/plain"]
    assert "_stacfetch_manifest.json" in listing, listing
    assert ".parquet'" in listing, listing
    assert re.fullmatch(r"[\d,]+ items, 0 duplicates\n", text_of(cell_with(nb, "duplicates =")))
    assert_bars(nb, cell_with(nb, "from_files.ingest()"), ["stacfetch-items.parquet"])
    assert "the same items as fetched: True" in text_of(cell_with(nb, "fetched = set"))


# -- a search that matches nothing -----------------------------------------------------------------
ENV_NOTEBOOKS = ("01-quickstart", "02-matrix", "04-files-and-geoparquet")
"""The notebooks whose search comes from the environment (03 runs its own demo server)."""


@pytest.mark.parametrize("name", ENV_NOTEBOOKS)
def test_a_search_that_matches_nothing(run_notebook: Any, name: str) -> None:
    nb = run_notebook(name, "empty")
    assert_clean(nb)
    text = printed(nb)
    assert "matched no items" in text, text
    assert all(n == "0" for n in re.findall(r"^([\d,]+) items", text, re.M)), text
    for cell in code_cells(nb):
        for b in bars(nb, cell):  # a run over nothing still ends green and full
            assert b["bar_style"] == "success", b
            assert b["value"] == b["max"], b
