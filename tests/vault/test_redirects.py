"""Standby redirects (307/308 with a Location) are followed within documented limits.

A Vault standby that does not forward a request answers 307 naming the active node.
Here pytest-httpserver plays the standby (a real OpenBao standby does it in
tests/reliability/test_raft.py) and either the real OpenBao dev server or a second
pytest-httpserver plays the active node; the TLS cases use real handshakes against
certificates made at test time.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Callable, Iterator

import pytest
from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Request, Response

from gds_vault import (
    AppRoleAuth,
    RetryPolicy,
    TokenAuth,
    VaultClient,
    VaultResponseError,
    VaultTLSError,
    VaultUnavailableError,
)
from tests.reliability.certs import CertificateAuthority

TOKEN = "s.redirect-token-not-real-xxxx"
SECRET = {"user": "ETL", "password": "pw-redirect-1"}
DATA = "/v1/secret/data/app"
MOUNTS = "/v1/sys/internal/ui/mounts/secret/app"
LOOKUP = "/v1/auth/token/lookup-self"
MAX_REDIRECTS = 2  # hops followed per request, as the README documents


def retry(sleeps: list[float], attempts: int | None = 3) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, initial_wait=0.01, jitter=0.0, sleep=sleeps.append)


@pytest.fixture
def servers() -> Iterator[Callable[..., HTTPServer]]:
    """Starts more pytest-httpservers (plain, or TLS with a given certificate)."""
    started: list[HTTPServer] = []

    def start(*, cert: tuple[str, str] | None = None) -> HTTPServer:
        context = None
        if cert is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*cert)
        server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.clear()
        server.stop()


def active_vault(server: HTTPServer, *, secret: bool = True) -> HTTPServer:
    """Make ``server`` answer like an active Vault holding the KV v2 secret secret/app
    (without ``secret``, the test says how the read is answered)."""
    server.expect_request(LOOKUP).respond_with_json(
        {"data": {"ttl": 0, "renewable": False, "type": "service", "policies": ["r"]}}
    )
    server.expect_request(MOUNTS).respond_with_json(
        {"data": {"path": "secret/", "type": "kv", "options": {"version": "2"}}}
    )
    if secret:
        server.expect_request(DATA).respond_with_json(
            {"data": {"data": SECRET, "metadata": {"version": 1}}}
        )
    return server


def redirect_everything(standby: HTTPServer, to: str, status: int = 307) -> None:
    """``standby`` answers every request with a redirect to the same path and query at ``to``."""

    def handler(request: Request) -> Response:
        query = f"?{request.query_string.decode()}" if request.query_string else ""
        return Response(status=status, headers={"Location": f"{to}{request.path}{query}"})

    standby.expect_request(DATA).respond_with_handler(handler)
    standby.expect_request(MOUNTS).respond_with_handler(handler)
    standby.expect_request(LOOKUP).respond_with_handler(handler)
    standby.expect_request("/v1/auth/approle/login", method="POST").respond_with_handler(handler)


def served(server: HTTPServer, path: str) -> list[Request]:
    return [request for request, _ in server.log if request.path == path]


@pytest.mark.parametrize("status", [307, 308])
def test_read_redirected_by_a_standby_is_followed(httpserver, servers, status, caplog):
    """A 307/308 to the active node is followed with the same token and query; one DEBUG
    line names the hosts, never the query string."""
    caplog.set_level(logging.DEBUG, logger="gds_vault")
    active = active_vault(servers())
    redirect_everything(httpserver, active.url_for("").rstrip("/"), status)
    sleeps: list[float] = []
    with VaultClient(
        httpserver.url_for("").rstrip("/"), auth=TokenAuth(TOKEN), retry=retry(sleeps), cache_ttl=0
    ) as client:
        assert client.get_secret("secret/app", version=1) == SECRET
    (read,) = served(active, DATA)
    assert read.headers["X-Vault-Token"] == TOKEN
    assert read.args["version"] == "1"  # the query came with the Location, not added twice
    assert read.query_string == b"version=1"
    assert sleeps == []  # a redirect is no failure: nothing was retried
    lines = [r.getMessage() for r in caplog.records if r.name == "gds_vault._redirects"]
    assert len(lines) == 3  # token lookup, mount lookup, read: one line per redirect
    assert f"redirected GET /v1/secret/data/app to {active.url_for('').rstrip('/')}" in lines[2]
    assert "version" not in " ".join(lines)


def test_login_body_is_sent_again_to_the_active_node(httpserver, openbao):
    """A POST login redirected to the real OpenBao server keeps its JSON body and succeeds."""
    openbao.write_policy("redirect-reader", 'path "secret/data/*" { capabilities = ["read"] }')
    openbao.kv_put("secret", "redirect/app", SECRET)
    role_id, secret_id = openbao.approle("redirect-role", policies=["redirect-reader"])
    redirect_everything(httpserver, openbao.addr)
    httpserver.expect_request("/v1/secret/data/redirect/app").respond_with_handler(
        lambda request: Response(status=307, headers={"Location": openbao.addr + request.path})
    )
    httpserver.expect_request("/v1/sys/internal/ui/mounts/secret/redirect/app").respond_with_handler(
        lambda request: Response(status=307, headers={"Location": openbao.addr + request.path})
    )
    mark = openbao.mark()
    with VaultClient(
        httpserver.url_for("").rstrip("/"), auth=AppRoleAuth(role_id, secret_id), cache_ttl=0
    ) as client:
        assert client.get_secret("secret/redirect/app") == SECRET
        assert client.stats.logins == 1
    (login,) = served(httpserver, "/v1/auth/approle/login")
    assert json.loads(login.get_data())["role_id"] == role_id
    assert len(openbao.requests_since(mark, "auth/approle/login")) == 1


def test_relative_location_is_followed(httpserver):
    """A Location without a host is resolved against the node that sent it."""
    active_vault(httpserver)
    httpserver.expect_oneshot_request(DATA).respond_with_response(
        Response(status=307, headers={"Location": "/v1/secret/data/app"})
    )
    with VaultClient(httpserver.url_for("").rstrip("/"), auth=TokenAuth(TOKEN), cache_ttl=0) as c:
        assert c.get_secret("secret/app") == SECRET
    assert len(served(httpserver, DATA)) == 2


def test_redirect_loop_stops_after_the_hop_limit_and_is_retried(httpserver):
    """A node redirecting to itself: at most MAX_REDIRECTS hops per request, then a
    VaultUnavailableError (retried: a cluster electing) that names the limit."""
    active_vault(httpserver, secret=False)
    loop = Response(status=307, headers={"Location": httpserver.url_for("/v1/secret/data/app")})
    httpserver.expect_request(DATA).respond_with_response(loop)
    sleeps: list[float] = []
    with VaultClient(
        httpserver.url_for("").rstrip("/"), auth=TokenAuth(TOKEN), retry=retry(sleeps), cache_ttl=0
    ) as client, pytest.raises(VaultUnavailableError, match=f"more than {MAX_REDIRECTS} times"):
        client.get_secret("secret/app")
    assert len(served(httpserver, DATA)) == 3 * (MAX_REDIRECTS + 1)  # 3 attempts, 3 hops each
    assert len(sleeps) == 2


def test_redirect_without_location_is_an_unexpected_answer(httpserver):
    """A 307 with no Location cannot be followed: the unexpected-status error, not retried."""
    active_vault(httpserver, secret=False)
    httpserver.expect_request(DATA).respond_with_json({"errors": []}, status=307)
    with VaultClient(
        httpserver.url_for("").rstrip("/"), auth=TokenAuth(TOKEN), cache_ttl=0
    ) as client, pytest.raises(VaultResponseError, match="unexpected HTTP 307") as info:
        client.get_secret("secret/app")
    assert not info.value.retryable


def test_301_is_not_followed(httpserver, servers):
    """301/302 are not Vault's redirects: reported, not followed."""
    active = active_vault(servers())
    active_vault(httpserver, secret=False)
    httpserver.expect_request(DATA).respond_with_response(
        Response(status=301, headers={"Location": active.url_for("/v1/secret/data/app")})
    )
    with VaultClient(
        httpserver.url_for("").rstrip("/"), auth=TokenAuth(TOKEN), cache_ttl=0
    ) as client, pytest.raises(VaultResponseError, match="unexpected HTTP 301"):
        client.get_secret("secret/app")
    assert served(active, DATA) == []


# -- TLS -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cas(tmp_path_factory):
    """Two unrelated CAs, each with a server certificate for 127.0.0.1."""
    base = tmp_path_factory.mktemp("redirect-tls")
    trusted = CertificateAuthority(base / "trusted", "trusted CA")
    other = CertificateAuthority(base / "other", "other CA")
    return trusted, trusted.issue("node", server=True), other.issue("stranger", server=True)


def tls_client(standby: HTTPServer, ca: str, sleeps: list[float]) -> VaultClient:
    return VaultClient(
        standby.url_for("").rstrip("/"),
        auth=TokenAuth(TOKEN),
        verify=ca,
        retry=retry(sleeps),
        cache_ttl=0,
    )


def test_https_redirect_is_verified_with_the_same_ca(servers, cas):
    """https standby to https active node, both signed by VAULT_CACERT's CA: followed."""
    ca, node, _ = cas
    active = active_vault(servers(cert=(node.cert, node.key)))
    standby = servers(cert=(node.cert, node.key))
    redirect_everything(standby, active.url_for("").rstrip("/"))
    sleeps: list[float] = []
    with tls_client(standby, ca.cert, sleeps) as client:
        assert client.get_secret("secret/app") == SECRET
    assert len(served(active, DATA)) == 1


def test_redirect_to_a_host_the_ca_does_not_trust_is_a_tls_error(servers, cas):
    """A redirect to a host whose certificate another CA signed: VaultTLSError, not retried."""
    ca, node, stranger = cas
    active = active_vault(servers(cert=(stranger.cert, stranger.key)))
    standby = servers(cert=(node.cert, node.key))
    redirect_everything(standby, active.url_for("").rstrip("/"))
    sleeps: list[float] = []
    with tls_client(standby, ca.cert, sleeps) as client, pytest.raises(VaultTLSError) as info:
        client.get_secret("secret/app")
    assert "VAULT_CACERT" in str(info.value)
    assert active.url_for("").rstrip("/") in str(info.value)  # names the host it failed on
    assert sleeps == []
    assert served(active, DATA) == served(active, LOOKUP) == []


def test_redirect_from_https_to_http_is_refused(servers, cas):
    """https to http would drop TLS: a VaultResponseError, not retried, nothing sent there."""
    ca, node, _ = cas
    plain = active_vault(servers())
    standby = servers(cert=(node.cert, node.key))
    redirect_everything(standby, plain.url_for("").rstrip("/"))
    sleeps: list[float] = []
    with tls_client(standby, ca.cert, sleeps) as client, pytest.raises(
        VaultResponseError, match="from https to http"
    ) as info:
        client.get_secret("secret/app")
    assert not info.value.retryable
    assert sleeps == []
    assert plain.log == []


def test_redirect_to_a_dead_active_node_is_retried_and_named(httpserver):
    """A standby naming an active node that is down (as right after it died): a retried
    VaultConnectionError that names that node and the cluster's api_addr."""
    from gds_vault import VaultConnectionError
    from gds_vault.testing import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    redirect_everything(httpserver, dead)
    sleeps: list[float] = []
    with VaultClient(
        httpserver.url_for("").rstrip("/"), auth=TokenAuth(TOKEN), retry=retry(sleeps), cache_ttl=0
    ) as client, pytest.raises(VaultConnectionError) as info:
        client.get_secret("secret/app")
    message = str(info.value)
    assert dead in message
    assert "redirected to" in message
    assert "api_addr" in message
    assert len(sleeps) == 2  # three attempts, each redirected and refused
    assert len(served(httpserver, LOOKUP)) == 3
