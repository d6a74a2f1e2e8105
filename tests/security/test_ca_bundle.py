"""Review finding 2: the CA bundle made from VAULT_CAPATH belongs to the process that wrote it.

requests cannot use a plain directory of CA files, so a VAULT_CAPATH directory becomes one
temporary bundle file, removed when the client is closed or collected. Before the fix a
forked child that closed its copy of the client (or just dropped it) removed the parent's
bundle, and the parent's next request failed with a raw ``OSError``.
"""

from __future__ import annotations

import os
import shutil
import warnings

import pytest

from gds_vault import RetryPolicy, TokenAuth, VaultClient, VaultConfigError
from gds_vault._tls import TrustStore

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    pytest.mark.timeout(60),
]


def in_child(work) -> int:
    """Run ``work`` in a forked child; its exit status (0: it returned True)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads running
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            code = 0 if work() else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.fixture
def capath(openbao_tls, tmp_path):
    """A plain directory holding the TLS dev server's CA certificate."""
    directory = tmp_path / "cas"
    directory.mkdir()
    shutil.copy(openbao_tls.ca_cert, directory / "dev-ca.pem")
    openbao_tls.kv_put("secret", "bundle/app", {"user": "BUNDLE_USER"})
    return directory


def capath_client(server, capath) -> VaultClient:
    return VaultClient(
        server.addr,
        auth=TokenAuth(server.root_token),
        verify=str(capath),
        cache_ttl=0,
        retry=RetryPolicy.no_retries(),
    )


def test_child_closing_its_client_leaves_the_parents_bundle(openbao_tls, capath):
    """A forked child closes the client (as a worker does at its end); the parent keeps
    its bundle file and keeps reading over fresh connections."""
    client = capath_client(openbao_tls, capath)
    try:
        assert client.get_secret("secret/bundle/app", key="user") == "BUNDLE_USER"
        bundle = client._trust.requests_verify
        assert isinstance(bundle, str) and os.path.isfile(bundle)
        assert in_child(lambda: client.close() is None) == 0
        assert os.path.isfile(bundle)
        client._transport.close()  # new connections, which load the CA file again
        assert client.get_secret("secret/bundle/app", key="user") == "BUNDLE_USER"
    finally:
        client.close()
    assert not os.path.exists(bundle)  # the parent, which wrote it, removes it


def test_child_dropping_the_trust_store_leaves_the_file(capath):
    """A trust store collected in a child (``__del__`` at the child's exit) removes nothing."""
    stores = [TrustStore(str(capath), host="127.0.0.1")]
    bundle = stores[0].requests_verify
    assert isinstance(bundle, str)
    try:
        assert in_child(lambda: stores.clear() is None) == 0  # last reference: __del__ runs
        assert os.path.isfile(bundle)
    finally:
        stores[0].close()
    assert not os.path.exists(bundle)


def test_ca_file_removed_under_the_client_is_a_typed_error(openbao_tls, capath):
    """If the CA file disappears anyway (a tmp cleaner), the next request is a
    VaultConfigError saying what to check, not a raw OSError."""
    client = capath_client(openbao_tls, capath)
    try:
        os.unlink(client._trust.requests_verify)
        with pytest.raises(VaultConfigError, match="VAULT_CAPATH"):
            client.get_secret("secret/bundle/app")
    finally:
        client.close()
