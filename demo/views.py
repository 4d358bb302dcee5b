"""The page of the reference web client, and the headers that fence it in.

The page is static: its scripts (``demo/static/demo/``) sign in, read and write through
``/api/v1/`` and open the realtime socket, as any other client does. The view only decides
whether the page is served (``DEMO_CLIENT_ENABLED``) and which sources it may use: scripts,
styles and images from this host, fetches to this host and the socket's host
(``WEBSOCKET_PUBLIC_URL``), camera, microphone and screen capture for this page only.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from core.errors import error_body

# Camera and microphone for the call, screen capture for sharing; every other powerful feature off.
PERMISSIONS_POLICY = "camera=(self), microphone=(self), display-capture=(self), geolocation=(), payment=(), usb=()"


def socket_origin(websocket_url: str) -> str | None:
    """``ws://host:port`` of the socket clients are told to open, or None if it names no host."""
    parts = urlsplit(websocket_url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy() -> str:
    """No inline script or style, nothing from another host: the page runs only the modules
    this server serves, and talks only to the API and the socket. ``blob:`` and ``mediastream:``
    are the sources of local and remote video elements."""
    connect = ["'self'"]
    origin = socket_origin(settings.WEBSOCKET_PUBLIC_URL)
    if origin is not None:
        connect.append(origin)
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "media-src 'self' blob: mediastream:",
            f"connect-src {' '.join(connect)}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def demo_client(request: HttpRequest) -> HttpResponse:
    if not settings.DEMO_CLIENT_ENABLED:
        raise Http404("The reference client is not enabled.")
    if request.method not in ("GET", "HEAD"):  # answered in the error shape, as the API's 405s are
        refused = JsonResponse(error_body("METHOD_NOT_ALLOWED", "The page is read with GET."), status=405)
        refused["Allow"] = "GET, HEAD"
        return refused
    response = render(request, "demo/index.html", {"websocket_url": settings.WEBSOCKET_PUBLIC_URL})
    response["Content-Security-Policy"] = content_security_policy()
    response["Permissions-Policy"] = PERMISSIONS_POLICY
    response["Cache-Control"] = "no-store"
    return response
