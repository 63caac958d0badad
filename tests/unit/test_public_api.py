"""The facade: a sorted ``__all__`` whose names all exist and are documented with an example."""

from __future__ import annotations

import inspect

import pytest

import stacfetch

PUBLIC = [n for n in stacfetch.__all__ if n != "__version__"]


def test_all_is_sorted_and_complete() -> None:
    assert stacfetch.__all__ == sorted(stacfetch.__all__)
    for name in stacfetch.__all__:
        assert hasattr(stacfetch, name), name
    for name in (
        "Ingestor",
        "ingest",
        "aingest",
        "IngestModule",
        "RequestSplitter",
        "temporal_split_search",
        "FailureCollector",
        "ConfigurationError",
        "IngestConfig",
        "IngestFilters",
        "WorkflowContext",
        "SearchRejectedError",
        "geodataframe_to_items",
        "geodataframe_to_dicts",
    ):
        assert name in stacfetch.__all__


@pytest.mark.parametrize("name", PUBLIC)
def test_public_names_have_docstrings_with_an_example(name: str) -> None:
    obj = getattr(stacfetch, name)
    doc = inspect.getdoc(obj) or ""
    assert doc.strip(), f"{name} has no docstring"
    if (
        inspect.isclass(obj)
        and issubclass(obj, BaseException)
        and name
        not in (
            "StacfetchError",
            "ConfigurationError",
            "SourceError",
            "StacApiError",
            "FetchError",
            "SearchRejectedError",
        )
    ):
        return  # leaf exceptions: one line says it all
    assert "Example" in doc, f"{name}'s docstring has no example"


def test_ingestor_has_pystac_results() -> None:
    for name in ("items", "items_as_dicts", "item_collection", "aitems", "aitems_as_dicts"):
        method = getattr(stacfetch.Ingestor, name)
        assert "Example" in (inspect.getdoc(method) or ""), name
