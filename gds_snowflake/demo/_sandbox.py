"""``gds-snowflake sandbox``: OpenBao and the Snowflake double, running until Ctrl-C.

The demo shows the flow and stops; the sandbox keeps both servers up so that a person
can try their own code, their own secret layout, or their own Vault against a Snowflake
that checks key pairs and passwords for real. It prints:

- the exports a job needs (an AppRole allowed to read one provisioned key-pair secret),
- the ``get_snowflake_connection`` call and its ``host``/``port``/``protocol`` (how code
  reaches the double instead of ``<account>.snowflakecomputing.com``),
- the ``gds-snowflake doctor`` command for that secret,
- the sandbox Vault's root token, for administrator commands in another shell;

and, with ``--public-key FILE``, registers a Snowflake user with *your* public key, so a
secret in your own Vault (holding the matching private key) can log in to the double.

Ctrl-C (or SIGTERM) stops both servers and removes their temporary files. The values
printed are throwaway credentials of a loopback dev server that dies with the sandbox.
Tooling: it uses only the double's public API (start/stop, register_user,
connect_kwargs, account/host/port) and ``gds_vault.testing.OpenBaoServer``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import shlex
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

SECRET_PATH = "secret/snowflake/sandbox"  # noqa: S105 - a path, not a password
SANDBOX_USER = "SANDBOX_ETL"
POLICY_NAME = "snowflake-sandbox"
POLICY = 'path "secret/data/snowflake/sandbox" { capabilities = ["read"] }\n'
ROLE = "snowflake-sandbox"
DEFAULT_OWN_USER = "ETL"


class SandboxError(Exception):
    """A sandbox argument that cannot work (a missing or wrong public key file)."""


def _public_key_pem(path: str) -> tuple[str, str]:
    """The PEM public key in ``path`` and its Snowflake fingerprint (SHA256:<base64>).

    Raises:
        SandboxError: The file is missing, or holds no public key (a private key is refused
            with how to get its public half, and never echoed).
    """
    from cryptography.hazmat.primitives import serialization

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SandboxError(
            f"Cannot read the public key file {path!r} ({exc.strerror or exc})."
        ) from None
    if b"PRIVATE KEY" in data:
        raise SandboxError(
            f"{path} holds a private key; the sandbox needs only its public half: "
            "openssl rsa -in rsa_key.p8 -pubout -out rsa_key.pub (then pass rsa_key.pub)."
        )
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise SandboxError(
            f"{path} holds no PEM public key (-----BEGIN PUBLIC KEY-----); make one with "
            "openssl rsa -in rsa_key.p8 -pubout -out rsa_key.pub."
        ) from None
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fingerprint = "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode()
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return pem, fingerprint


def _provision(vault: Any, snowflake: Any) -> dict[str, str]:
    """The sandbox's own user, key-pair secret, policy and AppRole; returns the exports."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    snowflake.register_user(SANDBOX_USER, public_key=key.public_key())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    vault.kv_put(
        "secret",
        "snowflake/sandbox",
        {
            "account": snowflake.account,
            "user": SANDBOX_USER,
            "private_key": private_pem,
            "warehouse": "SANDBOX_WH",
            "database": "SANDBOX_DB",
            "schema": "PUBLIC",
        },
    )
    vault.write_policy(POLICY_NAME, POLICY)
    role_id, secret_id = vault.approle(
        ROLE,
        policies=[POLICY_NAME],
        token_ttl="1h",  # noqa: S106 - a duration
    )
    return {
        "VAULT_ADDR": vault.addr,
        "VAULT_ROLE_ID": role_id,
        "VAULT_SECRET_ID": secret_id,
        "SNOWFLAKE_VAULT_PATH": SECRET_PATH,
    }


def _python_call(path: str, kwargs: dict[str, Any]) -> str:
    arguments = "".join(f", {name}={value!r}" for name, value in kwargs.items())
    return f"get_snowflake_connection({path!r}{arguments})"


def _doctor_command(path: str, where: dict[str, Any], *, account: str | None = None) -> str:
    words = ["gds-snowflake", "doctor", path]
    if account is not None:
        words += ["--account", account]
    words += ["--host", str(where["host"]), "--port", str(where["port"])]
    words += ["--protocol", str(where["protocol"])]
    return shlex.join(words)


def describe(
    vault: Any, snowflake: Any, exports: dict[str, str], own: dict[str, str] | None
) -> dict[str, Any]:
    """What the sandbox prints, as data (``--format json`` prints exactly this)."""
    kwargs = snowflake.connect_kwargs()
    where = {name: value for name, value in kwargs.items() if name != "account"}
    info: dict[str, Any] = {
        "vault_addr": vault.addr,
        "snowflake": {"account": snowflake.account, "host": snowflake.host, "port": snowflake.port},
        "exports": exports,
        "secret_path": SECRET_PATH,
        "connect_kwargs": where,
        "python": _python_call(SECRET_PATH, where),
        "doctor": _doctor_command(SECRET_PATH, kwargs),
        "admin": {"BAO_ADDR": vault.addr, "BAO_TOKEN": vault.root_token},
    }
    if own is not None:
        own_kwargs = {"account": snowflake.account, **where}
        info["own_vault"] = {
            **own,
            "connect_kwargs": own_kwargs,
            "python": _python_call("<your secret path>", own_kwargs),
            "doctor": _doctor_command("<your secret path>", kwargs, account=snowflake.account),
        }
    return info


def _render(info: dict[str, Any], stream: IO[str]) -> None:
    exports = "\n".join(f"export {k}={shlex.quote(v)}" for k, v in info["exports"].items())
    admin = " ".join(f"{k}={shlex.quote(v)}" for k, v in info["admin"].items())
    sf = info["snowflake"]
    lines = [
        "Sandbox running: a local OpenBao dev server and the Snowflake double (loopback only).",
        f"  OpenBao    {info['vault_addr']}",
        f"  Snowflake  http://{sf['host']}:{sf['port']}  account {sf['account']}, "
        f"user {SANDBOX_USER} (key pair), secret {info['secret_path']}",
        "",
        "1. A job's environment (throwaway values of this sandbox), in a shell:",
        exports,
        "",
        "2. Connect from Python in that shell; host/port/protocol reach the double instead",
        "   of <account>.snowflakecomputing.com:",
        "   from gds_snowflake import get_snowflake_connection",
        f"   conn = {info['python']}",
        "",
        "3. Check every step:",
        f"   {info['doctor']}",
        "",
        "Administrator commands against this Vault (another shell: BAO_TOKEN would win over",
        "the AppRole above), e.g. the README's recipe:",
        f"   export {admin}",
        f"   bao kv get {info['secret_path']}",
    ]
    own = info.get("own_vault")
    if own is not None:
        lines += [
            "",
            f"Your own Vault: Snowflake user {own['user']} is registered with the public key "
            f"from {own['public_key_file']}",
            f"({own['fingerprint']}). With your VAULT_* variables, and a secret in your "
            f"Vault that names user {own['user']} and holds the matching private key:",
            f"   {own['doctor']}",
            f"   conn = {own['python']}",
            "   (account= overrides the secret's account: the double serves "
            f"{info['snowflake']['account']} only)",
        ]
    lines += ["", "Ctrl-C stops both servers and removes their files."]
    stream.write("\n".join(lines) + "\n")
    stream.flush()


def run_sandbox(
    *,
    public_key: str | None = None,
    user: str | None = None,
    fmt: str = "text",
    out: IO[str] | None = None,
    wait: Callable[[], None] | None = None,
) -> int:
    """Start the sandbox, print how to use it, and run until Ctrl-C or SIGTERM.

    Args:
        public_key: A PEM public key file: registers ``user`` with it on the double.
        user: The Snowflake user for ``public_key`` (default ETL).
        fmt: "text" for people, "json" for one JSON object (then a "ready" line).
        out: Where to print (default stdout).
        wait: Blocks until the sandbox should stop (default: until Ctrl-C or SIGTERM).

    Returns:
        The exit code: 0 once stopped, 2 for a bad argument or missing extra.
    """
    stream = out or sys.stdout
    own: dict[str, str] | None = None
    try:
        from gds_snowflake.testing import SnowflakeDouble
        from gds_vault.testing import OpenBaoServer

        if public_key is not None:
            pem, fingerprint = _public_key_pem(public_key)
            own = {
                "user": user or DEFAULT_OWN_USER,
                "public_key_file": public_key,
                "fingerprint": fingerprint,
            }
        elif user is not None:
            raise SandboxError("--user names the user to register with --public-key; give both.")
    except ImportError as exc:
        print(
            f"The sandbox needs the demo extra: pip install 'gds-vault-snowflake[demo]' ({exc})",
            file=sys.stderr,
        )
        return 2
    except SandboxError as exc:
        print(f"gds-snowflake sandbox: {exc}", file=sys.stderr)
        return 2
    restore = _stop_on_sigterm()
    try:
        with contextlib.ExitStack() as cleanup:
            # Cleanups registered before starting: Ctrl-C during a start stops the part that
            # had started (a context manager's __exit__ would not run then).
            vault = OpenBaoServer()
            cleanup.callback(vault.cleanup)
            snowflake = SnowflakeDouble()
            cleanup.callback(snowflake.stop)
            vault.start()
            snowflake.start()
            exports = _provision(vault, snowflake)
            if own is not None:
                snowflake.register_user(own["user"], public_key=pem)
            info = describe(vault, snowflake, exports, own)
            if fmt == "json":
                stream.write(json.dumps(info) + "\nready\n")
                stream.flush()
            else:
                _render(info, stream)
            (wait or _until_interrupted)()
    except KeyboardInterrupt:
        pass  # Ctrl-C or SIGTERM: the exit stack above has stopped both servers
    finally:
        restore()
    print(
        "Sandbox stopped: OpenBao and the Snowflake double are down, their files removed.",
        file=stream,
        flush=True,
    )
    return 0


def _until_interrupted() -> None:
    threading.Event().wait()  # interrupted by KeyboardInterrupt (SIGINT, or SIGTERM below)


def _stop_on_sigterm() -> Callable[[], None]:
    """Make SIGTERM stop the sandbox as Ctrl-C does (cleanup included); returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore
