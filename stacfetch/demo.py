"""An offline demo: a local STAC API seeded with the sample items shipped in the package.

Example:
    >>> from stacfetch.demo import DEMO_COLLECTIONS, demo_items
    >>> DEMO_COLLECTIONS
    ('sentinel-2-l2a', 'landsat-c2-l2')
    >>> len(demo_items()) > 3000
    True
"""

from stacfetch._testing.demo import DEMO_COLLECTIONS, DemoServer, demo_items, demo_server

__all__ = ["DEMO_COLLECTIONS", "DemoServer", "demo_items", "demo_server"]
