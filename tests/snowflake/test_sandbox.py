"""`gds-snowflake sandbox`: OpenBao and the double until Ctrl-C, used as its output says.

The subprocess test does what a person does: start it, take the printed exports and
connect arguments, connect with get_snowflake_connection (and with a secret in "your own
Vault", here the session's OpenBao, through the user registered with your public key),
run the printed doctor command, press Ctrl-C, and check that nothing is left running.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from gds_snowflake import get_snowflake_connection
from gds_snowflake.demo import run_sandbox
from gds_vault import TokenAuth, VaultClient, reset_default_client

from .conftest import pem

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fresh_default_client():
    """get_snowflake_connection() without vault_client= uses the process-wide client, built
    from the environment once: each sandbox (a new Vault) needs a new one."""
    reset_default_client()
    yield
    reset_default_client()


def _public_pem(key) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _refuses(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _read_until_ready(process: subprocess.Popen[str], timeout: float) -> str:
    """The sandbox's stdout up to its 'ready' line (its JSON before it)."""
    lines: list[str] = []
    done = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.strip() == "ready":
                break
        done.set()

    threading.Thread(target=read, daemon=True).start()
    if not done.wait(timeout):
        process.kill()
        pytest.fail(f"the sandbox did not get ready in {timeout} s: {''.join(lines)[-2000:]}")
    return "".join(lines)


def test_sandbox_in_a_subprocess_works_as_printed_and_ctrl_c_stops_everything(
    openbao, rsa_key, tmp_path, monkeypatch
):
    """Start, connect through the printed exports and kwargs (its own secret, and one in
    another Vault through the user registered with our public key), run the printed
    doctor command, then SIGINT: exit 0, both ports closed, no process left."""
    public_key = tmp_path / "rsa_key.pub"
    public_key.write_bytes(_public_pem(rsa_key))
    process = subprocess.Popen(
        [sys.executable, "-m", "gds_snowflake.cli", "sandbox", "--format", "json",
         "--public-key", str(public_key), "--user", "OWN_ETL"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's job is
        cwd=ROOT,
    )
    try:
        output = _read_until_ready(process, timeout=90)
        info = json.loads(output.splitlines()[-2])
        running = _descendants(process.pid)
        assert running, "OpenBao runs as a child process"

        # 1. The sandbox's own secret, through the exports and connect kwargs it printed.
        for name, value in info["exports"].items():
            monkeypatch.setenv(name, value)
        with get_snowflake_connection(**info["connect_kwargs"]) as conn:
            assert conn.cursor().execute("select 42").fetchone() == (42,)

        # 2. "Your own Vault": a secret elsewhere, with the private key of the public key
        # the sandbox registered, connects with the printed own-Vault kwargs.
        own = info["own_vault"]
        assert own["user"] == "OWN_ETL" and own["fingerprint"].startswith("SHA256:")
        openbao.kv_put("secret", "sandbox-own/etl", {
            "account": "myorg-myaccount", "user": "OWN_ETL", "private_key": pem(rsa_key),
        })
        with VaultClient(openbao.addr, auth=TokenAuth(openbao.root_token)) as mine:
            conn = get_snowflake_connection(
                "secret/sandbox-own/etl", vault_client=mine, **own["connect_kwargs"]
            )
            with conn:
                assert conn.cursor().execute("select 7").fetchone() == (7,)

        # 3. The doctor command, as printed, with the exports in the environment.
        doctor = subprocess.run(
            [sys.executable, "-m", "gds_snowflake.cli", *shlex.split(info["doctor"])[1:]],
            capture_output=True, text=True, timeout=90, check=False,
            env={**os.environ, **info["exports"], "PYTHONIOENCODING": "utf-8"},
        )
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert "✓ Snowflake login" in doctor.stdout

        # 4. Ctrl-C: the terminal sends SIGINT to the whole foreground process group.
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, err[-3000:]
    assert "Sandbox stopped" in out
    vault_port = int(info["vault_addr"].rsplit(":", 1)[1])
    assert _refuses(vault_port) and _refuses(info["snowflake"]["port"])
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in running) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in running if _alive(pid)], "a process of the sandbox is still running"
    assert "PRIVATE KEY" not in out + err


def test_sandbox_text_output_gives_working_exports(monkeypatch):
    """The text output's export lines and get_snowflake_connection(...) line work as shown;
    the servers stop when the sandbox ends."""
    out = io.StringIO()
    seen: dict[str, str] = {}

    def use_it() -> None:
        text = out.getvalue()
        exports = dict(re.findall(r"^export (VAULT_\w+|SNOWFLAKE_\w+)=(\S+)$", text, re.M))
        assert set(exports) == {"VAULT_ADDR", "VAULT_ROLE_ID", "VAULT_SECRET_ID", "SNOWFLAKE_VAULT_PATH"}
        for name, value in exports.items():
            monkeypatch.setenv(name, shlex.split(value)[0])
        call = re.search(r"conn = (get_snowflake_connection\(.+\))$", text, re.M)
        assert call is not None
        conn = eval(call.group(1), {"get_snowflake_connection": get_snowflake_connection})  # noqa: S307 - our own printed line
        with conn:
            assert conn.cursor().execute("select 1").fetchone() == (1,)
        seen.update(exports)
        doctor = re.search(r"^   (gds-snowflake doctor .+)$", text, re.M)
        assert doctor is not None and "--protocol http" in doctor.group(1)

    assert run_sandbox(out=out, wait=use_it) == 0
    assert seen
    port = int(seen["VAULT_ADDR"].rsplit(":", 1)[1])
    assert _refuses(port)
    assert out.getvalue().rstrip().endswith("their files removed.")


def test_a_private_key_instead_of_the_public_key_is_refused(rsa_key, tmp_path, capsys):
    """--public-key with a private key file: exit 2 before anything starts, saying how to
    get the public half, and the key is never printed."""
    private = tmp_path / "rsa_key.p8"
    private.write_text(pem(rsa_key))
    assert run_sandbox(public_key=str(private)) == 2
    err = capsys.readouterr().err
    assert "openssl rsa -in rsa_key.p8 -pubout -out rsa_key.pub" in err
    assert "PRIVATE KEY-----" not in err and pem(rsa_key).splitlines()[1] not in err


def test_a_missing_public_key_file_is_refused(tmp_path, capsys):
    """--public-key naming no file: exit 2 with the path."""
    assert run_sandbox(public_key=str(tmp_path / "nope.pub")) == 2
    assert "nope.pub" in capsys.readouterr().err
