"""Vault's standby redirects, followed the way Vault's Go client follows them.

A standby node of a Vault (or OpenBao) cluster forwards most requests to the active
node; when it cannot (forwarding is off, or not yet set up again after a leader
election) it answers ``307 Temporary Redirect`` with ``Location`` naming the active node.
Behind a load balancer the client's kept-alive connection may be pinned to such a
standby, so refusing redirects means failing until the connection happens to move.

The limits, each a deliberate choice:

- Only 307 and 308, which keep the method and body by definition. 301, 302 and 303 are
  not Vault's; they are reported as unexpected answers.
- At most :data:`MAX_REDIRECTS` hops per request (the Go client follows one; the second
  covers a standby naming an active node that has just stepped down itself). More is a
  :class:`VaultUnavailableError`, retried: a cluster in the middle of an election.
- Never from https to http (as the Go client): a :class:`VaultResponseError`, not retried.
- The same session for the new host: the same TLS verification and CA, the same client
  certificate, and the same headers (token, namespace): the redirect comes from the
  Vault the client already trusts. The JSON body of a PUT or POST is sent again.
- The request timeout covers all hops together, not each one.
- One DEBUG line per redirect, naming the new host (never its query string).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from gds_vault._errors import VaultResponseError, VaultUnavailableError

if TYPE_CHECKING:
    import requests

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 2  # hops followed per request
REDIRECT_STATUSES = frozenset({307, 308})


def origin(url: str) -> str:
    """``scheme://host:port`` of a URL: what may be named in logs and messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"


def redirect_target(
    method: str, path: str, url: str, response: requests.Response, hops: int
) -> str | None:
    """The URL to send the request to next, or None if the answer is not to be followed.

    Args:
        method, path: The request, for messages ("GET", "secret/data/app").
        url: The URL that gave ``response``.
        response: The answer; only 307/308 with a Location are followed.
        hops: Redirects already followed for this request.

    Raises:
        VaultUnavailableError: More than MAX_REDIRECTS hops (retried).
        VaultResponseError: A redirect from https to http, or to another scheme.
    """
    if response.status_code not in REDIRECT_STATUSES:
        return None
    location = response.headers.get("Location", "").strip()
    if not location:
        return None  # reported as an unexpected answer
    target = urljoin(url, location)
    where = f"{method} /v1/{path}"
    scheme = urlsplit(target).scheme
    if urlsplit(url).scheme == "https" and scheme != "https":
        raise VaultResponseError(
            f"Vault at {origin(url)} redirected {where} to {origin(target)}, which would "
            "drop TLS; the client does not follow redirects from https to http. Set the "
            "cluster's api_addr to an https address, or point VAULT_ADDR at the active node.",
            status_code=response.status_code,
        )
    if scheme not in ("http", "https"):
        raise VaultResponseError(
            f"Vault at {origin(url)} redirected {where} to a {scheme or 'relative'} "
            "address the client cannot follow; check the cluster's api_addr.",
            status_code=response.status_code,
        )
    if hops >= MAX_REDIRECTS:
        raise VaultUnavailableError(
            f"Vault redirected {where} more than {MAX_REDIRECTS} times (last to "
            f"{origin(target)}): the cluster is electing a new active node, or its nodes' "
            "api_addr settings point at each other. Retry later or check the cluster.",
            status_code=response.status_code,
            retryable=True,
        )
    logger.debug(
        "Vault at %s redirected %s to %s (HTTP %d: a standby naming the active node)",
        origin(url),
        where,
        origin(target),
        response.status_code,
    )
    return target
