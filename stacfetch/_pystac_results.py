"""What an Ingestor gives the pystac world: item dicts, :class:`pystac.Item` s and an
``ItemCollection``, as pystac-client's ``ItemSearch`` does (``items_as_dicts()``, ``items()``,
``item_collection()``), for odc-stac and stackstac."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._formats.results import to_pystac_items
from ._run.collect import collect, result_dicts
from ._run.run import Run
from ._run.sync import run_sync

if TYPE_CHECKING:
    import pystac

__all__ = ["PystacResults"]


class PystacResults:
    """The pystac-client style results of an :class:`~stacfetch.Ingestor` (a base class of it).

    They fetch like ``ingest()`` unless the Ingestor has already run (then they give back what
    was fetched, retries included).

    Example:
        >>> from stacfetch import Ingestor
        >>> issubclass(Ingestor, PystacResults)
        True
    """

    run: Run

    def make_renderer(self) -> Any:
        """The progress display of one run (None: no progress shown)."""
        return None

    async def aitems_as_dicts(self) -> list[dict[str, Any]]:
        """Async twin of :meth:`items_as_dicts`.

        Example::

            dicts = await Ingestor(url, collections=["c1"], ids=["a", "b"]).aitems_as_dicts()
        """
        if not self.run.collected:
            await collect(self.run, self.run.tasks(), self.make_renderer())
        return result_dicts(self.run)

    def items_as_dicts(self) -> list[dict[str, Any]]:
        """Every item as a STAC item dict (pystac-client's ``ItemSearch.items_as_dicts()``).

        Fetches like :meth:`ingest` unless this Ingestor has already run (then it gives back
        what was fetched, retries included). In ``sortby`` order when one was given; the
        values are those of the GeoDataFrame's Arrow table (datetimes as RFC 3339 in UTC,
        integer fields as ``int``).

        Example::

            dicts = Ingestor(url, collections=["sentinel-2-l2a"], bbox=bbox,
                             datetime="2024-06", sortby="-eo:cloud_cover").items_as_dicts()
        """
        if not self.run.collected:
            renderer = self.make_renderer()
            run_sync(lambda: collect(self.run, self.run.tasks(), renderer))
        return result_dicts(self.run)

    def items(self) -> list[pystac.Item]:
        """Every item as a :class:`pystac.Item` (pystac-client's ``ItemSearch.items()``, as a
        list): ready for ``odc.stac.load(items, ...)`` and ``stackstac.stack(items, ...)``.

        Example::

            items = Ingestor(url, collections=["sentinel-2-l2a"], bbox=bbox,
                             datetime="2024-06").items()
            xx = odc.stac.load(items, bands=["B04"], chunks={})
        """
        return to_pystac_items(self.items_as_dicts())

    async def aitems(self) -> list[pystac.Item]:
        """Async twin of :meth:`items`.

        Example::

            items = await Ingestor(url, collections=["c1"]).aitems()
        """
        return to_pystac_items(await self.aitems_as_dicts())

    def item_collection(self) -> pystac.ItemCollection:
        """Every item in a :class:`pystac.ItemCollection` (pystac-client's
        ``ItemSearch.item_collection()``).

        Example::

            ic = Ingestor(url, collections=["c1"]).item_collection()
            ic.save_object("items.json")
        """
        import pystac

        return pystac.ItemCollection(self.items())

    async def aitem_collection(self) -> pystac.ItemCollection:
        """Async twin of :meth:`item_collection`.

        Example::

            ic = await Ingestor(url, collections=["c1"]).aitem_collection()
        """
        import pystac

        return pystac.ItemCollection(await self.aitems())
