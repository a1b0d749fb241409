"""The pages' browser library (uPlot, for the charts), served by the ledger itself.

The pages must work offline, so nothing comes from a CDN: ``addon/fetch_web_assets.py`` puts the
pinned, integrity-checked files in ``web/vendor/`` (package data, not in git) and this module
serves the ones named in FILES, and nothing else from that folder. Their address carries a hash
of their content (``?v=``), so a browser may keep them for a year and still fetches the new files
the day the pin changes. Without them (a checkout where the script has not run) a page still
works: its tables carry every number, only the drawing is missing.
"""

from __future__ import annotations

import hashlib
import logging
from functools import cache
from importlib import resources
from typing import Final

from aiohttp import web

_LOGGER = logging.getLogger(__name__)
#: The files a page may load, with their content types.
FILES: Final = {"uPlot.iife.min.js": "text/javascript", "uPlot.min.css": "text/css"}
#: A year: the address changes with the content (``version``).
CACHE_CONTROL: Final = "public, max-age=31536000, immutable"
_FOLDER = resources.files("prepaid_ledger.web").joinpath("vendor")


@cache
def _body(name: str) -> bytes | None:
    """Return one of FILES as packaged, or None when it was never fetched (said once)."""
    path = _FOLDER.joinpath(name)
    if not path.is_file():
        _LOGGER.warning(
            "web/vendor/%s is missing (run addon/fetch_web_assets.py): the pages show their "
            "numbers without charts",
            name,
        )
        return None
    return path.read_bytes()


@cache
def version() -> str:
    """Return a short hash of the files' content, for their addresses (``?v=``)."""
    digest = hashlib.sha256()
    for name in sorted(FILES):
        digest.update(_body(name) or b"")
    return digest.hexdigest()[:12]


async def serve(request: web.Request) -> web.Response:
    """Serve one of FILES; 404 for any other name (the folder's stamp files, paths, typos)."""
    name = request.match_info["name"]
    body = _body(name) if name in FILES else None
    if body is None:
        raise web.HTTPNotFound(text="no such asset")
    return web.Response(
        body=body,
        content_type=FILES[name],
        charset="utf-8",
        headers={"Cache-Control": CACHE_CONTROL},
    )
