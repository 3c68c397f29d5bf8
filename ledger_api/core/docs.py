"""`/docs`: Swagger UI served from this service, under a strict Content-Security-Policy.

People paste API keys into this page, so it loads nothing from elsewhere: FastAPI's default
page pulls Swagger UI's script from a CDN without integrity, and whoever controls that
copy controls the keys typed here. The script and stylesheet come from the
`fastapi-offline` package (pinned in constraints.txt; Swagger UI 5.32.6), mounted under
`/docs/assets/`. The page's one inline script (FastAPI's init call) is allowed by its
SHA-256 hash, computed here from the exact bytes served; nothing else may run. The online
validator badge (an image from validator.swagger.io) is turned off. ReDoc is not served.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
ASSETS_URL = "/docs/assets"


def _csp(page: bytes) -> str:
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in re.findall(rb"<script>(.*?)</script>", page, re.DOTALL)
    )
    return (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def install(app: FastAPI) -> None:
    """Serve the Swagger UI page at /docs and its assets (create the app with docs_url=None
    and redoc_url=None)."""
    assert app.openapi_url is not None
    page = get_swagger_ui_html(
        openapi_url=app.openapi_url,
        title=f"{app.title} - API",
        swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
        oauth2_redirect_url=None,
        swagger_ui_parameters={"validatorUrl": None},
    ).body
    assert isinstance(page, bytes)
    headers = {
        "Content-Security-Policy": _csp(page),
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(page, headers=headers)
