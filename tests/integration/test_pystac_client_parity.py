"""pystac-client and stacfetch against the same real stac-fastapi-pgstac, argument by argument.

For every ``Client.search()`` argument (docs/from-pystac-client.md) the same keyword arguments go
to ``pystac_client.Client.open(url).search(**kw).items_as_dicts()`` and to
``stacfetch.ingest(url, **kw)``; the (collection, id) sets must be equal (for ``max_items``, the
counts: which items a sample holds depends on the order of parallel pages).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

import pytest

import stacfetch
from stacfetch import SearchRejectedError

pytestmark = pytest.mark.integration

UTC = timezone.utc
POLYGON = {
    "type": "Polygon",
    "coordinates": [[[-30.0, -40.0], [50.0, -40.0], [50.0, 45.0], [-30.0, 45.0], [-30.0, -40.0]]],
}
CQL2_JSON = {
    "op": "and",
    "args": [
        {"op": "<", "args": [{"property": "eo:cloud_cover"}, 20]},
        {"op": "=", "args": [{"property": "platform"}, "sentinel-2b"]},
    ],
}

CASES: list[tuple[str, dict[str, Any]]] = [
    ("bbox", {"bbox": [-20.0, -60.0, 60.0, 60.0]}),
    ("intersects", {"intersects": POLYGON}),
    ("datetime-month", {"datetime": "2021-08"}),
    ("datetime-range", {"datetime": "2021-07-01T00:00:00Z/2021-07-20T00:00:00Z"}),
    ("datetime-open-start", {"datetime": "../2021-06-15T00:00:00Z"}),
    ("datetime-open-end", {"datetime": "2021-12-20T00:00:00Z/.."}),
    (
        "datetime-pair",
        {"datetime": [datetime(2021, 9, 1, tzinfo=UTC), datetime(2021, 9, 10, tzinfo=UTC)]},
    ),
    ("query", {"query": {"eo:cloud_cover": {"lt": 10}}}),
    ("filter-text", {"filter": "eo:cloud_cover < 10"}),
    (
        "filter-text-lang",
        {"filter": "platform = 'landsat-9' AND eo:cloud_cover < 50", "filter_lang": "cql2-text"},
    ),
    ("filter-json", {"filter": CQL2_JSON}),
    ("filter-json-lang", {"filter": CQL2_JSON, "filter_lang": "cql2-json"}),
    ("method-get", {"method": "GET", "bbox": [-20.0, -60.0, 60.0, 60.0], "datetime": "2021-09"}),
    ("method-get-filter-text", {"method": "GET", "filter": "eo:cloud_cover < 10"}),
    ("method-get-filter-json", {"method": "GET", "filter": CQL2_JSON}),
    ("method-post", {"method": "POST", "datetime": "2021-10"}),
    ("sortby", {"sortby": "-datetime", "datetime": "2021-08"}),
    ("sortby-property", {"sortby": ["+properties.eo:cloud_cover"], "datetime": "2021-08"}),
    ("fields", {"fields": ["-assets", "-links"], "datetime": "2021-11"}),
    ("limit", {"limit": 37, "datetime": "2021-07-01T00:00:00Z/2021-07-25T00:00:00Z"}),
    (
        "headers",
        {
            "headers": {"X-Stacfetch-Test": "parity"},
            "datetime": "2021-06-01T00:00:00Z/2021-06-25T00:00:00Z",
        },
    ),
    (
        "collections-two",
        {"collections": ["sf-a", "sf-b"], "datetime": "2021-07-01T00:00:00Z/2021-07-10T00:00:00Z"},
    ),
]


REFERENCE_OVERRIDES: dict[str, dict[str, Any]] = {
    # pystac-client 0.9 POSTs CQL2-text as is when filter_lang="cql2-text" is given, and
    # pgstac answers 400 (it takes only CQL2-JSON in a body): its reference runs as GET
    "filter-text-lang": {"method": "GET"},
}


def pystac_client_keys(url: str, kwargs: Mapping[str, Any]) -> list[tuple[str, str]]:
    from pystac_client import Client

    kw = dict(kwargs)
    headers = kw.pop("headers", None)
    client = Client.open(url, headers=headers)
    # the fixture's landing page does not list sort/fields/query/filter conformance although
    # the server implements them; pystac-client would refuse (warnings are errors here)
    client.add_conforms_to("SORT")
    client.add_conforms_to("FIELDS")
    client.add_conforms_to("QUERY")
    client.add_conforms_to("FILTER")
    search = client.search(**kw)
    return [(item["collection"], item["id"]) for item in search.items_as_dicts()]


def stacfetch_frame(url: str, kwargs: Mapping[str, Any]) -> Any:
    ing = stacfetch.Ingestor(url, progress=False, concurrency=8, **kwargs)
    gdf = ing.ingest()
    assert not ing.failures, ing.failures.to_records()[:1]
    return gdf


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=[c[0] for c in CASES])
def test_same_items_as_pystac_client(stac_url: str, name: str, kwargs: dict[str, Any]) -> None:
    kw = {"collections": ["sf-b"], "limit": 200, **kwargs}
    expected = pystac_client_keys(stac_url, {**kw, **REFERENCE_OVERRIDES.get(name, {})})
    gdf = stacfetch_frame(stac_url, kw)
    got = list(zip(gdf.collection, gdf.id, strict=True))
    assert len(got) == len(set(got))
    assert set(got) == set(expected)
    assert expected, f"{name}: the case selects nothing, so it proves nothing"
    if name == "sortby":
        stamps = gdf.datetime.dropna().tolist()
        assert stamps == sorted(stamps, reverse=True)
        assert gdf.id.tolist()[: len(stamps)] != sorted(gdf.id.tolist())[: len(stamps)]
    if name == "fields":
        assert "assets" not in gdf.columns
        assert "links" not in gdf.columns


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ids": None, "collections": ["sf-b"]},
        {"ids": None, "collections": None},
    ],
    ids=["ids-with-collections", "ids-without-collections"],
)
def test_ids_like_pystac_client(
    stac_url: str, seeded_items: dict[str, list[dict[str, Any]]], kwargs: dict[str, Any]
) -> None:
    ids = [item["id"] for item in seeded_items["sf-b"][:30]]
    ids += [item["id"] for item in seeded_items["sf-a"][:20]]
    kw = {**kwargs, "ids": ids, "limit": 7}
    kw = {k: v for k, v in kw.items() if v is not None}
    expected = pystac_client_keys(stac_url, kw)
    gdf = stacfetch_frame(stac_url, kw)
    got = set(zip(gdf.collection, gdf.id, strict=True))
    assert got == set(expected)
    assert len(got) == (30 if "collections" in kw else 50)


def test_month_form_includes_the_last_second_unlike_pystac_client(
    stac_url: str, seeded_items: dict[str, list[dict[str, Any]]]
) -> None:
    """``datetime="2021-07"``: stacfetch searches ``.../2021-07-31T23:59:59.999999Z``;
    pystac-client 0.9 ends the month at ``23:59:59Z`` and misses items of its last second."""
    kw = {"collections": ["sf-b"], "datetime": "2021-07", "limit": 200}
    theirs = set(pystac_client_keys(stac_url, kw))
    gdf = stacfetch_frame(stac_url, kw)
    ours = set(zip(gdf.collection, gdf.id, strict=True))
    extra = ours - theirs
    assert theirs <= ours
    assert extra  # the seeded items include microsecond neighbours of month ends
    stamps = {
        (i["collection"], i["id"]): i["properties"].get("datetime") for i in seeded_items["sf-b"]
    }
    assert all(str(stamps[key]).startswith("2021-07-31T23:59:59.") for key in extra)


def test_max_items_count_like_pystac_client(stac_url: str) -> None:
    kw = {"collections": ["sf-b"], "max_items": 100, "limit": 30}
    expected = pystac_client_keys(stac_url, kw)
    gdf = stacfetch_frame(stac_url, kw)
    assert len(gdf) == len(expected) == 100
    assert len(set(gdf.id)) == 100


def test_filter_text_is_no_longer_lost_in_post(stac_url: str) -> None:
    """The bug of issue 14: CQL2-text POSTed with filter-lang cql2-text got 400 per chunk."""
    ing = stacfetch.Ingestor(
        stac_url, collections=["sf-b"], filter="eo:cloud_cover < 10", method="POST",
        progress=False, strict=True,
    )  # fmt: skip
    gdf = ing.ingest()
    assert len(gdf) > 50
    assert (gdf["eo:cloud_cover"].astype(float) < 10).all()


def test_rejected_search_fails_fast_with_the_server_message(stac_url: str) -> None:
    """pgstac validates the query extension's operators: 400 for the probe, one error."""
    ing = stacfetch.Ingestor(
        stac_url, collections=["sf-a", "sf-b"], query={"eo:cloud_cover": {"below": 5}},
        concurrency=8, progress=False,
    )  # fmt: skip
    with pytest.raises(SearchRejectedError, match=r"query: .* rejected the search") as info:
        ing.ingest()
    assert info.value.status_code in (400, 422)
    assert "below" in info.value.server_message
    assert len(ing.failures) == 0


def test_items_match_pystac_client_items(stac_url: str) -> None:
    from pystac_client import Client

    kw: dict[str, Any] = {"collections": ["sf-b"], "datetime": "2021-08", "limit": 100}
    theirs = {i.id: i for i in Client.open(stac_url).search(**kw).items()}
    ours = stacfetch.Ingestor(stac_url, progress=False, **kw).items()
    assert {i.id for i in ours} == set(theirs)
    for item in ours[:25]:
        other = theirs[item.id]
        assert item.datetime == other.datetime
        assert item.geometry == other.geometry
        assert set(item.assets) == set(other.assets)
        for key in ("proj:epsg", "platform"):
            if key in other.properties:
                assert item.properties[key] == other.properties[key]


# --------------------------------------------------------------- the same against rustac serve
# rustac's in-memory backend answers `filter`, `query`, `sortby` and `fields` with empty or
# unchanged pages (it does not implement them), so only the arguments it serves are compared.
RUSTAC_CASES = [
    c
    for c in CASES
    if c[0]
    in {
        "bbox",
        "intersects",
        "datetime-month",
        "datetime-range",
        "datetime-open-start",
        "datetime-open-end",
        "datetime-pair",
        "method-get",
        "method-post",
        "limit",
        "headers",
    }
]


@pytest.fixture(scope="module")
def rustac_url(
    tmp_path_factory: pytest.TempPathFactory, seeded_items: dict[str, list[dict[str, Any]]]
) -> Iterator[str]:
    import orjson

    from tests.support.rustac import serve

    folder = tmp_path_factory.mktemp("rustac")
    ndjson = folder / "items.ndjson"
    items = [*seeded_items["sf-b"], *seeded_items["sf-a"][:500]]
    ndjson.write_bytes(b"\n".join(orjson.dumps(item) for item in items))
    with serve(ndjson) as url:
        yield url


@pytest.mark.parametrize(("name", "kwargs"), RUSTAC_CASES, ids=[c[0] for c in RUSTAC_CASES])
def test_same_items_as_pystac_client_on_rustac(
    rustac_url: str, name: str, kwargs: dict[str, Any]
) -> None:
    kw = {"collections": ["sf-b"], "limit": 200, **kwargs}
    expected = pystac_client_keys(rustac_url, kw)
    gdf = stacfetch_frame(rustac_url, kw)
    got = list(zip(gdf.collection, gdf.id, strict=True))
    assert len(got) == len(set(got))
    assert set(got) == set(expected)
    assert expected, f"{name}: the case selects nothing, so it proves nothing"


def test_ids_without_collections_on_rustac(
    rustac_url: str, seeded_items: dict[str, list[dict[str, Any]]]
) -> None:
    ids = [i["id"] for i in seeded_items["sf-b"][:15]] + [i["id"] for i in seeded_items["sf-a"][:5]]
    expected = pystac_client_keys(rustac_url, {"ids": ids, "limit": 6})
    gdf = stacfetch_frame(rustac_url, {"ids": ids, "limit": 6})
    assert set(zip(gdf.collection, gdf.id, strict=True)) == set(expected)
    assert len(expected) == 20


def test_max_items_count_on_rustac(rustac_url: str) -> None:
    kw = {"collections": ["sf-b"], "max_items": 75, "limit": 20}
    assert len(stacfetch_frame(rustac_url, kw)) == len(pystac_client_keys(rustac_url, kw)) == 75
