"""HTTP to Vault: one requests.Session per client and process, timeouts, redirects.

Every call goes through :meth:`Transport.request`, which applies the client's
:class:`~gds_vault.retry.RetryPolicy` and turns every failure into a typed
:class:`~gds_vault.VaultError` (statuses by the table in ``_answers``; standby redirects
are followed as ``_redirects`` says; transport failures worded by ``_transport_failures``).
``requests`` is imported on first use so that importing gds_vault stays cheap.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from gds_vault import _deadline, _scheme
from gds_vault._answers import content_type, error_for
from gds_vault._errors import (
    VaultConfigError,
    VaultConnectionError,
    VaultResponseError,
    VaultTimeoutError,
    VaultTLSError,
)
from gds_vault._printable import NOT_PRINTABLE_ASCII
from gds_vault._redirects import origin, redirect_target
from gds_vault._status import VaultHealth
from gds_vault._tls import silence_insecure_request_warnings
from gds_vault._transport_failures import dropped, timed_out, tls_message, transport_reason
from gds_vault.retry import RetryPolicy

if TYPE_CHECKING:
    import requests

logger = logging.getLogger(__name__)

USER_AGENT = "gds-vault/0.1"


class Transport:
    """Sends requests to one Vault server and maps every failure to a VaultError."""

    def __init__(
        self,
        addr: str,
        *,
        namespace: str | None,
        verify: bool | str,
        cert: tuple[str, str] | str | None,
        timeout: float,
        retry: RetryPolicy,
    ) -> None:
        self.addr = addr
        self.namespace = namespace
        self.verify = verify
        self.cert = cert
        self.timeout = timeout
        self.retry = retry
        self._session: requests.Session | None = None
        self._session_pid = 0
        self._session_lock = threading.Lock()

    # -- session -------------------------------------------------------------------------
    def session(self) -> requests.Session:
        """The session for this process; a forked child gets a fresh one (own sockets)."""
        session = self._session
        if session is not None and self._session_pid == os.getpid():
            return session
        with self._session_lock:
            if self._session is None or self._session_pid != os.getpid():
                self._session = self._new_session()
                self._session_pid = os.getpid()
            return self._session

    def _new_session(self) -> requests.Session:
        import requests  # first use only; keeps `import gds_vault` cheap
        from requests.utils import get_environ_proxies

        session = requests.Session()
        # trust_env=False: REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE and .netrc must not change
        # what this client trusts or sends. Proxies are the one ambient setting honoured.
        session.trust_env = False
        session.proxies.update(get_environ_proxies(self.addr))
        session.verify = self.verify
        if self.cert is not None:
            session.cert = self.cert
        session.headers["User-Agent"] = USER_AGENT
        session.headers["X-Vault-Request"] = "true"
        # Vault never compresses unasked; a compressed answer is refused (see _deadline).
        session.headers["Accept-Encoding"] = "identity"
        if self.namespace:
            session.headers["X-Vault-Namespace"] = self.namespace
        _deadline.install(session)  # the timeout bounds each whole answer, not each read
        return session

    def reset_after_fork(self) -> None:
        """Forget the parent's session and lock in a forked child (never close them there)."""
        self._session = None
        self._session_pid = 0
        self._session_lock = threading.Lock()

    def close(self) -> None:
        with self._session_lock:
            if self._session is not None and self._session_pid == os.getpid():
                self._session.close()
            self._session = None

    # -- requests ------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        operation: str = "vault.request",
        retry: bool = True,
    ) -> dict[str, Any] | None:
        """Send ``method /v1/path`` under the retry policy; return the JSON body or None.

        Raises:
            VaultError: A typed error for every failure, after retries where they apply.
        """
        policy = self.retry if retry else RetryPolicy.no_retries()
        result: dict[str, Any] | None = policy.call(
            operation,
            lambda: self._send(method, path, token=token, json=json, params=params),
        )
        return result

    def _send(
        self,
        method: str,
        path: str,
        *,
        token: str | None,
        json: Mapping[str, Any] | None,
        params: Mapping[str, Any] | None,
    ) -> dict[str, Any] | None:
        headers = {"X-Vault-Token": token} if token else None
        response = self._exchange(method, path, headers=headers, json=json, params=params)
        return self._interpret(method, path, response)

    def _exchange(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str | None] | None,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> requests.Response:
        """One HTTP exchange, following standby redirects (see ``_redirects``); transport
        failures become typed errors, statuses do not. The timeout covers all hops."""
        url = f"{self.addr}/v1/{path}"
        if self.verify is False:
            silence_insecure_request_warnings(urlsplit(self.addr).hostname or "")
        started = time.perf_counter()
        ends = time.monotonic() + self.timeout
        hops = 0
        with _deadline.bounded(ends):  # the timeout bounds each whole answer, not each read
            while True:
                response = self._send_once(method, path, url, headers, json, params, ends)
                target = redirect_target(method, path, url, response, hops)
                if target is None:
                    break
                response.close()  # the small redirect body is not needed
                # The Location carries the query string already; the body is sent again.
                url, params, hops = target, None, hops + 1
        logger.debug(
            "%s /v1/%s -> %d in %.1f ms%s",
            method,
            path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
            f" from {origin(url)}" if hops else "",
        )
        return response

    def _send_once(
        self,
        method: str,
        path: str,
        url: str,
        headers: Mapping[str, str | None] | None,
        json: Mapping[str, Any] | None,
        params: Mapping[str, Any] | None,
        ends: float,
    ) -> requests.Response:
        import requests

        server = origin(url) if not url.startswith(self.addr + "/") else self.addr
        left = ends - time.monotonic()
        if left <= 0:  # only after a redirect: the first hop always has the whole timeout
            raise VaultTimeoutError(
                f"Vault at {self.addr} did not answer {method} /v1/{path} within "
                f"{self.timeout:g} s (redirected to {server}); check that it is healthy, "
                "or raise VAULT_CLIENT_TIMEOUT."
            )
        try:
            return self.session().request(
                method,
                url,
                headers=headers,
                json=json,
                params=params,
                timeout=min(self.timeout, left),
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            reason = transport_reason(exc)
            message, fix = tls_message(server, self.cert, self.verify, reason)
            raise VaultTLSError(message, cause=exc, fix=fix) from None
        except (requests.exceptions.InvalidHeader, UnicodeEncodeError):
            # A value that cannot go into a header (the token, the namespace). Its message
            # quotes the value, so nothing of it is kept; sending again cannot help.
            raise VaultConfigError(
                f"The request {method} /v1/{path} was not sent: a header value (the Vault "
                f"token, or VAULT_NAMESPACE) {NOT_PRINTABLE_ASCII}."
            ) from None
        except requests.exceptions.RequestException as exc:
            # requests reports a timeout while reading the body as a ConnectionError.
            if isinstance(exc, requests.exceptions.Timeout) or timed_out(exc):
                raise VaultTimeoutError(
                    f"Vault at {server} did not answer {method} /v1/{path} within "
                    f"{self.timeout:g} s; check that it is healthy, or raise "
                    "VAULT_CLIENT_TIMEOUT.",
                    cause=exc,
                ) from None
            if dropped(exc) and server.startswith("http://") and not self._proxied(server):
                mismatch = _scheme.tls_answered(server, min(self.timeout, 3.0))
                if mismatch is not None:
                    raise VaultTLSError(mismatch.message, cause=exc, fix=mismatch.fix) from None
            advice = (
                "check VAULT_ADDR and that the server is running and reachable from here."
                if server == self.addr
                else f"it is the active node that {self.addr} redirected to: check that it "
                "is running, that the cluster's api_addr names it as this host can reach it."
            )
            raise VaultConnectionError(
                f"Could not reach Vault at {server} ({transport_reason(exc)}); {advice}",
                cause=exc,
            ) from None
        except _deadline.AnswerRefused as exc:
            raise VaultResponseError(
                f"Vault at {server} answered {method} /v1/{path} with {exc.reason}: the "
                "client refuses it to protect the process's memory. Check that VAULT_ADDR "
                "points at Vault itself, not at a proxy or another service."
            ) from None
        except OSError as exc:
            if type(exc) is not OSError or exc.errno is not None:
                raise VaultConnectionError(
                    f"Could not reach Vault at {server} ({transport_reason(exc)}); check "
                    "VAULT_ADDR and that the server is running and reachable from here.",
                    cause=exc,
                ) from None
            # requests' own OSError, before sending: a CA or client certificate file it
            # was given is gone (removed under a running client, e.g. by a tmp cleaner).
            raise VaultConfigError(
                f"A TLS file the client was set up with can no longer be read ({exc}): "
                "check VAULT_CACERT / VAULT_CAPATH and VAULT_CLIENT_CERT / VAULT_CLIENT_KEY, "
                "then create the client again."
            ) from None

    def _proxied(self, server: str) -> bool:
        """Whether requests to ``server`` go through a proxy (a probe would bypass it)."""
        scheme = urlsplit(server).scheme
        return bool(self.session().proxies.get(scheme) or self.session().proxies.get("all"))

    def health(self) -> VaultHealth:
        """``sys/health``: one unauthenticated attempt in the root namespace.

        The query asks for 200 whatever the state (standby, sealed, uninitialised), so
        any other status or a body that is not Vault's health JSON means something else
        answered (a web page, a failing proxy).

        Raises:
            VaultConnectionError: Vault could not be reached (VaultTimeoutError: no answer
                in time); the message says what to check.
            VaultResponseError: The answer is not Vault's health JSON.
        """
        params = {
            "standbyok": "true",
            "perfstandbyok": "true",
            "sealedcode": "200",
            "uninitcode": "200",
            "drsecondarycode": "200",
        }
        started = time.perf_counter()
        # sys/health lives in the root namespace only: the session's namespace is dropped.
        response = self._exchange(
            "GET", "sys/health", headers={"X-Vault-Namespace": None}, params=params
        )
        elapsed = time.perf_counter() - started
        body = _json_of(response)
        self._refuse_plain_http_to_tls(response)
        if response.status_code != 200 or not isinstance(body, dict) or "sealed" not in body:
            raise VaultResponseError(
                f"{self.addr}/v1/sys/health answered HTTP {response.status_code} with "
                f"{content_type(response)}, not Vault's health JSON: VAULT_ADDR must point "
                "at Vault itself (scheme, host and port, no path), not at a web page or a "
                "failing proxy or load balancer.",
                status_code=response.status_code,
            )
        return VaultHealth(
            initialized=bool(body.get("initialized", True)),
            sealed=bool(body.get("sealed")),
            standby=bool(body.get("standby")),
            version=str(body.get("version") or ""),
            server_time=_server_time(response.headers.get("Date"), body),
            elapsed=elapsed,
        )

    def _interpret(
        self, method: str, path: str, response: requests.Response
    ) -> dict[str, Any] | None:
        status = response.status_code
        if status == 204 or (200 <= status < 300 and not response.content):
            return None
        body: Any = _json_of(response)
        if body is None:
            self._refuse_plain_http_to_tls(response)
        if 200 <= status < 300:
            if not isinstance(body, dict):
                raise VaultResponseError(
                    f"Vault at {self.addr} answered {method} /v1/{path} with something that "
                    f"is not Vault's JSON ({content_type(response)}); check that VAULT_ADDR "
                    "points at Vault itself and not at a proxy or web page.",
                    status_code=status,
                )
            return body
        raise error_for(self.addr, method, path, response, body)

    def _refuse_plain_http_to_tls(self, response: requests.Response) -> None:
        """A server that answered our plain HTTP with "this port speaks HTTPS" (Go's
        net/http, Vault and OpenBao among them, answers 400 with a line of text)."""
        mismatch = _scheme.plain_http_refused(response)
        if mismatch is not None:
            raise VaultTLSError(mismatch.message, fix=mismatch.fix)


def _json_of(response: requests.Response) -> Any:
    """The answer's JSON, or None when it is not JSON the decoder can take (malformed,
    or nested so deep that decoding it would exhaust the stack)."""
    try:
        return response.json()
    except (ValueError, RecursionError):
        return None


def _server_time(date_header: str | None, body: Mapping[str, Any]) -> float | None:
    """Vault's clock: the Date header (to the second; +0.5 s for truncation), else the
    ``server_time_utc`` field of sys/health."""
    if date_header:
        from email.utils import parsedate_to_datetime  # rare path, costly import

        try:
            return parsedate_to_datetime(date_header).timestamp() + 0.5
        except (TypeError, ValueError):
            pass
    server_time = body.get("server_time_utc")
    return float(server_time) + 0.5 if isinstance(server_time, int | float) else None
