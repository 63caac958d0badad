"""Exactly once against ``rustac serve`` with its DuckDB backend on a stac-geoparquet file.

That backend pages without ``next`` links and without counts: every page, full or not, ends
the search as far as the links tell. A client that trusts the links gets the first page only;
stacfetch must take a full page without ``next`` as a possible truncation and narrow it until
every piece comes back short. The items are loaded in id order with ids that embed dates, so
pages look sorted by datetime without being so; three shapes: spread over a year with annual
range items, one timestamp (only space can split it) and annual range items.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

import stacfetch
from stacfetch._model.events import ChunkSplit
from tests.support.events import Events
from tests.support.rustac import serve, translate
from tests.support.shapes import id_ordered_collections

pytestmark = pytest.mark.integration

N = 1200
ALL = 100_000  # a limit above every collection: the server then answers in one short page


@pytest.fixture(scope="module")
def duckdb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    data = id_ordered_collections(N)
    folder = Path(tmp_path_factory.mktemp("rustac-duckdb"))
    ndjson = folder / "items.ndjson"
    ndjson.write_bytes(b"".join(orjson.dumps(it) + b"\n" for its in data.values() for it in its))
    parquet = translate(ndjson, folder / "items.parquet")
    with serve(parquet, duckdb=True, probe="/search?limit=1") as url:
        yield url, data


def search(url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{url}/search", json=body, timeout=120)
    response.raise_for_status()
    page: dict[str, Any] = response.json()
    return page


def whole(url: str, body: dict[str, Any]) -> list[str]:
    """The server's own whole answer: one page with a limit above every collection."""
    page = search(url, {**body, "limit": ALL})
    assert len(page["features"]) < ALL
    return [f["id"] for f in page["features"]]


def test_the_backend_pages_without_next_or_counts(
    duckdb_server: tuple[str, dict[str, Any]],
) -> None:
    """The quirk the other tests rely on: a full page carries no ``next`` link and no count."""
    url, data = duckdb_server
    page = search(url, {"collections": ["mixed"], "limit": 50})
    assert len(page["features"]) == 50
    assert "next" not in {link["rel"] for link in page["links"]}
    assert page.get("numberMatched") is None
    assert sorted(whole(url, {"collections": ["mixed"]})) == sorted(i["id"] for i in data["mixed"])


@pytest.mark.parametrize("collection", ["mixed", "dem", "annual"])
@pytest.mark.parametrize("limit", [50, 200])
def test_duckdb_backend_is_exact(
    duckdb_server: tuple[str, dict[str, Any]], collection: str, limit: int
) -> None:
    url, data = duckdb_server
    events = Events()
    ing = stacfetch.Ingestor(
        url, collections=[collection], concurrency=8, limit=limit, progress=events, decoders=0
    )
    ids = list(ing.ingest()["id"])
    assert not ing.failures
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(it["id"] for it in data[collection])
    axes = [split.axis for split in events.of(ChunkSplit)]
    assert axes, "the search was not split: the test proves nothing"
    if collection == "dem":
        assert set(axes) == {"space"}


@pytest.mark.parametrize(
    "search_kw",
    [
        {"datetime": "2021-03-01T00:00:00Z/2021-09-30T23:59:59Z"},
        {"bbox": [-120.0, -40.0, 60.0, 45.0]},
        {"datetime": "2021-02-01T00:00:00Z/..", "bbox": [-180.0, 0.0, 180.0, 60.0]},
    ],
    ids=["datetime", "bbox", "both"],
)
def test_a_users_own_filters_stay_exact(
    duckdb_server: tuple[str, dict[str, Any]], search_kw: dict[str, Any]
) -> None:
    """The user's datetime and bbox are the server's to apply (range items included): the
    result is what the server gives for the whole search in one page."""
    url, _ = duckdb_server
    expected = whole(url, {"collections": ["mixed"], **search_kw})
    assert 100 < len(expected) < N, "the filter must select some items, not all"
    ing = stacfetch.Ingestor(
        url, collections=["mixed"], concurrency=8, limit=50, decoders=0, **search_kw
    )
    ids = list(ing.ingest()["id"])
    assert not ing.failures
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(expected)
