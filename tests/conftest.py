"""Shared fixtures: a real, seeded stac-fastapi-pgstac server and fault proxies in front of it.

Session scope (started once, on first use):

- ``seeded_items``: ``{collection_id: [item, ...]}`` exactly as loaded (see ``SEED``);
- ``pgstac``: the running ``PgstacServer`` (context OFF: no ``numberMatched``);
- ``stac_url``: its API root;
- ``reference_ids``: ``f(body) -> set[(collection, id)]``, a sequential plain-httpx search that
  follows ``next`` links, independent of stacfetch.

Function scope:

- ``fault_proxy``: ``f(**FaultProxy kwargs) -> FaultProxy`` started in front of ``pgstac``;
  every proxy made is stopped after the test.

A missing PostgreSQL or PostGIS makes the fixtures FAIL (not skip) with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

import pytest

from tests.support.faultproxy import FaultProxy
from tests.support.itemgen import generate_items, make_collection
from tests.support.pgstac import PgstacServer, PgstacUnavailable, reference_search

UTC = timezone.utc

#: collection id -> (number of items, extent start, extent end)
SEED: dict[str, tuple[int, datetime, datetime]] = {
    "sf-a": (
        3000,
        datetime(2020, 1, 1, tzinfo=UTC),
        datetime(2022, 12, 31, 23, 59, 59, tzinfo=UTC),
    ),
    "sf-b": (
        1500,
        datetime(2021, 6, 1, tzinfo=UTC),
        datetime(2021, 12, 31, 23, 59, 59, tzinfo=UTC),
    ),
}
#: fields-extension value that reduces items to their keys
ID_FIELDS = {
    "include": ["id", "collection"],
    "exclude": ["assets", "geometry", "links", "bbox", "properties"],
}


@pytest.fixture(scope="session")
def seeded_items() -> dict[str, list[dict[str, Any]]]:
    """The generated items of every seeded collection (deterministic, seed 0)."""
    return {cid: generate_items(cid, n, start, end) for cid, (n, start, end) in SEED.items()}


@pytest.fixture(scope="session")
def pgstac(seeded_items: dict[str, list[dict[str, Any]]]) -> Iterator[PgstacServer]:
    """A started PgstacServer seeded with ``SEED`` (context off)."""
    server = PgstacServer()
    try:
        server.start()
    except PgstacUnavailable as exc:
        pytest.fail(f"the real STAC test server cannot run here: {exc}", pytrace=False)
    try:
        server.load_collections(
            make_collection(c, start, end) for c, (_, start, end) in SEED.items()
        )
        for items in seeded_items.values():
            server.load_items(items)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def stac_url(pgstac: PgstacServer) -> str:
    """Root URL of the seeded STAC API."""
    return pgstac.url


@pytest.fixture(scope="session")
def reference_ids(stac_url: str) -> Callable[[Mapping[str, Any]], set[tuple[str, str]]]:
    """``f(search body) -> {(collection, id)}`` by plain sequential paging (the reference).

    Asks only for ``id`` and ``collection`` (fields extension: same matches, ~7x faster than
    full items). Raises ``AssertionError`` if the server returns an item twice while paging.
    """

    def run(body: Mapping[str, Any]) -> set[tuple[str, str]]:
        items = reference_search(stac_url, {"fields": ID_FIELDS, **body}, page_size=5000)
        keys = [(item["collection"], item["id"]) for item in items]
        assert len(keys) == len(set(keys)), "server paging returned duplicates"
        return set(keys)

    return run


@pytest.fixture
def fault_proxy(pgstac: PgstacServer) -> Iterator[Callable[..., FaultProxy]]:
    """Factory: ``fault_proxy(error_rate=0.2, seed=1, ...)`` -> a started FaultProxy."""
    proxies: list[FaultProxy] = []

    def make(**kwargs: Any) -> FaultProxy:
        proxy = FaultProxy(pgstac.url, **kwargs).start()
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.stop()
