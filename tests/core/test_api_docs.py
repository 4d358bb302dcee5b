"""The OpenAPI schema validates with no warnings and the docs pages work offline: nothing they
reference, nor any stylesheet of ours they load, lives on another host, and their
Content-Security-Policy lets the browser load from this host only."""

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_schema_generates_without_warnings(tmp_path):
    target = tmp_path / "openapi.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    assert "openapi: 3" in target.read_text()


def test_schema_is_served_and_documents_the_error_shape(anon_client):
    response = anon_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    assert "ErrorResponse" in schema["components"]["schemas"]
    login = schema["paths"]["/api/v1/auth/login/"]["post"]
    assert "requestBody" in login
    assert login["responses"]["401"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorResponse"
    }


DOCS_PAGES = ["/api/docs/", "/api/redoc/"]
_CSS_URL = re.compile(r"""url\(\s*(['"]?)(.*?)\1\s*\)|@import\s+(['"])(.*?)\3""", re.IGNORECASE)


class _References(HTMLParser):
    """Every URL a page makes the browser load or go to: src/href/srcset/poster/data attributes,
    and url(...) / @import in <style> blocks and style attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is None:
                continue
            if name in ("src", "href", "action", "poster", "data", "formaction"):
                self.urls.append(value)
            elif name == "srcset":
                self.urls += [candidate.split()[0] for candidate in value.split(",") if candidate.strip()]
            elif name == "style":
                self.urls += css_urls(value)
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.urls += css_urls(data)


def css_urls(css: str) -> list[str]:
    return [match.group(2) or match.group(4) for match in _CSS_URL.finditer(css)]


def page_references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    return parser.urls


def is_same_host(url: str) -> bool:
    """Relative, or absolute on this server (the test client's host); data: URLs carry their content."""
    parts = urlsplit(url.strip())
    if parts.scheme == "data":
        return True
    return parts.scheme in ("", "http", "https") and parts.netloc in ("", "testserver")


def test_the_reference_finder_sees_outside_hosts():
    # the parser and the check below catch every kind of reference the docs pages could carry
    html = """<html><head>
      <link rel="stylesheet" href="https://fonts.googleapis.com/css2?family=Roboto">
      <style>body { background: url("//cdn.example/bg.png") } @import 'https://cdn.example/x.css';</style>
      </head><body><img src="https://cdn.redoc.ly/redoc/logo-mini.svg" srcset="/a.png 1x, https://cdn.example/b.png 2x">
      <div style="background-image:url(http://cdn.example/c.png)"></div>
      <script src="/static/ours.js"></script><a href="/api/schema/">schema</a></body></html>"""

    outside = [url for url in page_references(html) if not is_same_host(url)]

    assert outside == [
        "https://fonts.googleapis.com/css2?family=Roboto",
        "//cdn.example/bg.png",
        "https://cdn.example/x.css",
        "https://cdn.redoc.ly/redoc/logo-mini.svg",
        "https://cdn.example/b.png",
        "http://cdn.example/c.png",
    ]


@pytest.mark.parametrize("path", DOCS_PAGES)
def test_docs_pages_reference_nothing_on_another_host(anon_client, path):
    response = anon_client.get(path)

    assert response.status_code == 200
    page = response.content.decode()
    references = page_references(page)
    # the viewer's scripts are served from here (drf-spectacular-sidecar)
    assert any(url.startswith("/static/drf_spectacular_sidecar/") for url in references)
    assert [url for url in references if not is_same_host(url)] == []
    # and no font service or CDN is named anywhere in the page, inline scripts included
    for host in ("fonts.googleapis.com", "fonts.gstatic.com", "cdn.jsdelivr.net", "unpkg.com", "cdn.redoc.ly"):
        assert host not in page


@pytest.mark.parametrize("path", DOCS_PAGES)
def test_every_asset_the_docs_pages_load_is_served_here_and_its_styles_stay_here(anon_client, path):
    page = anon_client.get(path).content.decode()
    assets = [url for url in page_references(page) if url.startswith("/static/")]

    assert assets
    for asset in assets:
        response = anon_client.get(asset)
        assert response.status_code == 200, asset
        if asset.endswith(".css"):
            body = b"".join(response.streaming_content) if response.streaming else response.content
            assert [url for url in css_urls(body.decode()) if not is_same_host(url)] == [], asset


@pytest.mark.parametrize("path", DOCS_PAGES)
def test_docs_pages_let_the_browser_load_from_this_host_only(anon_client, path):
    # ReDoc's bundle asks cdn.redoc.ly for a logo; this policy makes the browser refuse
    response = anon_client.get(path)

    policy = {
        directive.split()[0]: directive.split()[1:] for directive in response["Content-Security-Policy"].split(";")
    }
    for directive in ("default-src", "img-src", "font-src", "connect-src", "style-src", "script-src"):
        assert directive in policy
    allowed = {"'self'", "'none'", "'unsafe-inline'", "data:", "blob:"}
    assert {source for sources in policy.values() for source in sources} <= allowed
    assert policy["img-src"] == ["'self'", "data:"]


def test_swagger_ui_fetches_no_validator_badge(anon_client):
    page = anon_client.get("/api/docs/").content.decode()

    assert '"validatorUrl": null' in page
