"""``GET /docs``: Swagger UI served from this process, never from a CDN (works air-gapped).

FastAPI's own page loads Swagger UI from a CDN and starts it with an inline script. Here the
assets come from the installed ``fastapi-offline`` package (Swagger UI's release files, a
declared dependency, nothing copied into this repository) at ``/docs/static/<file>``, and the
start-up script is a file too (``/docs/swagger-init.js``), so the page's Content-Security-Policy
allows scripts from this origin only. Inline *styles* stay allowed: Swagger UI sets them itself.
No ReDoc page: one docs page is enough, and ReDoc's bundle compiles code at run time.
"""

import json
from pathlib import Path
from typing import Final

import fastapi_offline
from fastapi import APIRouter, Request, Response
from fastapi.openapi.docs import swagger_ui_default_parameters
from fastapi.responses import FileResponse, HTMLResponse

from gateway.errors import NotFoundError

router = APIRouter(tags=["docs"], include_in_schema=False, redirect_slashes=False)

DOCS_PATH: Final = "/docs"
STATIC_PATH: Final = f"{DOCS_PATH}/static"
INIT_SCRIPT_PATH: Final = f"{DOCS_PATH}/swagger-init.js"
_ASSETS_DIR: Final = Path(fastapi_offline.__file__).resolve().parent / "static"
#: The only files served under STATIC_PATH, with their media types.
ASSETS: Final = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}
#: Scripts and everything else from this origin only; Swagger UI needs inline styles and
#: ``data:`` images (its icons); nothing may frame the page.
CONTENT_SECURITY_POLICY: Final = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
_PAGE_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_PAGE: Final = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - Swagger UI</title>
<link rel="icon" type="image/png" href="{static}/favicon.png">
<link rel="stylesheet" href="{static}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{static}/swagger-ui-bundle.js"></script>
<script src="{init}"></script>
</body>
</html>
"""


def _root(request: Request) -> str:
    root_path = request.scope.get("root_path", "")
    return root_path.rstrip("/") if isinstance(root_path, str) else ""


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


@router.get(DOCS_PATH)
async def swagger_ui(request: Request) -> HTMLResponse:
    """The Swagger UI page, with assets and start-up script from this origin."""
    root = _root(request)
    page = _PAGE.format(
        title=_escape(request.app.title),
        static=_escape(f"{root}{STATIC_PATH}"),
        init=_escape(f"{root}{INIT_SCRIPT_PATH}"),
    )
    return HTMLResponse(page, headers=_PAGE_HEADERS)


@router.get(INIT_SCRIPT_PATH)
async def swagger_init(request: Request) -> Response:
    """Starts Swagger UI on this app's OpenAPI schema (a file, so no inline script is needed)."""
    parameters = {
        **swagger_ui_default_parameters,
        "url": f"{_root(request)}{request.app.openapi_url}",
        "validatorUrl": None,  # the default would send the schema to swagger.io
    }
    # JSON is JavaScript; "<" escaped all the same, the script never holds markup.
    config = json.dumps(parameters).replace("<", "\\u003c")
    # BaseLayout needs the API preset only (the standalone preset is a separate file).
    script = (
        f"window.ui = SwaggerUIBundle(Object.assign({config}, "
        "{presets: [SwaggerUIBundle.presets.apis]}));\n"
    )
    return Response(
        script,
        media_type="text/javascript",
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"},
    )


@router.get(f"{STATIC_PATH}/{{name}}")
async def swagger_asset(name: str) -> FileResponse:
    """One of the Swagger UI files of :data:`ASSETS`; 404 for any other name."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFoundError()
    return FileResponse(
        _ASSETS_DIR / name,
        media_type=media_type,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=3600"},
    )
