"""What a transport failure means, in words that never quote a secret.

:func:`transport_reason` gives a failure's short cause: the class, plus the text of the
innermost error of the transport's own chain only when that is what the operating
system or TLS said about the connection (never a URL's query string or a header value,
which requests' own messages may quote). :func:`tls_message` words a TLS failure with
its fix; :func:`dropped` and :func:`timed_out` classify a failure for ``_transport``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from gds_vault import _scheme
from gds_vault._printable import printable

__all__ = ["dropped", "timed_out", "tls_message", "transport_reason"]


def dropped(exc: BaseException) -> bool:
    """Whether the server dropped the connection after accepting it (reset, closed without
    an answer): what a TLS port that refuses plain HTTP does, among other causes."""
    text = transport_reason(exc).lower()
    return any(
        sign in text
        for sign in ("reset by peer", "remotedisconnected", "connection aborted", "eof occurred")
    )


def tls_message(server: str, cert: object, verify: object, reason: str) -> tuple[str, str]:
    """What a TLS failure means and what to do: (message, fix)."""
    not_tls = _scheme.not_tls(server, reason)
    if not_tls is not None:
        return not_tls.message, not_tls.fix
    upper = reason.upper()
    if "_ALERT_" in upper:
        # An alert sent by the server: it refused us, i.e. our client certificate.
        advice = (
            "set VAULT_CLIENT_CERT and VAULT_CLIENT_KEY to your certificate and its key"
            if cert is None
            else "the certificate in VAULT_CLIENT_CERT is not one it trusts (another "
            "CA, expired or revoked); ask for one signed by the CA it trusts"
        )
        fix = advice[0].upper() + advice[1:] + "."
        return (
            f"Vault at {server} refused the TLS connection because it requires a "
            f"client certificate it trusts (mutual TLS): {advice} ({reason}).",
            fix,
        )
    host = urlsplit(server).hostname or server
    if "MISMATCH" in upper or "DOESN'T MATCH" in upper or "NOT VALID FOR" in upper:
        fix = (
            f"Use in VAULT_ADDR a host name that Vault's certificate names (not {host}); "
            "`openssl s_client -connect <host>:<port> </dev/null | openssl x509 -noout "
            "-ext subjectAltName` lists them."
        )
        message = f"Vault's certificate at {server} is not valid for the host {host}"
        return f"{message}: {fix} ({reason}).", fix
    if "EXPIRED" in upper:
        fix = (
            "Vault's certificate has expired: its operator must renew it (no setting here "
            "can help)."
        )
        return f"TLS verification failed for {server}: {fix} ({reason}).", fix
    if isinstance(verify, str):
        fix = (
            "The CA certificate you trust (VAULT_CACERT, VAULT_CAPATH or verify=) did not sign "
            "Vault's certificate: ask your Vault administrator for the CA that did (for a dev "
            "server started with -dev-tls, its vault-ca.pem)."
        )
        return f"TLS verification failed for {server}: {fix} ({reason}).", fix
    fix = (
        "Set VAULT_CACERT (or VAULT_CAPATH) to the CA certificate that signed Vault's "
        "certificate (the system CAs do not know it)."
    )
    return f"TLS verification failed for {server}: {fix} ({reason}).", fix


# Where a transport failure's own chain of exceptions lives. Beyond them the chain goes on
# into whatever the caller was handling when it called Vault (a Snowflake login refusal
# while the provider reads the secret again): that is no reason for this failure.
_TRANSPORT_MODULES = frozenset({"requests", "urllib3", "ssl", "socket", "http"})


def transport_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from, within the transport's own layers."""
    chain = [exc]
    while len(chain) < 10:  # the chain is short; the bound guards against cycles
        seen = chain[-1].__cause__ or chain[-1].__context__
        if seen is None or seen in chain:
            break
        own = isinstance(seen, OSError) or type(seen).__module__.split(".")[0] in _TRANSPORT_MODULES
        if not own:
            break
        chain.append(seen)
    return chain


def timed_out(exc: BaseException) -> bool:
    """Whether a transport error was caused by a read timing out."""
    return any(
        isinstance(seen, TimeoutError) or type(seen).__name__ == "ReadTimeoutError"
        for seen in transport_chain(exc)
    )


# Errors whose text is what the system said about the connection (refused, reset, name
# not found, certificate not trusted): quoted in messages. The text of any other error may
# quote what was sent (requests' InvalidHeader quotes the header value: the token) or the
# URL, and is never used; its class name is.
_QUOTABLE_MODULES = frozenset({"builtins", "socket", "ssl", "http.client"})


# urllib3 re-raises some TLS and protocol failures as its own errors, whose text is the
# ssl module's or the socket's (e.g. a TLS 1.3 alert read after the handshake).
_QUOTABLE_URLLIB3 = frozenset({"SSLError", "ProtocolError"})


def quotable(error: BaseException) -> bool:
    kind = type(error)
    if isinstance(error, OSError) and kind.__module__ in _QUOTABLE_MODULES:
        return True
    return kind.__module__ == "urllib3.exceptions" and kind.__name__ in _QUOTABLE_URLLIB3


def transport_reason(exc: BaseException) -> str:
    """A short cause for a transport error: the class, and the text of the innermost error
    of the transport's own chain (never one the caller happened to be handling) only when
    that is an OS, socket or TLS error (e.g. "[Errno 111] Connection refused"); never a
    URL or a header value."""
    chain = transport_chain(exc)
    text = ""
    for inner in reversed(chain):  # the innermost error that says what the system saw
        if quotable(inner):
            text = printable(str(inner).split("\n")[0][:160])
            break
    else:
        if len(chain) > 1:
            text = type(chain[-1]).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
