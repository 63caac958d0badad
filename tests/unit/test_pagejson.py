"""Page bytes -> Arrow without Python dicts (``_formats.pagejson``) equals the orjson path.

Every page here is decoded both ways: by :func:`page_to_arrow` and by orjson +
:func:`items_to_arrow` (what the decoder did before). Where the fast path answers, its table
must be the same table, field metadata included, and its per-item values and page head the
same values; where it declines (None), the decoder falls back, so only equality is asserted.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import sys
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stacfetch._engine.decoder import decode_page
from stacfetch._formats.arrow import items_to_arrow
from stacfetch._formats.pagejson import page_to_arrow

DATA = Path(__file__).resolve().parents[1] / "data" / "real-stac"
PAGES = [p for p in sorted(DATA.glob("*.json")) if "features" in json.loads(p.read_text())]


def slow(content: bytes, collection: str | None) -> tuple[dict[str, Any], list[Any], pa.Table]:
    page = orjson.loads(content)
    features = [f for f in page.pop("features") if isinstance(f, dict)]
    for feature in features:
        if collection and not feature.get("collection"):
            feature["collection"] = collection
    return page, features, items_to_arrow(features)


def _nan_free(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dict):
        return {k: _nan_free(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_free(v) for v in value]
    return value


def tables_equal(a: pa.Table, b: pa.Table) -> bool:
    """Same schema (metadata included) and values, NaN equal to NaN (bbox fillers)."""
    if not a.schema.equals(b.schema, check_metadata=True):
        return False
    return all(
        _nan_free(a.column(i).to_pylist()) == _nan_free(b.column(i).to_pylist())
        for i in range(a.num_columns)
    )


def same(content: bytes, collection: str | None = None) -> bool:
    """Assert the fast path equals the slow one where it answers; whether it answered."""
    fast = page_to_arrow(content, collection)
    head, features, table = slow(content, collection)
    if fast is None:
        return False
    assert fast.head == head
    assert fast.table.schema.equals(table.schema, check_metadata=True), (
        fast.table.schema,
        table.schema,
    )
    assert tables_equal(fast.table, table)
    for small, feature in zip(fast.items, features, strict=True):
        for key in ("id", "collection", "bbox", "geometry"):
            assert small.get(key) == feature.get(key), key
        props = feature.get("properties")
        if isinstance(props, dict):
            # a null datetime reads as a missing one (the engine reads both as None)
            wanted = {
                k: props[k]
                for k in ("datetime", "start_datetime", "end_datetime")
                if props.get(k) is not None
            }
            assert small["properties"] == wanted
    return True


def page(features: list[Any], **extra: Any) -> bytes:
    return orjson.dumps({"type": "FeatureCollection", "features": features, **extra})


def feature(n: int, **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": f"i{n}",
        "geometry": {"type": "Point", "coordinates": [n, 1.5]},
        "bbox": [n, 1.5, n, 1.5],
        "collection": "c",
        "properties": {"datetime": f"2024-01-{n % 28 + 1:02d}T00:00:00Z", **props},
        "links": [{"rel": "self", "href": f"https://x/{n}"}],
        "assets": {"data": {"href": f"https://x/{n}.tif", "roles": ["data"]}},
    }


def test_real_pages_take_the_fast_path_and_equal_the_orjson_path() -> None:
    declined = {path.name for path in PAGES if not same(path.read_bytes(), "filled-in")}
    # the fast path takes every real page with items, but those with proj:geometry (WKB)
    expected = {
        path.name
        for path in PAGES
        if not json.loads(path.read_text())["features"] or b"proj:geometry" in path.read_bytes()
    }
    assert declined == expected
    assert len(PAGES) - len(declined) >= 12


def test_mixed_collections_of_the_benchmark_take_the_fast_path() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    try:
        from bench_fetch import _item_factory
    finally:
        sys.path.pop(0)
    make = _item_factory()
    features = [make(n, 0) for n in range(300)]  # Sentinel-2 and Landsat shapes, ranges
    keys = {k for f in features for k in f["properties"]}
    assert {"gsd", "s2:tile_id", "start_datetime"} <= keys  # heterogeneous
    assert same(page(features, links=[], numberReturned=300))


@pytest.mark.parametrize(
    ("later", "answers"),
    [
        ({"new": 1}, True),  # a property first seen after the sample
        ({"gsd": 1.5}, True),  # a float where the sample had ints: read again, inferred
        ({"gsd": "ten"}, False),  # a string where numbers were: JSON text (orjson path)
        ({"s2:generation_time": "2024-01-01T00:00:00"}, True),  # inferred as timestamp
        ({"nested": {"a": [1, 2], "b": {"c": None}}}, True),
        ({"proj:geometry": {"type": "Point", "coordinates": [0, 0]}}, False),
        ({"updated": "2024-01-01 00:00:00+01:00"}, True),
    ],
)
def test_values_first_seen_after_the_sample(later: dict[str, Any], answers: bool) -> None:
    features = [feature(n, gsd=10) for n in range(20)]
    features[15]["properties"].update(later)
    assert same(page(features)) is answers


def test_shapes_the_fast_path_keeps_or_leaves() -> None:
    base = [feature(n) for n in range(12)]
    no_collection = [{**f, "collection": None} for f in base]
    assert same(page(no_collection), "filled")
    assert same(page([{**f, "collection": ""} for f in base]), "filled")
    missing = [{k: v for k, v in f.items() if k != "collection"} for f in base]
    assert same(page(missing), "filled")
    range_items = [feature(n) for n in range(12)]
    for f in range_items[5:]:
        f["properties"].update(datetime=None, start_datetime="2020-01-01T00:00:00Z")
    assert same(page(range_items))
    extra_top = [{**f, "description": "d"} if n > 9 else f for n, f in enumerate(base)]
    assert same(page(extra_top))
    three_d = [{**f, "bbox": [0, 1, 2, 3, 4, 5]} if n == 11 else f for n, f in enumerate(base)]
    assert same(page(three_d))
    no_props = [{**f, "properties": None} if n == 3 else f for n, f in enumerate(base)]
    assert same(page(no_props))
    polygons = [
        {
            **f,
            "geometry": {
                "type": "MultiPolygon",
                "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]]],
            },
        }
        if n % 2
        else f
        for n, f in enumerate(base)
    ]
    assert same(page(polygons))
    # declined: the orjson path decides (and the decoder falls back to it)
    assert page_to_arrow(page([1, *base]), None) is None  # a feature that is not an object
    assert page_to_arrow(page([]), None) is None
    assert page_to_arrow(b'{"features": [{"id": "a", "id": "b"}]}', None) is None
    assert page_to_arrow(b'{"features": [{"id": "\\ud800"}]}', None) is None
    assert page_to_arrow(b"[]", None) is None
    collide = [feature(n, id="p") for n in range(3)]  # a property named like a column
    assert same(page(collide)) is False
    bad_geometry = [{**f, "geometry": {"type": "Nope"}} for f in base]
    assert same(page(bad_geometry)) is False


def test_the_decoder_uses_it_and_falls_back() -> None:
    body = page([feature(n) for n in range(5)], links=[])
    decoded = decode_page(body, None)
    assert decoded.table is not None
    assert tables_equal(decoded.table, slow(body, None)[2])
    assert decoded.stubs is not None
    assert [s["id"] for s in decoded.stubs] == [f"i{n}" for n in range(5)]
    mixed = page([feature(0, gsd=1), feature(1, gsd="x")])
    decoded = decode_page(mixed, None)  # JSON-text column: the orjson path
    assert decoded.table is not None
    assert tables_equal(decoded.table, slow(mixed, None)[2])


_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4)
    | st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01", "2024-01-01T00:00:00.5Z"])
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3)
    ),
    max_leaves=6,
)


def test_random_properties_equal_the_orjson_path() -> None:
    answered: list[bool] = []

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.lists(
            st.dictionaries(
                st.sampled_from(["gsd", "datetime", "created", "a", "b:c", "links_like"]),
                _VALUES,
                max_size=4,
            ),
            min_size=1,
            max_size=14,
        )
    )
    def check(properties: list[dict[str, Any]]) -> None:
        features = [{**feature(n), "properties": p} for n, p in enumerate(properties)]
        answered.append(same(page(features)))

    check()
    # equal wherever the fast path answers, and it answers for a real share of the examples
    # (a fast path declining everything would pass the equality alone). Most of these random
    # shapes mix types in a column (JSON text: the orjson path); 20-32 % answered here.
    assert sum(answered) >= len(answered) // 10, f"{sum(answered)} of {len(answered)}"


def test_one_parser_per_thread_serves_pages_of_any_size_in_turn() -> None:
    # the parser is reused: a small page after a large one, and the large one again, decode
    # as a fresh parser would; two threads decode at once, each with its own parser
    big = page([feature(n, gsd=float(n)) for n in range(400)])
    small = page([feature(0, a="x")])
    assert all(same(body) for body in (big, small, big, small))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        assert all(pool.map(same, [big, small, big, small, big, small]))


def test_integers_beyond_64_bits_are_declined() -> None:
    # the reader would read them as doubles; pa.array refuses them (the orjson path keeps
    # them as JSON text): the page is not for the fast path
    features = [feature(n, size=2**40) for n in range(12)]
    features[10]["properties"]["size"] = 123454321
    body = page(features).replace(b"123454321", str(2**64 + 1).encode())
    assert page_to_arrow(body, None) is None
    nested = [feature(n) for n in range(12)]
    nested[3]["assets"]["data"]["file:size"] = 123454321
    body = page(nested).replace(b"123454321", str(-(2**63) - 10).encode())
    assert page_to_arrow(body, None) is None
    assert same(page([feature(n, size=2**62) for n in range(12)]))  # int64 still fits
    # pa.array refuses an int a double cannot hold among doubles (JSON text): declined too
    widened = [feature(n, size=2**53 + 1) for n in range(12)]
    widened[0]["properties"]["size"] = 0.5
    assert page_to_arrow(page(widened), None) is None
    exact = [{**feature(n), "bbox": [0.5, 1, 2**53, 2]} for n in range(12)]
    assert same(page(exact))  # 2**53 is held exactly: kept


def test_head_false_leaves_the_head_out_and_the_table_the_same() -> None:
    body = page([feature(n, gsd=10) for n in range(20)], links=[{"rel": "self", "href": "x"}])
    full, bare = page_to_arrow(body, "c"), page_to_arrow(body, "c", head=False)
    assert full is not None
    assert bare is not None
    assert full.head == {"type": "FeatureCollection", "links": [{"rel": "self", "href": "x"}]}
    assert bare.head == {}
    assert tables_equal(full.table, bare.table)
    assert full.items == bare.items


def test_geometries_taken_out_must_be_each_features_own() -> None:
    base = [feature(n) for n in range(12)]
    # features without geometry (a `fields` search) and null ones
    sparse = [{k: v for k, v in f.items() if k != "geometry" or n % 3} for n, f in enumerate(base)]
    sparse[4]["geometry"] = None
    assert same(page(sparse))
    # a "geometry" key inside properties: taken for one, it fails the order check
    inner = [feature(n) for n in range(12)]
    inner[5]["properties"]["geometry"] = {"type": "Point", "coordinates": [0, 0]}
    assert same(page(inner)) is False
    # ... also where its feature has none of its own
    del inner[5]["geometry"]
    assert same(page(inner)) is False
    # a GeometryCollection (nested objects) stays in the text: the read declines
    collection = [feature(n) for n in range(12)]
    collection[7]["geometry"] = {"type": "GeometryCollection", "geometries": [base[0]["geometry"]]}
    assert same(page(collection)) is False
    # proj:geometry past the first items is seen after the read
    late = [feature(n) for n in range(600)]
    late[599]["properties"]["proj:geometry"] = {"type": "Point", "coordinates": [0, 0]}
    assert len(page(late)) > 1 << 17
    assert same(page(late)) is False


def test_page_head_reads_links_and_counts_objects() -> None:
    from stacfetch._formats.pagejson import PageHead, page_head

    body = page([feature(0), 3, feature(1)], links=[], numberMatched=7)
    assert page_head(body) == PageHead(
        {"type": "FeatureCollection", "links": [], "numberMatched": 7}, 2
    )
    assert page_head(b'{"links": [], "links": []}') is None  # duplicate keys: orjson decides
    assert page_head(b"not json") is None
    assert page_head(b'{"type": "Catalog"}') == PageHead({"type": "Catalog"}, None)
