"""Review finding 4, redaction: every credential is known to the filter, and stays known.

Before the fix the Snowflake passwords, passphrases and keys read from Vault were never
registered with the redaction filter (although ``gds_vault._logging`` said they were);
the registry dropped an arbitrary value (``set.pop()``) once it held 1,024, which could
be a secret still in use; and its lock was not re-created after ``fork``, so a child
forked while another thread registered a secret hung at its next login.
"""

from __future__ import annotations

import os
import threading
import time
import warnings

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gds_snowflake import SecretLayout
from gds_snowflake._credentials import parse_secret, read_fields
from gds_vault import redact, register_secret
from gds_vault import _logging as vault_logging

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def private_registry(monkeypatch):
    """The registry emptied for this test and put back after it, so that its thousands of
    made-up values neither stay registered nor become known secrets of the suite."""
    monkeypatch.setattr(vault_logging, "_registered", type(vault_logging._registered)())
    if hasattr(vault_logging, "_snapshot"):
        monkeypatch.setattr(vault_logging, "_snapshot", ())


def masked(value: str) -> bool:
    return value not in redact(f"before {value} after")


def test_snowflake_credentials_are_registered_when_read(private_registry):
    """A password, a passphrase, a PEM key and each of its lines, as parsed from a secret,
    are masked by gds_vault.redact() from then on."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    passphrase = "snowflake-passphrase-unregistered-1"
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    ).decode()
    password = "snowflake-password-unregistered-1"
    layout = SecretLayout()
    read_fields({"user": "ETL", "password": password}, "secret/sf", layout)
    assert masked(password)
    parse_secret(
        {"user": "ETL", "private_key": pem, "private_key_passphrase": passphrase},
        "secret/sf",
        layout,
    )
    assert masked(passphrase)
    assert masked(pem)
    lines = [line for line in pem.splitlines() if not line.startswith("-----")]
    assert len(lines) > 20
    assert all(masked(line) for line in lines)
    escaped = pem.replace("\n", "\\n")  # how a key pasted into a web form may be stored
    parse_secret(
        {"user": "ETL", "private_key": escaped, "private_key_passphrase": passphrase},
        "secret/sf",
        layout,
    )
    assert masked(escaped)


def test_registry_evicts_the_oldest_and_keeps_what_is_registered_again(private_registry):
    """Past the limit the oldest value goes, never a recent one; registering a value again
    (as each login does with the token) makes it recent."""
    limit = vault_logging._MAX_REGISTERED
    live = "live-secret-registered-first-000"
    register_secret(live)
    fillers = [f"filler-secret-{i:08d}" for i in range(2 * limit)]
    for i, filler in enumerate(fillers):
        register_secret(filler)
        if i % (limit // 4) == 0:
            register_secret(live)  # still in use: registered again
    assert masked(live)
    assert all(masked(filler) for filler in fillers[-(limit // 2) :])
    assert not masked(fillers[0])  # the oldest went
    assert len(vault_logging._registered) <= limit


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_child_forked_while_a_thread_registers_does_not_hang(private_registry):
    """A thread holds the registry's lock when the process forks; the child registers a
    secret (as its next login does) and exits instead of waiting for ever."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with vault_logging._registered_lock:
            held.set()
            release.wait(20)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(5)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads running
            pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                register_secret("secret-registered-in-the-child-1")
                os._exit(0)
            finally:
                os._exit(1)
        deadline = time.monotonic() + 10
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                pytest.fail("the forked child hung on the registry's lock")
            time.sleep(0.02)
    finally:
        release.set()
        holder.join(5)
    assert os.waitstatus_to_exitcode(status) == 0
