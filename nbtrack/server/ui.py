"""The web UI's pages and static files: a shell page and the ES modules it loads, never any data.

    GET /                                     the shell (index.html); the UI routes by the path
    GET /{entity}/{project}                   the same shell: a project's runs
    GET /{entity}/{project}/runs/{run}        the same shell: a run
    GET /{entity}/{project}/compare           the same shell: runs side by side
    GET /{entity}/{project}/artifacts/all     the same shell: a project's artifacts
    GET /{entity}/{project}/artifacts/{type}/{collection}[/{version}]   the same shell: a version
    GET /static/{path}                        a file under nbtrack/web/ (ui/, shared/, widget/)

No key is needed: the shell holds no data, and the UI reads everything through /graphql with
the key it asks the user for. Every answer carries a strict Content-Security-Policy, so a value
a run logged can never run as script in the page, and `Cache-Control: no-cache` with an ETag, so
an upgraded server's front-end is seen at once and an unchanged one costs a 304.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nbtrack.server.errors import ApiError

__all__ = ["SECURITY_HEADERS", "STATIC_ROOT", "ui_routes"]

# The front-end's files, as they are: URLs mirror the folder, so the modules' relative imports
# (ui/format.js's "../shared/chart.js") resolve over HTTP as they do on disk.
STATIC_ROOT = Path(__file__).resolve().parent.parent / "web"
_SHELL = "ui/index.html"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# Only these kinds are served: with nosniff, a browser runs a module only under a script type.
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}
_PAGE_METHODS = ("GET", "HEAD")
# Every method reaches the handlers, which answer anything but GET and HEAD with a 404.
_ANY_METHOD = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


async def _page(request: Request) -> Response:
    _check_method(request)
    return _file(request, STATIC_ROOT / _SHELL, "the web UI is not installed with this server")


async def _static(request: Request) -> Response:
    _check_method(request)
    name = request.path_params["path"]
    return _file(request, _static_path(name), f"there is no static file {name[:100]!r}")


def _check_method(request: Request) -> None:
    # A page path asked with POST or PUT is no page: "nothing is served here", like any unknown path
    # (a 405 would tell an API client that got its path wrong that the path exists).
    if request.method not in _PAGE_METHODS:
        raise ApiError("NOT_FOUND", f"nothing is served at {request.url.path}")


def _static_path(name: str) -> Path:
    """The file under STATIC_ROOT that name means; NOT_FOUND for anything that would leave it."""
    parts = name.split("/")
    if "\0" in name or "\\" in name or any(part in ("", ".", "..") for part in parts):
        raise ApiError("NOT_FOUND", f"there is no static file {name[:100]!r}")
    root = STATIC_ROOT.resolve()
    path = (root / name).resolve()
    # Resolved, so a symbolic link inside the folder cannot lead out of it either.
    if not path.is_relative_to(root):
        raise ApiError("NOT_FOUND", f"there is no static file {name[:100]!r}")
    return path


def _file(request: Request, path: Path, missing: str) -> Response:
    media_type = _TYPES.get(path.suffix.lower())
    try:
        stat = path.stat() if media_type is not None else None
    except OSError:
        stat = None
    if stat is None or not path.is_file():
        raise ApiError("NOT_FOUND", missing)
    etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache", "ETag": etag}
    if etag in _etags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    # The UI's files are small (tens of kB): read whole, no file handle held across awaits.
    return Response(path.read_bytes(), media_type=media_type, headers=headers)


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def ui_routes() -> list[Route]:
    """The UI's routes; they go after the API's, whose paths never collide with them."""
    return [
        Route("/", _page, methods=_ANY_METHOD),
        Route("/static/{path:path}", _static, methods=_ANY_METHOD),
        Route("/{entity}/{project}", _page, methods=_ANY_METHOD),
        Route("/{entity}/{project}/runs/{run}", _page, methods=_ANY_METHOD),
        Route("/{entity}/{project}/compare", _page, methods=_ANY_METHOD),
        Route("/{entity}/{project}/artifacts/all", _page, methods=_ANY_METHOD),
        Route("/{entity}/{project}/artifacts/{type}/{collection}", _page, methods=_ANY_METHOD),
        Route("/{entity}/{project}/artifacts/{type}/{collection}/{version}", _page, methods=_ANY_METHOD),
    ]
