"""mirage-http: HTTP/1.1 for mirage applications.

``mirage.http.h1`` is the sans-IO protocol core. This package adds what an
application in ``unikernel.py`` uses: :func:`serve` a request handler on a stack,
:class:`StaticFiles` from a key-value store, :func:`asgi_handler` for ASGI
applications, a :class:`Client`, and :func:`tls_server_config` for HTTPS (with
mirage-tls installed).

Names are loaded on first use, so that the plugin (``mirage.http._plugin``) imports
nothing; every import is spelled out below so that a build finds the modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mirage.http._asgi import AsgiApp, asgi_handler
    from mirage.http._client import Client, ClientError, ClientResponse
    from mirage.http._errors import HttpError, LocalProtocolError, RemoteProtocolError
    from mirage.http._limits import Limits
    from mirage.http._message import Handler, Request, Response
    from mirage.http._mime import content_type
    from mirage.http._server import Server, ServerConfig, serve
    from mirage.http._static import StaticFiles, parse_range
    from mirage.http._tls import tls_server_config

__all__ = [
    "AsgiApp",
    "Client",
    "ClientError",
    "ClientResponse",
    "Handler",
    "HttpError",
    "Limits",
    "LocalProtocolError",
    "RemoteProtocolError",
    "Request",
    "Response",
    "Server",
    "ServerConfig",
    "StaticFiles",
    "asgi_handler",
    "content_type",
    "parse_range",
    "serve",
    "tls_server_config",
]


def __getattr__(name: str) -> Any:
    if name in ("AsgiApp", "asgi_handler"):
        from mirage.http import _asgi

        return getattr(_asgi, name)
    if name in ("Client", "ClientError", "ClientResponse"):
        from mirage.http import _client

        return getattr(_client, name)
    if name in ("HttpError", "LocalProtocolError", "RemoteProtocolError"):
        from mirage.http import _errors

        return getattr(_errors, name)
    if name == "Limits":
        from mirage.http import _limits

        return getattr(_limits, name)
    if name in ("Handler", "Request", "Response"):
        from mirage.http import _message

        return getattr(_message, name)
    if name == "content_type":
        from mirage.http import _mime

        return getattr(_mime, name)
    if name in ("Server", "ServerConfig", "serve"):
        from mirage.http import _server

        return getattr(_server, name)
    if name in ("StaticFiles", "parse_range"):
        from mirage.http import _static

        return getattr(_static, name)
    if name == "tls_server_config":
        from mirage.http import _tls

        return getattr(_tls, name)
    raise AttributeError(f"module 'mirage.http' has no attribute {name!r}")
