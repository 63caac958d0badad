"""Exactly once against a real server that is not pgstac: ``rustac serve`` (memory backend).

rustac returns items in the order they were loaded; here they are loaded in id order (ids that
embed dates, like ``S2A_MSIL2A_2017...``), so a page looks sorted by datetime without being
so. Three collections: items spread over a year with annual range items among them, a DEM-like
collection on one timestamp, and annual composites. The result must equal what a plain
sequential client gets from the same server.
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
from tests.support.rustac import serve
from tests.support.shapes import id_ordered_collections

pytestmark = pytest.mark.integration

N = 1500


@pytest.fixture(scope="module")
def rustac_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    data = id_ordered_collections(N)
    path = Path(tmp_path_factory.mktemp("rustac")) / "items.ndjson"
    path.write_bytes(b"".join(orjson.dumps(it) + b"\n" for its in data.values() for it in its))
    with serve(path) as url:
        yield url, data


def plain(url: str, collection: str) -> list[str]:
    """A plain sequential client: the user's search, every ``next`` link, POST."""
    ids: list[str] = []
    request: dict[str, Any] | None = {
        "method": "POST",
        "href": f"{url}/search",
        "body": {"collections": [collection], "limit": 500},
    }
    with httpx.Client(timeout=60) as client:
        while request is not None:
            if request.get("method", "GET") == "POST":
                page = client.post(request["href"], json=request["body"]).json()
            else:
                page = client.get(request["href"]).json()
            ids += [f["id"] for f in page["features"]]
            request = next((ln for ln in page.get("links", []) if ln["rel"] == "next"), None)
    return ids


@pytest.mark.parametrize("collection", ["mixed", "dem", "annual"])
@pytest.mark.parametrize("limit", [50, 200])
def test_rustac_in_id_order_is_exact(
    rustac_server: tuple[str, dict[str, Any]], collection: str, limit: int
) -> None:
    url, data = rustac_server
    reference = plain(url, collection)
    assert sorted(reference) == sorted(it["id"] for it in data[collection])
    events = Events()
    ing = stacfetch.Ingestor(
        url, collections=[collection], concurrency=8, limit=limit, progress=events, decoders=0
    )
    gdf = ing.ingest()
    ids = list(gdf["id"])
    assert not ing.failures
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(reference)
    axes = [split.axis for split in events.of(ChunkSplit)]
    assert axes, "the search was not split: the test proves nothing"
    if collection == "dem":
        assert set(axes) == {"space"}
