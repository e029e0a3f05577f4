"""The interactive docs at /docs load everything from the gateway itself: no CDN, no credential needed."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from structlog.testing import capture_logs

from consumers.stores import open_store
from gateway.app import create_app
from gateway.identities import Identities, IdentityFile, Role, new_credential
from gateway.server import serve_in_thread
from schemas.registry.service import SchemaRegistry

ABSOLUTE_URL = re.compile(r"""(?:https?:)?//[^\s"'<>)]+""", re.IGNORECASE)
CSS_URL = re.compile(r"""url\(\s*["']?([^"')]+)""")


class _References(HTMLParser):
    """Collects the scripts, stylesheets and icons an HTML page makes the browser load."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.stylesheets: list[str] = []
        self.other: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "script" and values.get("src"):
            self.scripts.append(values["src"])
        elif tag == "link" and "stylesheet" in values.get("rel", "").split():
            self.stylesheets.append(values["href"])
        elif tag == "link" and values.get("href"):
            self.other.append(values["href"])
        elif values.get("src"):
            self.other.append(values["src"])


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A served gateway (in-memory registry, SQLite store) and an integration credential for it."""
    home = tmp_path_factory.mktemp("docs")
    credential, text = new_credential("integration", Role.INTEGRATION)
    with IdentityFile(home / "identities.json").changing() as credentials:
        credentials.append(credential)
    store = open_store(f"sqlite:///{home / 'rm.sqlite'}")
    app = create_app(SchemaRegistry.in_memory(), store, Identities(home / "identities.json"))
    with capture_logs(), serve_in_thread(app) as base:
        yield base, text


def _page(base: str) -> tuple[str, _References]:
    answer = httpx.get(f"{base}/docs", timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    references = _References()
    references.feed(answer.text)
    return answer.text, references


def test_the_docs_page_references_no_url_outside_the_gateway(gateway: tuple[str, str]) -> None:
    """Every absolute URL in the /docs HTML (scripts, styles, icon, inline script) is the gateway's own."""
    base, _ = gateway
    html, references = _page(base)
    assert references.scripts, "the page loads no script: it cannot be Swagger UI"
    assert references.stylesheets, "the page loads no stylesheet"
    foreign = [url for url in ABSOLUTE_URL.findall(html) if not url.startswith(base)]
    assert foreign == [], f"/docs references URLs outside the gateway: {foreign}"
    gateway_host = urlsplit(base).netloc
    for url in references.scripts + references.stylesheets + references.other:
        assert urlsplit(urljoin(f"{base}/docs", url)).netloc == gateway_host, url


def test_every_script_stylesheet_and_icon_of_the_docs_page_answers_200_without_a_credential(
    gateway: tuple[str, str],
) -> None:
    """The page's scripts, stylesheets and favicon load from the gateway (200, not empty), no credential."""
    base, _ = gateway
    _, references = _page(base)
    with httpx.Client(timeout=30) as client:
        for url in references.scripts + references.stylesheets + references.other:
            answer = client.get(urljoin(f"{base}/docs", url))
            assert answer.status_code == 200, f"{url}: {answer.status_code}"
            assert answer.content, url
            if url in references.stylesheets:
                loads = [u for u in CSS_URL.findall(answer.text) if not u.startswith(("data:", "#"))]
                assert all(not ABSOLUTE_URL.match(u) for u in loads), f"{url} loads {loads}"
        bundle = client.get(urljoin(f"{base}/docs", references.scripts[0]))
        assert "SwaggerUIBundle" in bundle.text


def test_the_docs_page_turns_off_the_online_validator_badge(gateway: tuple[str, str]) -> None:
    """Swagger UI's default validator badge would fetch an image from validator.swagger.io; it is off."""
    base, _ = gateway
    html, _ = _page(base)
    assert '"validatorUrl": null' in html


def test_fastapi_cdn_pages_are_gone_and_the_api_still_needs_a_credential(gateway: tuple[str, str]) -> None:
    """/redoc (a CDN page) is no page (401 without a credential, 404 with one); the API still needs one."""
    base, credential = gateway
    with httpx.Client(base_url=base, timeout=30) as client:
        assert client.get("/redoc").status_code == 401
        assert client.get("/redoc", headers={"Authorization": f"Bearer {credential}"}).status_code == 404
        assert client.get("/docs/oauth2-redirect").status_code == 404
        assert client.get("/registry/subjects").status_code == 401
        authorized = client.get("/registry/subjects", headers={"Authorization": f"Bearer {credential}"})
        assert authorized.status_code == 200, authorized.text


def test_the_openapi_document_declares_the_schemes_the_authorize_button_offers(
    gateway: tuple[str, str],
) -> None:
    """The OpenAPI document (open, like the page) declares HTTP Basic and Bearer for Swagger's Authorize."""
    base, _ = gateway
    document = httpx.get(f"{base}/openapi.json", timeout=30).json()
    schemes = document["components"]["securitySchemes"]
    assert {(s["type"], s["scheme"].lower()) for s in schemes.values()} == {
        ("http", "basic"),
        ("http", "bearer"),
    }


def test_swagger_ui_renders_and_tries_an_operation_with_the_credential_in_chromium(
    gateway: tuple[str, str], tmp_path: Path
) -> None:
    """In Debian's chromium the page lists the operations, takes the credential through Authorize and
    gets 200 from GET /registry/subjects with it, with no request to anywhere but the gateway."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium to run this check)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    base, credential = gateway
    outside: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on(
                "request",
                lambda request: None if request.url.startswith(base) else outside.append(request.url),
            )
            page.goto(f"{base}/docs")
            page.wait_for_selector(".opblock", timeout=30_000)
            paths = page.locator(".opblock-summary-path").all_inner_texts()
            page.locator("button.authorize").first.click()
            bearer = page.locator(".auth-container").filter(has_text="(http, Bearer)")
            bearer.locator("input").fill(credential)
            bearer.locator("button.authorize").click()
            page.locator("button.btn-done").first.click()
            operation = page.locator("#operations-schema_registry-subjects_registry_subjects_get")
            operation.locator(".opblock-summary").click()
            operation.locator("button.try-out__btn").click()
            operation.locator("button.execute").click()
            status = operation.locator(".live-responses-table tbody .response-col_status").first
            status.wait_for(timeout=30_000)
            answered = status.inner_text().strip()
            page.screenshot(path=str(tmp_path / "docs.png"), full_page=True)
        finally:
            browser.close()
    assert any(path.startswith("/registry/subjects") for path in paths), paths
    assert answered == "200", answered
    assert outside == [], f"the page requested URLs outside the gateway: {outside}"
