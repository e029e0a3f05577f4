"""The interactive API docs (Swagger UI at ``/docs``), served whole by the gateway, with no CDN.

FastAPI's own ``/docs`` page loads Swagger UI's script and stylesheet from a CDN, which a gateway inside a
government network cannot reach; the app is built with ``docs_url=None`` and this module serves the page
instead, with Swagger UI's files (its bundle, stylesheet and favicon, shipped as package data by
``fastapi-offline``) from ``/docs/assets``. The page and its assets need no
credential (a browser cannot attach one to the loads of a page's assets); the page's Authorize button
takes the credential (HTTP Basic or Bearer ``KEY:SECRET``, the OpenAPI document's security schemes) and
Swagger UI sends it with each request tried from the page. No OAuth2 redirect page is served: the
gateway declares no OAuth2 scheme, so Swagger UI never redirects.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
SWAGGER_JS = "swagger-ui-bundle.js"
SWAGGER_CSS = "swagger-ui.css"
FAVICON = "favicon.png"
SWAGGER_UI_PARAMETERS = {
    # Swagger UI's default validator badge loads an image from validator.swagger.io: off, nothing leaves.
    "validatorUrl": None,
    # The credential lives in the page's memory only, never in the browser's storage.
    "persistAuthorization": False,
}


def assets_directory() -> Path:
    """The directory of Swagger UI's files inside the installed ``fastapi-offline`` package."""
    return Path(str(files("fastapi_offline") / "static"))


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI at ``/docs`` and its files under ``/docs/assets``.

    ``app`` must have been built with ``docs_url=None`` (and ``redoc_url=None``), so FastAPI adds no page
    that loads from a CDN.
    """
    if app.docs_url is not None:
        raise ValueError(f"build the app with docs_url=None; it serves its own page at {app.docs_url}")
    app.mount(ASSETS_URL, StaticFiles(directory=assets_directory()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    title = f"{app.title} - API docs"

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=title,
            oauth2_redirect_url=None,
            swagger_js_url=f"{root}{ASSETS_URL}/{SWAGGER_JS}",
            swagger_css_url=f"{root}{ASSETS_URL}/{SWAGGER_CSS}",
            swagger_favicon_url=f"{root}{ASSETS_URL}/{FAVICON}",
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )
