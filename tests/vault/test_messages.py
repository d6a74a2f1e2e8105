"""Messages that name the actual mistake (issue 17), each against a real server.

One test per row of the issue: the address's scheme against the server's (both ways, and a
TLS port that drops plain HTTP), a CA file with no certificate, a CA that did not sign the
server's certificate, a ``data/`` path under a denying policy, a KV v1 mount the policy
does not cover (known and unknown version), and a bad token that won over AppRole
variables. Each checks the message, the ``fix`` on its own, and that following the fix
works where the fix is a change on the client's side.
"""

from __future__ import annotations

import contextlib
import pickle
import socket
import ssl
import struct
import threading
import traceback
from collections.abc import Iterator

import pytest

import gds_snowflake
import gds_vault
from gds_vault import (
    RetryPolicy,
    TokenAuth,
    VaultAuthError,
    VaultClient,
    VaultConfigError,
    VaultConnectionError,
    VaultPermissionError,
    VaultTLSError,
)
from tests.reliability.certs import CertificateAuthority

ONE_TRY = RetryPolicy(attempts=1)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def recording_retry(sleeps: list[float]) -> RetryPolicy:
    """A policy that would retry, recording its waits instead of sleeping."""
    return RetryPolicy(attempts=3, initial_wait=0.01, jitter=0.0, sleep=sleeps.append)


# -- the address's scheme against the server's --------------------------------------------


def test_https_against_a_plain_http_server_says_use_http(openbao, recording_retry, sleeps):
    """https:// to a plain-HTTP Vault is a scheme mismatch naming the http:// address,
    not "set VAULT_CACERT", and it is not retried."""
    wrong = f"https://127.0.0.1:{openbao.port}"
    with (
        VaultClient(wrong, auth=TokenAuth(openbao.root_token), retry=recording_retry) as client,
        pytest.raises(VaultTLSError) as info,
    ):
        client.get_secret("secret/anything")
    message = str(info.value)
    assert "does not speak TLS" in message
    assert f"Set VAULT_ADDR to {openbao.addr}" in message
    assert "set VAULT_CACERT" not in message.lower().replace("vault_cacert cannot help", "")
    assert info.value.fix is not None and info.value.fix.startswith(f"Set VAULT_ADDR to {openbao.addr}:")
    assert sleeps == []


def test_http_against_a_tls_server_says_use_https(openbao_tls, recording_retry, sleeps):
    """http:// to a TLS Vault (Go answers 400 "Client sent an HTTP request to an HTTPS
    server") names the https:// address at once, instead of retrying a "proxy failure"."""
    wrong = f"http://127.0.0.1:{openbao_tls.port}"
    with (
        VaultClient(wrong, auth=TokenAuth(openbao_tls.root_token), retry=recording_retry) as client,
        pytest.raises(VaultTLSError) as info,
    ):
        client.get_secret("secret/anything")
    assert "speaks HTTPS, not plain HTTP" in str(info.value)
    assert info.value.fix is not None
    assert info.value.fix.startswith(f"Set VAULT_ADDR to {openbao_tls.addr}:")
    assert sleeps == []
    # The fix works: the https:// address with the server's CA.
    with VaultClient(
        openbao_tls.addr, auth=TokenAuth(openbao_tls.root_token), verify=openbao_tls.ca_cert
    ) as client:
        assert client.health().sealed is False


def test_health_names_the_scheme_mismatch_too(openbao_tls):
    """health() (the doctor's reachability step) says the same, not "not Vault's JSON"."""
    wrong = f"http://127.0.0.1:{openbao_tls.port}"
    with VaultClient(wrong, auth=TokenAuth("unused-token"), retry=ONE_TRY) as client:
        with pytest.raises(VaultTLSError, match="speaks HTTPS"):
            client.health()


@contextlib.contextmanager
def _server(handle) -> Iterator[int]:
    """A loopback TCP server calling ``handle(conn)`` for each connection; yields its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with contextlib.suppress(OSError):
                handle(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def _reset(conn: socket.socket) -> None:
    """Close with a TCP reset, as a balancer does with a request it will not serve."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def test_http_against_a_tls_port_that_drops_plain_http(tmp_path, recording_retry, sleeps):
    """A TLS port that resets plain HTTP (some balancers) is told apart from a failing
    server by one TLS handshake: the message names the https:// address."""
    pair = CertificateAuthority(tmp_path).issue("server", server=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pair.cert, pair.key)

    def tls_only(conn: socket.socket) -> None:
        conn.settimeout(2)
        try:
            tls = context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            _reset(conn)
            return
        tls.close()

    with _server(tls_only) as port:
        client = VaultClient(f"http://127.0.0.1:{port}", auth=TokenAuth("t0ken-unused"), retry=recording_retry)
        with client, pytest.raises(VaultTLSError) as info:
            client.get_secret("secret/anything")
    assert "speaks HTTPS" in str(info.value)
    assert info.value.fix is not None and f"https://127.0.0.1:{port}" in info.value.fix
    assert sleeps == []


def test_a_plain_server_that_resets_is_a_connection_error(sleeps, recording_retry):
    """A plain-HTTP server that resets connections is not called a TLS port: the probe's
    handshake fails, and the failure stays a retried connection error."""
    with _server(_reset) as port:
        client = VaultClient(f"http://127.0.0.1:{port}", auth=TokenAuth("t0ken-unused"), retry=recording_retry)
        with client, pytest.raises(VaultConnectionError) as info:
            client.get_secret("secret/anything")
    assert not isinstance(info.value, VaultTLSError)
    assert "Could not reach Vault" in str(info.value)
    assert len(sleeps) == 2  # retried: 3 attempts


# -- what the client trusts ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"hello\n", "holds no PEM certificate"),
        (b"", "is empty"),
        (b"\x30\x82\x01\x0a\x02\x82", "is DER (binary)"),
        (b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n", "holds a private key"),
    ],
)
def test_a_ca_file_without_a_certificate_is_named(openbao_tls, tmp_path, content, says):
    """VAULT_CACERT naming a file with no certificate is a config error that says what the
    file holds, at once; not a TLS failure advising to set the variable that is set."""
    bogus = tmp_path / "ca.pem"
    bogus.write_bytes(content)
    environ = {"VAULT_ADDR": openbao_tls.addr, "VAULT_TOKEN": openbao_tls.root_token, "VAULT_CACERT": str(bogus)}
    with pytest.raises(VaultConfigError) as info:
        VaultClient.from_env(environ)
    assert str(bogus) in str(info.value) and says in str(info.value)
    assert "VAULT_CACERT" in str(info.value)


def test_a_ca_that_did_not_sign_the_server_is_named(openbao_tls, tmp_path):
    """With VAULT_CACERT set to another CA, the message says that CA did not sign Vault's
    certificate, not "set VAULT_CACERT"."""
    other = CertificateAuthority(tmp_path, name="another CA")
    client = VaultClient(
        openbao_tls.addr, auth=TokenAuth(openbao_tls.root_token), verify=other.cert, retry=ONE_TRY
    )
    with client, pytest.raises(VaultTLSError) as info:
        client.get_secret("secret/anything")
    assert "did not sign Vault's certificate" in str(info.value)
    assert "Set VAULT_CACERT" not in str(info.value)
    assert info.value.fix is not None and "did not sign" in info.value.fix


def test_an_untrusted_server_without_a_ca_still_says_set_vault_cacert(openbao_tls):
    """Without any CA given, setting VAULT_CACERT is the fix, and the message says it."""
    client = VaultClient(openbao_tls.addr, auth=TokenAuth(openbao_tls.root_token), retry=ONE_TRY)
    with client, pytest.raises(VaultTLSError) as info:
        client.get_secret("secret/anything")
    assert info.value.fix is not None and info.value.fix.startswith("Set VAULT_CACERT")


def _general_name(name: str):
    import ipaddress

    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _server_certificate(ca: CertificateAuthority, directory, *, names: list[str], expired: bool):
    """A server certificate signed by ``ca`` for DNS ``names``, valid now or expired."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    end = now - datetime.timedelta(hours=1) if expired else now + datetime.timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca._cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=2))
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False)
        .sign(ca._key, hashes.SHA256())
    )
    cert_file, key_file = directory / "server.pem", directory / "server-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


@pytest.mark.parametrize(
    ("names", "expired", "says", "fix"),
    [
        (["vault.internal"], False, "is not valid for the host 127.0.0.1", "Use in VAULT_ADDR a host name"),
        (["127.0.0.1", "localhost"], True, "has expired", "its operator must renew it"),
    ],
    ids=["host not in the certificate", "expired"],
)
def test_certificate_problems_name_themselves(tmp_path, names, expired, says, fix):
    """A certificate for other names, or an expired one, is named as such even when its CA
    is trusted, instead of "set VAULT_CACERT"."""
    ca = CertificateAuthority(tmp_path)
    cert_file, key_file = _server_certificate(ca, tmp_path, names=names, expired=expired)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)

    def tls(conn: socket.socket) -> None:
        conn.settimeout(2)
        with contextlib.suppress(ssl.SSLError, OSError):
            context.wrap_socket(conn, server_side=True).close()
        conn.close()

    with _server(tls) as port:
        client = VaultClient(f"https://127.0.0.1:{port}", auth=TokenAuth("t0ken-unused"), verify=ca.cert, retry=ONE_TRY)
        with client, pytest.raises(VaultTLSError) as info:
            client.get_secret("secret/anything")
    assert says in str(info.value)
    assert info.value.fix is not None and fix in info.value.fix
    assert "Set VAULT_CACERT" not in str(info.value)


# -- KV paths and policies ----------------------------------------------------------------


@pytest.fixture(scope="module")
def kv_policies(openbao):
    """Policies for the KV rows: one exact v2 grant, one v1 grant elsewhere on kv1m/."""
    with contextlib.suppress(Exception):  # the mount may exist from another module
        openbao.enable_kv("kv1m", version=1)
    openbao.kv_put("secret", "msg/snowflake/etl", {"user": "ETL"})
    openbao.kv_put("kv1m", "snowflake/etl", {"user": "ETL_V1"}, version=1)
    openbao.write_policy("msg-exact", 'path "secret/data/msg/snowflake/etl" { capabilities = ["read"] }')
    openbao.write_policy("msg-kv1-other", 'path "kv1m/other/*" { capabilities = ["read"] }')
    openbao.write_policy("msg-nothing", 'path "secret/data/elsewhere/*" { capabilities = ["read"] }')
    return openbao


def _client(server, *policies: str) -> VaultClient:
    return VaultClient(server.addr, auth=TokenAuth(server.create_token(policies=list(policies))), retry=ONE_TRY)


def test_data_path_under_a_denying_policy_says_drop_data(kv_policies):
    """`secret/data/x` under a policy granting `secret/data/x` is denied (the client reads
    secret/data/data/x): the message says to drop data/, and never asks for a grant on
    `secret/data/data/...`. Dropping it works."""
    with _client(kv_policies, "msg-exact") as client:
        with pytest.raises(VaultPermissionError) as info:
            client.get_secret("secret/data/msg/snowflake/etl")
        message, fix = str(info.value), info.value.fix
        assert fix is not None and fix.startswith("Drop data/ from the path: read 'secret/msg/snowflake/etl'")
        assert "grant" not in message.lower()
        assert "data/data" not in fix
        assert client.get_secret("secret/msg/snowflake/etl") == {"user": "ETL"}


def test_v2_denial_names_the_v2_policy_path_and_hcl(kv_policies):
    """A denied read on a known KV v2 mount names the policy path with data/ and its HCL."""
    with _client(kv_policies, "msg-nothing") as client, pytest.raises(VaultPermissionError) as info:
        client.get_secret("secret/msg/snowflake/etl")
    assert info.value.fix is not None
    assert 'path "secret/data/msg/snowflake/etl" { capabilities = ["read"] }' in info.value.fix
    assert "KV v2 mount secret/" in str(info.value)


def test_kv1_denial_names_the_v1_policy_path(kv_policies):
    """A denied read on a KV v1 mount (known: the policy covers another path there) names
    `kv1m/snowflake/etl`, the v1 policy path, and not the v2-only `kv1m/data/...`."""
    with _client(kv_policies, "msg-kv1-other") as client, pytest.raises(VaultPermissionError) as info:
        client.get_secret("kv1m/snowflake/etl")
    assert info.value.fix is not None
    assert 'path "kv1m/snowflake/etl" { capabilities = ["read"] }' in info.value.fix
    assert "kv1m/data/" not in str(info.value)
    assert "KV v1" in str(info.value)


def test_unknown_mount_denial_names_both_policy_paths_by_version(kv_policies):
    """Where the token may not even look the mount up, Vault will not say whether it is
    v1 or v2: the message names the v1 path for v1 and the v2 path for v2, not only v2."""
    with _client(kv_policies, "msg-nothing") as client, pytest.raises(VaultPermissionError) as info:
        client.get_secret("kv1m/snowflake/etl")
    fix = info.value.fix
    assert fix is not None
    assert "'read' on kv1m/snowflake/etl if kv1m/ is KV version 1" in fix
    assert "or on kv1m/data/snowflake/etl if it is version 2" in fix
    assert "vault secrets list -detailed" in fix


# -- which auth method won ------------------------------------------------------------------


def test_bad_token_with_approle_variables_says_the_token_won(kv_policies):
    """A bad VAULT_TOKEN beside AppRole variables: the refusal says the token won and how to
    choose AppRole (VAULT_AUTH_METHOD=approle), which then works."""
    role_id, secret_id = kv_policies.approle("msg-role", policies=["msg-exact"])
    environ = {
        "VAULT_ADDR": kv_policies.addr,
        "VAULT_TOKEN": "hvs.not-a-real-token-at-all-000000",
        "VAULT_ROLE_ID": role_id,
        "VAULT_SECRET_ID": secret_id,
    }
    with VaultClient.from_env(environ, retry=ONE_TRY) as client:
        assert "VAULT_ROLE_ID is set too but not used" in client.auth.source
        with pytest.raises(VaultAuthError) as info:
            client.get_secret("secret/msg/snowflake/etl")
    assert "VAULT_ROLE_ID is set too but not used: a token wins" in str(info.value)
    assert info.value.fix is not None and "set VAULT_AUTH_METHOD=approle" in info.value.fix
    with VaultClient.from_env({**environ, "VAULT_AUTH_METHOD": "approle"}) as client:
        assert client.get_secret("secret/msg/snowflake/etl") == {"user": "ETL"}


def test_a_token_alone_says_nothing_about_other_methods(kv_policies):
    """Without other methods' variables, a bad token's message has no such note."""
    environ = {"VAULT_ADDR": kv_policies.addr, "VAULT_TOKEN": "hvs.not-a-real-token-at-all-000000"}
    with VaultClient.from_env(environ, retry=ONE_TRY) as client:
        assert client.auth.source == "VAULT_TOKEN"
        with pytest.raises(VaultAuthError) as info:
            client.get_secret("secret/msg/snowflake/etl")
    assert "set too" not in str(info.value)


# -- noise: public names, short tracebacks, the cause kept ---------------------------------


def _printed(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def _failure(client: VaultClient) -> BaseException:
    with client, pytest.raises(gds_vault.VaultError) as info:
        client.get_secret("secret/anything")
    return info.value


def test_network_failure_traceback_is_one_short_traceback():
    """A refused connection prints one traceback of our frames (was 132 lines with three
    chained ones from requests and urllib3); the original stays on ``cause``."""
    import requests

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exc = _failure(VaultClient(f"http://127.0.0.1:{port}", auth=TokenAuth("t0ken-unused"), retry=ONE_TRY))
    printed = _printed(exc)
    assert type(exc) is VaultConnectionError
    assert printed.count("Traceback (most recent call last)") == 1
    assert "The above exception" not in printed and "During handling" not in printed
    assert "urllib3" not in printed and "requests" not in printed
    assert len(printed.splitlines()) < 80
    assert printed.splitlines()[-1].startswith("gds_vault.VaultConnectionError: Could not reach Vault")
    assert isinstance(exc.cause, requests.exceptions.ConnectionError)
    assert exc.__context__ is exc.cause  # a debugger or `raise ... from` sees it too
    assert "urllib3" in _printed(exc.cause)  # and its own traceback, in full
    # Retried first (tenacity's frames join ours): still one traceback, no chain (was 151).
    retried = RetryPolicy(attempts=2, initial_wait=0.01, jitter=0.0, sleep=lambda _: None)
    printed = _printed(_failure(VaultClient(f"http://127.0.0.1:{port}", auth=TokenAuth("t0ken-unused"), retry=retried)))
    assert printed.count("Traceback (most recent call last)") == 1
    assert "urllib3" not in printed and len(printed.splitlines()) < 100


def test_the_reason_is_the_transports_own_not_what_the_caller_was_handling():
    """A Vault call made while handling another error (the provider re-reads the secret
    after Snowflake refused a key) names its own reason, not that error's text."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = VaultClient(f"http://127.0.0.1:{port}", auth=TokenAuth("t0ken-unused"), retry=ONE_TRY)
    try:
        raise RuntimeError("390144 (28000): JWT token is invalid.")
    except RuntimeError:
        exc = _failure(client)
    assert "Connection refused" in str(exc)
    assert "390144" not in str(exc)


def test_tls_failure_traceback_is_one_short_traceback(openbao_tls):
    """An untrusted certificate prints one short traceback (was 135 lines); ``cause`` keeps
    requests' SSLError."""
    import requests

    exc = _failure(VaultClient(openbao_tls.addr, auth=TokenAuth(openbao_tls.root_token), retry=ONE_TRY))
    printed = _printed(exc)
    assert type(exc) is VaultTLSError
    assert printed.count("Traceback (most recent call last)") == 1
    assert "urllib3" not in printed and "ssl.py" not in printed
    assert len(printed.splitlines()) < 80
    assert printed.splitlines()[-1].startswith("gds_vault.VaultTLSError: TLS verification failed")
    assert isinstance(exc.cause, requests.exceptions.SSLError)


@pytest.mark.parametrize("package", [gds_vault, gds_snowflake], ids=lambda p: p.__name__)
def test_public_classes_show_under_the_package_name(package):
    """Every public class of a package is shown as `package.Name`, the name users import,
    and still pickles (pickle finds it there)."""
    for name in package.__all__:
        obj = getattr(package, name)
        if isinstance(obj, type):
            assert obj.__module__ in (package.__name__, f"{package.__name__}.retry"), name
            assert getattr(__import__(obj.__module__, fromlist=[name]), name) is obj
    error = gds_vault.VaultConnectionError("Could not reach Vault", fix="check VAULT_ADDR")
    assert traceback.format_exception_only(error)[0].startswith("gds_vault.VaultConnectionError:")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is gds_vault.VaultConnectionError and copy.fix == "check VAULT_ADDR"
    key_error = gds_snowflake.PrivateKeyError("bad key")
    assert traceback.format_exception_only(key_error)[0].startswith("gds_snowflake.PrivateKeyError:")


def test_errors_have_no_cause_or_fix_unless_given():
    """``cause`` and ``fix`` default to None (class attributes, nothing per instance)."""
    error = gds_vault.VaultPathError("bad path")
    assert error.cause is None and error.fix is None and "cause" not in vars(error)
