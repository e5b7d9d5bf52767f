"""``GET /``: the web page. Choose or drop files; each page shows up as it is read, with a box
over every word (coloured by confidence, labelled for screen readers) and its text beside it.

The page is plain HTML, CSS and ES modules from ``gateway/static/``, served as they are: no
build step, nothing from another origin, no inline script or style, so its
Content-Security-Policy allows this origin alone (plus ``data:`` and ``blob:`` images: the page
previews arrive as ``data:`` URLs, downloads become ``blob:`` links). The assets live under
``/static/<version>/``, where the version is a digest of their bytes: they are cached for a year
(``immutable``) and a new release changes their address, while the page itself is revalidated
on every load (``no-cache`` with an ``ETag``). The page and its assets need no API key (see
:mod:`gateway.access`); the API calls it makes carry the one the user enters.
"""

from __future__ import annotations

import functools
import hashlib
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request, Response

from gateway.errors import NotFoundError

router = APIRouter(tags=["ui"], include_in_schema=False, redirect_slashes=False)

PAGE_PATH: Final = "/"
STATIC_PATH: Final = "/static"
STATIC_DIR: Final = Path(__file__).resolve().parent.parent / "static"
#: The page's template; `{static}` and `{root}` are filled in when it is served.
PAGE_FILE: Final = "index.html"
#: The media types of the files served under STATIC_PATH, by suffix; other files are not served.
MEDIA_TYPES: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
#: This origin only, for everything: scripts and styles from files (no inline code, no `eval`),
#: images also from `data:` (the page previews) and `blob:` (the downloads); no plugins, no
#: `<base>`, no form posts elsewhere, no framing; Trusted Types on, with no policy: the page
#: never writes HTML from strings.
CONTENT_SECURITY_POLICY: Final = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    ]
)
_SECURITY_HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
#: The page: revalidated on every load (cheap: a 304 when unchanged), so a release shows at once.
PAGE_CACHE_CONTROL: Final = "no-cache"
#: An asset: its address changes with its bytes, so it never needs to be asked for again.
ASSET_CACHE_CONTROL: Final = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class Asset:
    """A file of the page, read once: its bytes, media type and entity tag."""

    body: bytes
    media_type: str
    etag: str


@dataclass(frozen=True, slots=True)
class Bundle:
    """The page's template and assets, and the version naming them in URLs."""

    version: str
    template: str
    assets: dict[str, Asset]


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@functools.cache
def bundle(directory: Path = STATIC_DIR) -> Bundle:
    """The files of `directory`, read once per process (they ship with the package)."""
    assets = {
        path.name: Asset(body, MEDIA_TYPES[path.suffix], _etag(body))
        for path in sorted(directory.iterdir())
        if path.is_file() and path.suffix in MEDIA_TYPES
        for body in (path.read_bytes(),)
    }
    digest = hashlib.sha256()
    for name, asset in assets.items():
        digest.update(name.encode() + b"\0" + asset.body + b"\0")
    template = (directory / PAGE_FILE).read_text(encoding="utf-8")
    return Bundle(digest.hexdigest()[:16], template, assets)


def _root(request: Request) -> str:
    """The path prefix the app is served under (`root_path`), without a trailing slash."""
    root_path = request.scope.get("root_path", "")
    return root_path.rstrip("/") if isinstance(root_path, str) else ""


def _answer(request: Request, asset: Asset, headers: dict[str, str]) -> Response:
    """`asset`, or 304 Not Modified when the client already holds this version of it."""
    headers = {**headers, "ETag": asset.etag}
    offered = request.headers.get("if-none-match", "")
    if asset.etag in (tag.strip().removeprefix("W/") for tag in offered.split(",")):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


@router.get(PAGE_PATH)
async def page(request: Request) -> Response:
    """The web page, its asset URLs naming the current version."""
    files = bundle()
    root = _root(request)
    body = (
        files.template.replace("{static}", html.escape(f"{root}{STATIC_PATH}/{files.version}"))
        .replace("{root}", html.escape(root))
        .encode()
    )
    headers = {
        **_SECURITY_HEADERS,
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "Cache-Control": PAGE_CACHE_CONTROL,
    }
    return _answer(request, Asset(body, "text/html; charset=utf-8", _etag(body)), headers)


@router.get(f"{STATIC_PATH}/{{version}}/{{name}}")
async def asset(request: Request, version: str, name: str) -> Response:
    """One file of the page, at the current version only; 404 for anything else."""
    files = bundle()
    found = files.assets.get(name)
    if found is None or version != files.version:
        raise NotFoundError()
    return _answer(request, found, {**_SECURITY_HEADERS, "Cache-Control": ASSET_CACHE_CONTROL})
