"""pystac-client parity (issue 14): arguments, result order, pystac results, secrets in logs.

Against the in-memory StacServer (a real HTTP server on a thread) unless the test is pure.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import stacfetch
from stacfetch import ConfigurationError, IngestFilters, Ingestor, SearchRejectedError
from stacfetch._engine.logsafe import SecretFilter, redact_text, redacting_logs
from stacfetch._engine.search import ApiInfo, build_search_request
from stacfetch._formats.results import geodataframe_to_dicts, sort_frame, sort_items, sort_order
from stacfetch._model.types import Chunk, Entry, Interval
from stacfetch._testing.server import StacServer
from tests.support.parts import items_frame

REAL = Path(__file__).resolve().parents[1] / "data" / "real-stac"
API = ApiInfo("https://x", "https://x/search", ("GET", "POST"))
GET_ONLY = ApiInfo("https://x", "https://x/search", ("GET",))


def make_items(n: int = 30) -> list[dict[str, Any]]:
    items = []
    for i in range(n):
        props: dict[str, Any] = {
            "datetime": f"2024-01-{1 + i % 28:02d}T00:00:00Z",
            "eo:cloud_cover": (i * 7) % 31,
        }
        if i % 3:
            props["proj:epsg"] = 32633
        items.append(
            {
                "type": "Feature",
                "stac_version": "1.0.0",
                "id": f"i{i:02d}",
                "collection": "a" if i % 2 else "b",
                "bbox": [0.0, 0.0, 1.0, 1.0],
                "geometry": {"type": "Point", "coordinates": [0.5, 0.5]},
                "properties": props,
                "assets": {},
                "links": [],
            }
        )
    return items


@pytest.fixture
def server() -> Iterator[StacServer]:
    with StacServer(make_items()) as srv:
        yield srv


# --- ingest() and aingest() are typed like Ingestor -------------------------------------
def _args_section(doc: str) -> str:
    text = inspect.cleandoc(doc)
    start = text.index("Args:")
    end = text.find("\n\n", start)
    return text[start : end if end > 0 else None]


@pytest.mark.parametrize("fn", [stacfetch.ingest, stacfetch.aingest])
def test_ingest_has_the_ingestor_signature_and_docs(fn: Any) -> None:
    init = inspect.signature(Ingestor.__init__)
    expected = [p for name, p in init.parameters.items() if name != "self"]
    got = list(inspect.signature(fn).parameters.values())
    assert got == expected
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in got)
    assert {"fields", "method", "filter", "sortby", "ids"} <= {p.name for p in got}
    assert Ingestor.__init__.__doc__
    assert fn.__doc__
    assert _args_section(fn.__doc__) == _args_section(Ingestor.__init__.__doc__)
    for p in expected:
        assert re.search(rf"^    {p.name}:", _args_section(fn.__doc__), re.M), p.name


# --- CQL2 ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad", ["eo:cloud_cover <<< 5", "eo:cloud_cover < ", {"op": "<", "args": "x"}]
)
def test_bad_cql2_is_a_configuration_error_naming_filter(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"filter.*CQL2"):
        Ingestor("https://x", collections=["a"], filter=bad, progress=False)


def test_cql2_text_is_sent_as_json_in_post_and_json_as_text_in_get() -> None:
    entry = Entry("https://x", "c1")
    text = IngestFilters(filter="eo:cloud_cover < 10 AND platform = 'S2A'")
    chunk = Chunk.make(entry, Interval(None, None), text.search_filters())
    post = build_search_request(API, chunk, 10)
    assert post.method == "POST"
    assert post.body is not None
    assert post.body["filter-lang"] == "cql2-json"
    assert post.body["filter"]["op"] == "and"
    get = build_search_request(GET_ONLY, chunk, 10)
    assert get.method == "GET"
    assert get.params is not None
    assert get.params["filter-lang"] == "cql2-text"
    assert get.params["filter"] == "eo:cloud_cover < 10 AND platform = 'S2A'"
    as_json = IngestFilters(filter={"op": "<", "args": [{"property": "eo:cloud_cover"}, 10]})
    chunk = Chunk.make(entry, Interval(None, None), as_json.search_filters())
    params = build_search_request(GET_ONLY, chunk, 10).params
    assert params is not None
    assert params["filter"] == "eo:cloud_cover < 10"
    assert params["filter-lang"] == "cql2-text"


def test_method_forces_get_or_post() -> None:
    entry = Entry("https://x", "c1")
    get = IngestFilters(method="get", fields=["id", "-assets"], sortby="-datetime")
    req = build_search_request(
        API, Chunk.make(entry, Interval(None, None), get.search_filters()), 5
    )
    assert req.method == "GET"
    assert req.params is not None
    assert "method" not in req.params
    assert req.params["fields"] == "id,collection,-assets"
    assert req.params["sortby"] == "-datetime"
    post = IngestFilters(method="POST")
    chunk = Chunk.make(entry, Interval(None, None), post.search_filters())
    req = build_search_request(GET_ONLY, chunk, 5)
    assert req.method == "POST"
    assert req.body is not None
    assert "method" not in req.body
    with pytest.raises(ConfigurationError, match="method"):
        IngestFilters(method="PUT")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["+id", "-assets", "properties.eo:cloud_cover"],
         {"include": ["id", "properties.eo:cloud_cover", "collection"], "exclude": ["assets"]}),
        ("-geometry,-links", {"include": [], "exclude": ["geometry", "links"]}),
        ({"include": ["id"], "exclude": ["id", "assets"]},
         {"include": ["id", "collection"], "exclude": ["assets"]}),
    ],
)  # fmt: skip
def test_fields_take_pystac_client_forms(given: Any, expected: dict[str, list[str]]) -> None:
    assert IngestFilters(fields=given).fields == expected


def test_fields_reach_the_server_and_excluded_fields_are_absent_columns(
    server: StacServer,
) -> None:
    seen: list[Any] = []

    def spy(request: Any) -> Any:
        if request.url.path.endswith("/search"):
            seen.append(
                json.loads(request.content) if request.content else dict(request.url.params)
            )
        return request

    gdf = stacfetch.ingest(
        server.url,
        collections=["a"],
        fields={"exclude": ["assets"]},
        request_modifier=spy,
        progress=False,
    )
    assert len(gdf) == 15
    assert seen
    assert all(body.get("fields") == {"include": [], "exclude": ["assets"]} for body in seen)


# --- ids without collections -------------------------------------------------------------
def test_ids_without_collections_search_the_whole_catalog(server: StacServer) -> None:
    ids = ["i01", "i02", "i05", "i06", "i09", "missing"]
    ing = Ingestor(server.url, ids=ids, limit=2, progress=False)
    assert [e.collection_id for e in ing.entries] == [None]
    gdf = ing.ingest()
    assert not ing.failures
    assert sorted(gdf.id) == ["i01", "i02", "i05", "i06", "i09"]
    assert dict(zip(gdf.id, gdf.collection, strict=True)) == {
        "i01": "a", "i02": "b", "i05": "a", "i06": "b", "i09": "a"
    }  # fmt: skip
    assert server.counters["searches"] >= 3  # ids in groups of `limit`, paged


def test_ids_without_collections_in_get_and_stream(server: StacServer) -> None:
    async def keys() -> list[str]:
        ing = Ingestor(server.url, ids="i03,i04", method="GET", progress=False)
        return sorted([item["id"] async for item in ing.stream()])

    import asyncio

    assert asyncio.run(keys()) == ["i03", "i04"]


def test_ids_search_failure_is_recorded_for_retry(server: StacServer) -> None:
    rule = server.fail_when(lambda s: s["ids"] is not None and "i07" in s["ids"], status=503)
    ing = Ingestor(server.url, ids=["i07", "i08"], retry={"max_retries": 0}, progress=False)
    assert len(ing.ingest()) == 0
    assert len(ing.failures) == 1
    assert ing.failures[0].status_code == 503
    server.heal(rule)
    assert sorted(ing.retry_failed().id) == ["i07", "i08"]


# --- sortby ----------------------------------------------------------------------------
def test_sortby_orders_the_geodataframe_and_the_items(server: StacServer) -> None:
    ing = Ingestor(server.url, collections=["a", "b"], sortby="-datetime", limit=4, progress=False)
    gdf = ing.ingest()
    assert len(gdf) == 30
    assert gdf.datetime.is_monotonic_decreasing
    assert list(gdf.index) == list(range(30))
    dicts = ing.items_as_dicts()
    assert [d["id"] for d in dicts] == list(gdf.id)


def test_sort_frame_handles_property_forms_nulls_mixed_types_and_is_stable() -> None:
    import geopandas

    gdf = geopandas.GeoDataFrame(
        {
            "id": ["a", "b", "c", "d", "e"],
            "eo:cloud_cover": [5.0, None, 1.0, 5.0, 9.0],
            "mixed": [1, "x", None, 2.5, "a"],
        }
    )
    for field in ("eo:cloud_cover", "properties.eo:cloud_cover"):
        asc = sort_frame(gdf, [{"field": field, "direction": "asc"}])
        assert asc.id.tolist() == ["c", "a", "d", "e", "b"]  # stable: a before d
        desc = sort_frame(gdf, [{"field": field, "direction": "desc"}])
        assert desc.id.tolist() == ["e", "a", "d", "c", "b"]  # nulls last, ties kept
    two = sort_frame(
        gdf,
        [{"field": "eo:cloud_cover", "direction": "desc"}, {"field": "id", "direction": "desc"}],
    )
    assert two.id.tolist() == ["e", "d", "a", "c", "b"]
    mixed = sort_frame(gdf, [{"field": "mixed", "direction": "asc"}])
    assert mixed.id.tolist() == ["a", "d", "e", "b", "c"]  # numbers < strings, null last
    assert sort_frame(gdf, [{"field": "absent", "direction": "asc"}]).id.tolist() == list("abcde")
    assert sort_order([[2, 1, 2]], [False]) == [1, 0, 2]


def test_sort_items_compares_datetimes_as_instants() -> None:
    items = [
        {"id": "late", "properties": {"datetime": "2024-01-01T00:00:01Z"}},
        {"id": "early", "properties": {"datetime": "2024-01-01T00:00:00.500000Z"}},
    ]
    by = [{"field": "properties.datetime", "direction": "asc"}]
    assert [i["id"] for i in sort_items(items, by)] == ["early", "late"]


# --- a search the server rejects fails fast, once ---------------------------------------
def test_a_rejected_filter_raises_once_before_any_chunk(server: StacServer) -> None:
    ing = Ingestor(
        server.url, collections=["a", "b"], filter="eo:cloud_cover < 5", concurrency=8,
        progress=False,
    )  # fmt: skip
    with pytest.raises(SearchRejectedError, match=r"filter: .*HTTP 400.*not supported") as info:
        ing.ingest()
    assert info.value.status_code == 400
    assert "filter is not supported" in info.value.server_message
    assert isinstance(info.value, ConfigurationError)
    assert len(ing.failures) == 0
    # at most one probe per entry, no chunk (the first 400 may cancel the other entry's
    # probe before it is sent, on a busy machine)
    assert server.counters["searches"] in (1, 2)
    assert server.counters["pages"] == 0


def test_probe_is_skipped_for_plain_searches(server: StacServer) -> None:
    gdf = stacfetch.ingest(server.url, collections=["a"], datetime="2024-01", progress=False)
    assert len(gdf) == 15


# --- results for the pystac world ----------------------------------------------------------
def test_items_item_collection_and_async_twins(server: StacServer) -> None:
    import asyncio

    import pystac

    ing = Ingestor(server.url, collections=["a", "b"], sortby="+datetime", progress=False)
    items = ing.items()
    assert len(items) == 30
    assert all(isinstance(i, pystac.Item) for i in items)
    stamps = [i.datetime for i in items]
    assert stamps == sorted(stamps)  # type: ignore[type-var]
    assert {i.properties.get("proj:epsg") for i in items} == {32633, None}
    assert all(type(i.properties["proj:epsg"]) is int for i in items if "proj:epsg" in i.properties)
    requests = server.counters["searches"]
    ic = ing.item_collection()  # already fetched: no new request
    assert server.counters["searches"] == requests
    assert isinstance(ic, pystac.ItemCollection)
    assert [i.id for i in ic] == [i.id for i in items]
    fresh = Ingestor(server.url, collections=["b"], progress=False)
    assert len(asyncio.run(fresh.aitems())) == 15
    other = Ingestor(server.url, collections=["a"], progress=False)
    assert len(asyncio.run(other.aitem_collection())) == 15
    dicts = asyncio.run(Ingestor(server.url, ids=["i00"], progress=False).aitems_as_dicts())
    assert [d["id"] for d in dicts] == ["i00"]


def _real(name: str) -> list[dict[str, Any]]:
    data = json.loads((REAL / name).read_text())
    if isinstance(data, list):
        return data
    features: list[dict[str, Any]] = data.get("features", [data])
    return features


@pytest.fixture
def mixed_frame() -> Any:
    """Sentinel-2 and Landsat items (proj:epsg) with census items (none): pandas makes the
    integer column float (NaN where missing)."""
    s2 = _real("planetary-computer__sentinel-2-l2a__2.json")
    landsat = _real("planetary-computer__landsat-c2-l2__3.json")
    census = _real("planetary-computer__us-census__2.json")
    gdf = items_frame([*s2, *landsat, *census])
    gdf["proj:epsg"] = gdf["proj:epsg"].astype("float64")  # whatever the Arrow layer does
    return gdf


def test_geodataframe_to_dicts_restores_items(mixed_frame: Any) -> None:
    s2 = _real("planetary-computer__sentinel-2-l2a__2.json")[0]
    dicts = geodataframe_to_dicts(mixed_frame)
    assert [d["id"] for d in dicts] == list(mixed_frame.id)
    first = dicts[0]
    assert first["properties"]["proj:epsg"] == 32653
    assert type(first["properties"]["proj:epsg"]) is int
    assert "proj:epsg" not in dicts[2]["properties"]
    assert first["properties"]["datetime"] == s2["properties"]["datetime"].replace(
        ".024Z", ".024000Z"
    )
    assert first["bbox"] == pytest.approx(s2["bbox"])
    assert first["geometry"]["type"] == s2["geometry"]["type"]
    assert set(first["assets"]) == set(s2["assets"])
    assert first["assets"]["B04"]["href"] == s2["assets"]["B04"]["href"]
    assert first["assets"]["B04"]["proj:shape"] == [10980, 10980]


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # affine 3, used by stackstac
def test_odc_stac_and_stackstac_build_lazy_arrays_offline(mixed_frame: Any, tmp_path: Path) -> None:
    import odc.stac
    import pystac
    import stackstac

    from stacfetch._formats.geoparquet import write_geoparquet
    from stacfetch._formats.tables import items_to_arrow

    # the negative control: a float proj:epsg is what breaks odc-stac
    raw = _real("planetary-computer__sentinel-2-l2a__2.json")[0]
    raw["properties"]["proj:epsg"] = 32653.0
    with pytest.raises(ValueError, match=r"32653\.0"):
        odc.stac.load([pystac.Item.from_dict(raw)], bands=["B04"], chunks={})

    write_geoparquet(items_to_arrow(geodataframe_to_dicts(mixed_frame)), tmp_path / "x.parquet")
    for frame in (mixed_frame, stacfetch.read_geoparquet(tmp_path / "x.parquet")):
        frame["proj:epsg"] = frame["proj:epsg"].astype("float64")
        items = stacfetch.geodataframe_to_items(frame)
        by_collection = {c: [i for i in items if i.collection_id == c] for c in ("sentinel-2-l2a",)}
        s2 = odc.stac.load(by_collection["sentinel-2-l2a"], bands=["B04"], chunks={})
        assert s2.odc.geobox.crs.epsg == 32653
        assert s2.B04.shape == (1, 10980, 10980)
        assert s2.B04.chunks is not None  # lazy (dask), nothing read
        landsat = [i for i in items if i.collection_id == "landsat-c2-l2"]
        stack = stackstac.stack(landsat, assets=["red"])
        assert stack.shape == (1, 1, 8002, 7872)
        assert stack.attrs["crs"] == "epsg:32630"
        s2_stack = stackstac.stack(by_collection["sentinel-2-l2a"], assets=["B04"])
        assert s2_stack.attrs["crs"] == "epsg:32653"


# --- no secret in any log record ---------------------------------------------------------
TOKEN = "sk-live-0123456789abcdef"


def test_token_reaches_no_log_record_at_debug(
    server: StacServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gdf = stacfetch.ingest(
        server.url,
        collections=["a"],
        headers={"Authorization": f"Bearer {TOKEN}", "X-Api-Key": "key-abcdef-42"},
        progress=False,
    )
    assert len(gdf) == 15
    names = {r.name for r in caplog.records}
    assert "pystac_client.stac_api_io" in names  # the logger that used to print headers
    assert any("Headers" in r.getMessage() for r in caplog.records)
    assert TOKEN not in caplog.text
    assert "key-abcdef-42" not in caplog.text
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
    # the filter is removed after the run
    logging.getLogger("pystac_client.stac_api_io").debug("after %s", TOKEN)
    assert TOKEN in caplog.records[-1].getMessage()


def test_secret_filter_cleans_urls_headers_and_tracebacks() -> None:
    assert redact_text("GET https://x/s?sig=abc&token=next:1&subscription-key=zz") == (
        "GET https://x/s?sig=***&token=next:1&subscription-key=***"
    )
    assert redact_text("{'authorization': 'Basic dXNlcjpwYXNz'}") == "{'authorization': '***'}"
    flt = SecretFilter([TOKEN])
    try:
        raise RuntimeError(f"boom {TOKEN}")
    except RuntimeError:
        import sys

        record = logging.LogRecord("httpx", logging.ERROR, "", 0, "%s", (TOKEN,), sys.exc_info())
    assert flt.filter(record)
    assert TOKEN not in record.getMessage()
    assert record.exc_text is not None
    assert TOKEN not in record.exc_text


def test_redacting_logs_covers_handlers_of_the_root_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with redacting_logs({"Authorization": TOKEN}):
        logging.getLogger("some.other.library").debug("sent %s", TOKEN)
    assert caplog.records
    assert TOKEN not in caplog.text


def test_the_example_workflow_filter_is_posted_as_cql2_json() -> None:
    from stacfetch._workflow import load_workflow

    examples = Path(__file__).resolve().parents[2] / "examples"
    spec = load_workflow(examples / "workflow.yaml")
    ing = Ingestor(**spec.ingestor_kwargs())
    filters = ing.config.filters
    assert isinstance(filters.filter, str)
    chunk = Chunk.make(ing.entries[0], Interval(None, None), filters.search_filters())
    body = build_search_request(API, chunk, 10).body
    assert body is not None
    assert body["filter-lang"] == "cql2-json"
    assert body["filter"] == {"op": "<", "args": [{"property": "eo:cloud_cover"}, 50.0]}
