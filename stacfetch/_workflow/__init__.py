"""Workflow files: a ``strategy.matrix`` plus the Ingest Module's config, in YAML or JSON.

A workflow file describes one run: which matrix entries (collection / catalog pairs) to fetch,
with which :class:`~stacfetch.IngestConfig`, and where the result goes. ``stacfetch run FILE``
runs it; :func:`load_workflow` reads it for ``Ingestor.from_config``.

Layout (JSON has the same structure)::

    name: alps-june-2024                  # optional, for people (also: description, version)
    catalog_url: https://earth-search.aws.element84.com/v1   # default API for every entry

    strategy:
      matrix:                             # one pipeline per entry, all run in parallel
        - collection_id: sentinel-2-l2a
        - collection_id: landsat-c2-l2
          catalog_url: https://...        # an entry may name its own API

    ingest:                               # the seed's IngestConfig (this section may be
      concurrency:                        #   spelled ``config:`` too, see below)
        workers: 16                       # or simply ``concurrency: 16``
        chunk_size: 2000
      limit: 1000                         # page size asked of the server
      max_items: null
      retry: {max_retries: 5, timeout: 120}
      filters:
        bbox: [5.9, 45.8, 10.5, 47.8]
        datetime: 2024-06                 # anything stacfetch.parse_datetime accepts

    output: alps-june-2024.parquet        # optional: write GeoParquet there
    progress: auto                        # auto | bars | widgets | true | false
    headers:                              # optional HTTP headers for every request
      Authorization: Bearer ${STAC_TOKEN}

Spellings accepted, because the seed leaves them open:

* the config section is ``ingest:`` or ``config:`` (the seed speaks of the module's
  "config"); giving both is an error;
* STAC Manager's step list works too: ``steps: [{id: ingest, module: IngestModule,
  config: {...}}]`` with exactly one ``IngestModule`` step (stacfetch runs the Ingest step only;
  other modules are rejected rather than silently skipped);
* ``strategy.matrix`` is a list of entries (mappings with ``collection_id``, ``catalog_url``
  and/or ``source_file``; a bare string is a ``collection_id``), or a GitHub-Actions-style
  mapping of lists, expanded to every combination:
  ``matrix: {collection_id: [a, b], catalog_url: [https://x]}``;
* without a matrix, ``ingest.collection_id``, ``ingest.filters.collections`` or
  ``ingest.source_file`` names the target (the seed's "Config > Context" priority:
  ``ingest.collection_id`` also overrides the matrix entries' collection).

``${VAR}`` and ``${VAR:-default}`` in string values are replaced from the environment (a
missing variable without a default is an error naming it). Relative paths (``output``,
``source_file``) are relative to the workflow file's folder, so a file runs the same from
anywhere; for a dict they stay as given (relative to the current directory).

Everything is validated on load: unknown keys, wrong types, bad filters and a missing target
raise :class:`~stacfetch.ConfigurationError` naming the file and the key; no request is sent.

The package: :mod:`.reader` parses the file and substitutes ``${VAR}``, :mod:`.sections`
validates each section (targets by the rules of :mod:`stacfetch._model.entries`),
:mod:`.spec` holds the result and :mod:`.load` ties them together.
"""

from __future__ import annotations

from .load import load_workflow
from .sections import ENTRY_KEYS, TOP_KEYS
from .spec import WorkflowSpec

__all__ = ["ENTRY_KEYS", "TOP_KEYS", "WorkflowSpec", "load_workflow"]
