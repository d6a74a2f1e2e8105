"""Review finding 4, answers: no answer may take the process's memory or escape untyped.

Before the fix an 800 MB answer grew the client's memory by 2.4 GB, and deeply nested JSON
escaped as ``RecursionError``. Now an answer larger than ``MAX_ANSWER_BYTES`` (16 MiB) is
refused from its Content-Length before its body is read, or when the bytes read pass the
limit; a compressed answer (never asked for) is refused before it is inflated; and JSON
the decoder cannot take is a ``VaultResponseError``. None of them is retried.

The crafted answers come from a raw socket server (no HTTP library would send them).
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
from collections.abc import Iterable, Iterator

import pytest

from gds_vault import RetryPolicy, TokenAuth, VaultClient, VaultResponseError
from tests.fakevault import DATA, SECRET_PATH, fake  # noqa: F401 - the fake fixture

pytestmark = pytest.mark.timeout(60)

MIB = 1024 * 1024
MAX_ANSWER_BYTES = 16 * MIB  # the documented limit (README, SECURITY.md)
HEALTH = {"initialized": True, "sealed": False, "standby": False, "version": "2.0.0"}


class RawServer:
    """Answers every connection with the same head and body, written as given."""

    def __init__(self, head: str, body: Iterable[bytes], *, hold: bool = False) -> None:
        self.head = head.replace("\n", "\r\n").encode() + b"\r\n\r\n"
        self.body = body
        self.hold = hold  # keep the connection open after the body, until the client goes
        self.sent = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.addr = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self._sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(20)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                request += chunk
            try:
                conn.sendall(self.head)
                for piece in self.body:
                    conn.sendall(piece)
                    self.sent += len(piece)
                if self.hold:
                    while conn.recv(65536):
                        pass
            except OSError:
                return  # the client hung up: what a refused answer looks like from here

    def close(self) -> None:
        self._sock.close()
        self._thread.join(20)


@pytest.fixture
def raw_server() -> Iterator[list[RawServer]]:
    servers: list[RawServer] = []
    yield servers
    for server in servers:
        server.close()


def health_of(server: RawServer) -> None:
    with VaultClient(
        server.addr, auth=TokenAuth("hvs.unused-token"), timeout=3.0, retry=RetryPolicy.no_retries()
    ) as client:
        client.health()


def padded_health(size: int) -> bytes:
    """Vault's health JSON padded to ``size`` bytes: valid, just too big."""
    start = json.dumps(HEALTH)[:-1] + ', "pad": "'
    return (start + "a" * (size - len(start) - 2) + '"}').encode()


def test_announced_size_over_the_limit_is_refused_before_the_body(raw_server):
    """Content-Length: 800 MB is refused at once, without waiting for (or reading) a body."""
    server = RawServer(
        "HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Length: 838860800",
        [b'{"initialized": true'],
        hold=True,
    )
    raw_server.append(server)
    with pytest.raises(VaultResponseError, match="16 MiB") as info:
        health_of(server)
    assert info.value.retryable is False
    assert "838860800" in str(info.value)


def test_answer_growing_past_the_limit_is_cut_off(raw_server):
    """An answer without Content-Length is read only up to the limit, then refused."""
    body = padded_health(MAX_ANSWER_BYTES + 4 * MIB)
    pieces = [body[i : i + MIB] for i in range(0, len(body), MIB)]
    server = RawServer(
        "HTTP/1.1 200 OK\nContent-Type: application/json\nConnection: close", pieces
    )
    raw_server.append(server)
    with pytest.raises(VaultResponseError, match="16 MiB"):
        health_of(server)


def test_compressed_answer_is_refused_before_inflating(raw_server):
    """A gzip answer (the client asks for none) is refused: 20 KB could inflate to GBs."""
    bomb = gzip.compress(padded_health(20 * MIB))
    server = RawServer(
        "HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Encoding: gzip\n"
        f"Content-Length: {len(bomb)}",
        [bomb],
    )
    raw_server.append(server)
    with pytest.raises(VaultResponseError, match="compressed"):
        health_of(server)


def test_limit_holds_through_an_http_proxy(raw_server, monkeypatch):
    """Through an HTTP proxy (HTTP_PROXY; here the raw server poses as one and answers
    itself) the limit holds as well: the proxy's connection pools are bounded too."""
    server = RawServer(
        "HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Length: 838860800",
        [b'{"initialized": true'],
        hold=True,
    )
    raw_server.append(server)
    monkeypatch.setenv("HTTP_PROXY", server.addr)
    monkeypatch.setenv("http_proxy", server.addr)
    # 127.0.0.2 is loopback (no plain-HTTP warning) but not in NO_PROXY: it goes via the proxy.
    with (
        VaultClient(
            "http://127.0.0.2:9",
            auth=TokenAuth("hvs.unused-token"),
            timeout=3.0,
            retry=RetryPolicy.no_retries(),
        ) as client,
        pytest.raises(VaultResponseError, match="16 MiB"),
    ):
        client.health()


def test_answer_just_under_the_limit_is_read(raw_server):
    """The limit is not a cut-off for ordinary large answers: 15 MiB is read and parsed."""
    body = padded_health(15 * MIB)
    server = RawServer(
        f"HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Length: {len(body)}", [body]
    )
    raw_server.append(server)
    health_of(server)


@pytest.mark.parametrize("depth", [100_000, 1_000_000])
def test_deeply_nested_json_is_a_response_error(fake, depth):  # noqa: F811
    """JSON nested beyond what the decoder takes is a VaultResponseError, not a
    RecursionError escaping the library; it is not retried."""
    fake.http.expect_request(DATA).respond_with_data(
        "[" * depth + "]" * depth, content_type="application/json"
    )
    client = fake.client()
    with pytest.raises(VaultResponseError, match="not Vault's JSON"):
        client.get_secret(SECRET_PATH)
    assert fake.sleeps == []
