"""The web page: ``/`` (and ``/ui``) return it, ``/static/{name}`` its script and style.

Only the files listed in ``STATIC`` are served (no directory listing, no path from the request
reaches the file system). The page itself only calls the public JSON API.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from lookalike.errors import NotFound

router = APIRouter(include_in_schema=False)

STATIC = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}


@cache
def web_file(name: str) -> bytes:
    """A file of the ``lookalike.web`` package data, read once per process."""
    return files("lookalike.web").joinpath(name).read_bytes()


@router.get("/", response_class=HTMLResponse)
@router.get("/ui", response_class=HTMLResponse)
def page() -> HTMLResponse:
    """The merchandisers' page."""
    return HTMLResponse(web_file("index.html"), headers={"Cache-Control": "no-cache"})


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The page's script or style sheet."""
    if name not in STATIC:
        raise NotFound(f"no static file {name}", name=name)
    return Response(web_file(name), media_type=STATIC[name], headers={"Cache-Control": "no-cache"})
