"""Vault's failed answers turned into typed errors: one table, read at a glance.

Each HTTP status Vault uses for a failure maps to an error class and a message that says
what failed and what to do. Whether the request is retried depends on the status alone
(:data:`RETRYABLE_STATUSES`), and is given to the error when it is made. An answer that
is not Vault's JSON (a proxy's HTML page) is blamed on the proxy, whatever its status.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gds_vault._errors import (
    VaultAuthError,
    VaultInvalidRequestError,
    VaultPermissionError,
    VaultResponseError,
    VaultSecretNotFoundError,
    VaultUnavailableError,
)
from gds_vault._printable import printable

if TYPE_CHECKING:
    import requests

#: Statuses worth sending the same request again for: not yet replicated (412), rate
#: limited (429), failing, restarting or sealed (500, 502, 503, 504). Nothing else.
RETRYABLE_STATUSES = frozenset({412, 429, 500, 502, 503, 504})

_CAPABILITY = {"GET": "read", "LIST": "list", "POST": "update", "PUT": "update", "DELETE": "delete"}
_MAX_ERROR_TEXT = 300  # characters of Vault's error list kept in a message


@dataclass(frozen=True, slots=True)
class Answer:
    """What a failed status means: the error class and its message template.

    The template's fields: ``where`` ("GET /v1/path"), ``detail`` (": Vault's errors" or
    ""), ``addr``, ``status``, ``path``, ``capability`` (the policy capability the
    method needs), ``unavailable`` (sealed or not, for 503) and ``kind`` (the content
    type of an answer that is not JSON).
    """

    error: type[VaultResponseError]
    message: str
    retry_after: bool = False  # carry the server's Retry-After to the retry policy


# fmt: off
STATUS_ANSWERS: Mapping[int, Answer] = {
    400: Answer(VaultInvalidRequestError, "Vault rejected {where} as invalid{detail}."),
    401: Answer(VaultAuthError, "Vault refused {where}: not authenticated{detail}. Check the "
                "token or login credentials."),
    403: Answer(VaultPermissionError, "Permission denied for {where}{detail}. The token's "
                "policies need the {capability!r} capability on path {path!r}; ask your Vault "
                "administrator to grant it to your role's policy."),
    404: Answer(VaultSecretNotFoundError, "Nothing found at {where}{detail}."),
    412: Answer(VaultUnavailableError, "Vault answered {where} with 412: the data is not yet "
                "replicated to this node (eventual consistency); retrying usually succeeds."),
    429: Answer(VaultUnavailableError, "Vault is rate-limiting {where} (429){detail}; slow "
                "down or ask for a higher quota.", retry_after=True),
    501: Answer(VaultUnavailableError, "Vault at {addr} is not initialized (501); an operator "
                "must run `vault operator init`."),
    503: Answer(VaultUnavailableError, "{unavailable}; {where} answered 503{detail}.",
                retry_after=True),
}
OTHER_5XX = Answer(VaultUnavailableError, "Vault failed on {where} with HTTP {status}{detail}.",
                   retry_after=True)
UNEXPECTED = Answer(VaultResponseError, "Vault answered {where} with unexpected HTTP "
                    "{status}{detail}.")
NOT_JSON = Answer(VaultUnavailableError, "Vault at {addr} answered {where} with HTTP {status} "
                  "and {kind} instead of Vault's JSON: a proxy or load balancer in front of "
                  "Vault is failing, or Vault is restarting. Retry later or check the proxy.")
# fmt: on


def answer_for(status: int, body: Any) -> Answer:
    """The row of the table that applies to a failed answer."""
    if body is None and status >= 400:
        return NOT_JSON
    if status in STATUS_ANSWERS:
        return STATUS_ANSWERS[status]
    return OTHER_5XX if status >= 500 else UNEXPECTED


def error_for(
    addr: str, method: str, path: str, response: requests.Response, body: Any
) -> VaultResponseError:
    """The typed error for a failed answer (``body``: its JSON, or None if it is not JSON)."""
    status = response.status_code
    errors = errors_of(body)
    answer = answer_for(status, body)
    fields = {
        "where": f"{method} /v1/{path}",
        "detail": f": {'; '.join(errors)[:_MAX_ERROR_TEXT]}" if errors else "",
        "addr": addr,
        "status": status,
        "path": path,
        "capability": _CAPABILITY.get(method, method.lower()),
        "unavailable": (
            "Vault is sealed: an operator must unseal it"
            if any("sealed" in e.lower() for e in errors)
            else "Vault is unavailable (standby, maintenance or overloaded)"
        ),
        "kind": content_type(response),
    }
    return answer.error(
        answer.message.format(**fields),
        status_code=status,
        errors=errors,
        retry_after=retry_after(response) if answer.retry_after else None,
        data=body.get("data") if status == 404 and isinstance(body, dict) else None,
        retryable=status in RETRYABLE_STATUSES,
    )


_MULTIERROR = re.compile(r"^\d+ errors? occurred:\s*\*\s*")


def errors_of(body: Any) -> tuple[str, ...]:
    """Vault's error strings, each on one line: Go's "1 error occurred:\n\t* x\n\n"
    wrapper becomes "x" (several become "x; y"); control characters are escaped, since
    the text ends up on terminals and in logs."""
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        cleaned = (_MULTIERROR.sub("", " ".join(str(e).split())) for e in body["errors"] if e)
        return tuple(printable(text.replace(" * ", "; ")) for text in cleaned if text)
    return ()


def content_type(response: requests.Response) -> str:
    kind = response.headers.get("Content-Type", "").split(";")[0].strip()
    return kind or "an empty body"


def retry_after(response: requests.Response) -> float | None:
    """Retry-After as seconds: either a number or an HTTP date."""
    raw = response.headers.get("Retry-After", "").strip()
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime  # rare path, costly import

    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
