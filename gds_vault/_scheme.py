"""An address whose scheme does not match the server: ``https://`` to a plain-HTTP port,
or ``http://`` to a port that speaks TLS.

Both are a one-word fix in VAULT_ADDR that the raw failures hide: OpenSSL reports a
plain-HTTP answer to its ClientHello as "wrong version number", which reads like a
certificate problem; a TLS port that receives plain HTTP either answers a line of text
(Go's net/http, so Vault and OpenBao: HTTP 400 "Client sent an HTTP request to an HTTPS
server.") or drops the connection (some proxies and balancers). For the last case one
TLS handshake, only after such a failure and only without a proxy in between, tells a
TLS port from a server that is merely failing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import requests

__all__ = ["Mismatch", "not_tls", "plain_http_refused", "tls_answered"]

# OpenSSL's reasons when the bytes that came back are not a TLS record (plain HTTP).
_NOT_TLS_REASONS = (
    "WRONG_VERSION_NUMBER",
    "WRONG VERSION NUMBER",
    "RECORD_LAYER_FAILURE",
    "PACKET_LENGTH_TOO_LONG",
    "UNKNOWN_PROTOCOL",
    "HTTP_REQUEST",
)
# What servers answer to plain HTTP on a TLS port: Go's net/http (Vault, OpenBao), nginx,
# Apache httpd.
_TLS_REQUIRED_ANSWERS = (
    "http request to an https server",
    "plain http request was sent to https port",
    "speaking plain http to an ssl-enabled server port",
)


@dataclass(frozen=True, slots=True)
class Mismatch:
    """What went wrong (``message``) and the fix on its own (``fix``)."""

    message: str
    fix: str


def _with_scheme(server: str, scheme: str) -> str:
    return f"{scheme}://{server.split('://', 1)[-1]}"


def not_tls(server: str, reason: str) -> Mismatch | None:
    """For a TLS failure on an https:// address: the mismatch, if the server spoke no TLS."""
    if not any(sign in reason.upper() for sign in _NOT_TLS_REASONS):
        return None
    plain = _with_scheme(server, "http")
    fix = (
        f"Set VAULT_ADDR to {plain}: the server on that port speaks plain HTTP, not TLS "
        "(or turn TLS on in Vault's listener). VAULT_CACERT cannot help here."
    )
    return Mismatch(
        f"Vault at {server} does not speak TLS: it answered the TLS handshake with "
        f"something else, most likely plain HTTP ({reason}). {fix}",
        fix,
    )


def plain_http_refused(response: requests.Response) -> Mismatch | None:
    """For an answer to plain HTTP: the mismatch, if the server said it speaks HTTPS."""
    if response.status_code != 400 or not response.url.startswith("http://"):
        return None
    said = " ".join(response.content[:300].decode("utf-8", "replace").split())
    if not any(sign in said.lower() for sign in _TLS_REQUIRED_ANSWERS):
        return None
    server = _origin(response.url)
    return _tls_port(server, f"it answered {said!r}")


def tls_answered(server: str, timeout: float) -> Mismatch | None:
    """For an http:// server that dropped the connection: the mismatch, if the port
    completes a TLS handshake (nothing is verified or sent beyond the handshake)."""
    import socket  # rare path: only after a dropped connection
    import ssl

    parts = urlsplit(server)
    host, port = parts.hostname, parts.port or 80
    if not host:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # a probe of the protocol, not a connection to trust
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as sock,
            context.wrap_socket(sock, server_hostname=host),
        ):
            pass
    except OSError:  # ssl.SSLError included: not a TLS port, or not reachable at all
        return None
    return _tls_port(server, "it dropped the plain-HTTP request, and the port answers TLS")


def _tls_port(server: str, evidence: str) -> Mismatch:
    secure = _with_scheme(server, "https")
    fix = (
        f"Set VAULT_ADDR to {secure}: the server on that port speaks HTTPS (and set "
        "VAULT_CACERT to its CA certificate if a private CA signed it)."
    )
    return Mismatch(
        f"Vault at {server} speaks HTTPS, not plain HTTP: {evidence}. {fix}",
        fix,
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
