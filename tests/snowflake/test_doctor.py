"""gds-snowflake doctor against real OpenBao and the Snowflake double: each step, each fix."""

from __future__ import annotations

import io
import itertools
import json
import os
import subprocess
import sys
import time

import pytest

from gds_snowflake.doctor import StepResult, run_doctor
from gds_snowflake.testing._double import public_key_fingerprint
from gds_snowflake.cli import main, render_text
from gds_vault import AppRoleAuth, VaultClient
from gds_vault.testing import free_port

from .conftest import FAST_RETRY, pem

pytestmark = pytest.mark.timeout(60)

STEP_NAMES = [
    "config", "vault", "auth", "secret", "key", "token", "clock", "login", "session"
]
PASSWORD = "Pw-doctor-0x5eed"  # throwaway credentials for the double
PASSPHRASE = "phrase-doctor-77"
_ids = itertools.count()


@pytest.fixture
def vault_env(world, monkeypatch) -> dict[str, str]:
    """VAULT_ADDR and a fresh AppRole allowed to read secret/snowflake/* in the environment."""
    role_id, secret_id = world.vault.approle(f"doctor-{next(_ids)}", policies=["snowflake"])
    env = {"VAULT_ADDR": world.vault.addr, "VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def where(world) -> list[str]:
    """The pass-through options that point the connector at the double."""
    kwargs = world.snowflake.connect_kwargs()
    return ["--host", kwargs["host"], "--port", str(kwargs["port"]), "--protocol", "http"]


def doctor(capsys, world, *argv: str) -> tuple[int, list[dict], str]:
    """Run the doctor in-process with --format json; returns (exit code, steps, all output)."""
    code = main(["doctor", *argv, *where(world), "--format", "json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.out + captured.err


def statuses(steps: list[dict]) -> list[str]:
    return [s["status"] for s in steps]


def by_step(steps: list[dict]) -> dict[str, dict]:
    return {s["step"]: s for s in steps}


def assert_no_secrets(text: str, *values: str) -> None:
    """None of the values, nor any line of a PEM among them, appears in the text."""
    for value in values:
        assert value not in text
        for line in value.splitlines():
            if len(line) >= 16 and "-----" not in line:
                assert line not in text
    assert "PRIVATE KEY-----" not in text


def test_all_green_with_password(world, vault_env, capsys):
    """Against the double, a password secret passes every step; the key step is not needed."""
    user, path = world.user(password=PASSWORD)
    code, steps, output = doctor(capsys, world, path, "--warehouse", "WH")
    assert code == 0
    assert [s["step"] for s in steps] == STEP_NAMES
    # The double cannot say whether warehouse WH exists: the session step says so (warn).
    assert statuses(steps) == ["ok"] * 4 + ["skip", "skip"] + ["ok"] * 2 + ["warn"]
    found = by_step(steps)
    assert "VAULT_ADDR, VAULT_ROLE_ID, VAULT_SECRET_ID set" in found["config"]["detail"]
    assert "approle auth" in found["config"]["detail"]
    assert "unsealed" in found["vault"]["detail"]
    assert "policies default, snowflake" in found["auth"]["detail"]
    assert f"password authentication as user {user}" in found["secret"]["detail"]
    assert found["key"]["ok"] is None
    assert "not needed" in found["key"]["detail"]
    assert f"as {user} with password" in found["login"]["detail"]
    assert found["session"]["detail"].endswith(
        "WH; warehouse WH NOT verified: this server has no current_warehouse(), so it is not "
        "Snowflake itself (the local Snowflake double accepts any warehouse, database and schema)"
    )
    assert world.snowflake.login_count(user) == 1
    assert_no_secrets(output, PASSWORD, vault_env["VAULT_SECRET_ID"])


def test_all_green_with_encrypted_key_pair(world, vault_env, rsa_key, capsys):
    """An encrypted key passes every step; the key step shows type, bits and fingerprint."""
    encrypted = pem(rsa_key, PASSPHRASE.encode())
    user, path = world.user(
        key=rsa_key, private_key=encrypted, private_key_passphrase=PASSPHRASE, warehouse="WH"
    )
    code, steps, output = doctor(capsys, world, path)
    assert code == 0
    assert statuses(steps) == ["ok"] * 5 + ["skip"] + ["ok"] * 2 + ["warn"]  # warehouse: unverifiable
    key = by_step(steps)["key"]["detail"]
    assert key.startswith("RSA 2048 bits, encrypted, passphrase accepted")
    assert public_key_fingerprint(rsa_key.public_key()) in key
    assert f"DESC USER {user}" in key
    assert "with key pair" in by_step(steps)["login"]["detail"]
    assert_no_secrets(output, encrypted, PASSPHRASE, vault_env["VAULT_SECRET_ID"])


def test_token_auth_never_prints_the_token(world, monkeypatch, capsys):
    """With VAULT_TOKEN the auth step describes the token (method, policies), never prints it."""
    token = world.vault.create_token(policies=["snowflake"], ttl="20m")
    monkeypatch.setenv("VAULT_ADDR", world.vault.addr)
    monkeypatch.setenv("VAULT_TOKEN", token)
    _, path = world.user(password=PASSWORD)
    code, steps, output = doctor(capsys, world, path, "--warehouse", "WH")
    assert code == 0
    auth = by_step(steps)["auth"]["detail"]
    assert auth.startswith("logged in with token (credentials from VAULT_TOKEN); token TTL ")
    assert auth.endswith(", renewable, policies default, snowflake")
    assert "VAULT_TOKEN" in by_step(steps)["config"]["detail"]
    assert_no_secrets(output, token, PASSWORD)


def test_vault_cli_token_is_named_as_the_source(world, monkeypatch, tmp_path, capsys):
    """With only VAULT_ADDR and the token `vault login` left in ~/.vault-token, the config
    and auth steps say the credentials came from that file, and never print the token."""
    token = world.vault.create_token(policies=["snowflake"], ttl="20m")
    (tmp_path / ".vault-token").write_text(token + "\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("VAULT_ADDR", world.vault.addr)
    _, path = world.user(password=PASSWORD)
    code, steps, output = doctor(capsys, world, path, "--warehouse", "WH")
    assert code == 0
    source = f"(credentials from {tmp_path / '.vault-token'} (the Vault CLI's token from `vault login`))"
    assert f"token auth {source}" in by_step(steps)["config"]["detail"]
    assert by_step(steps)["auth"]["detail"].startswith(f"logged in with token {source}; token TTL")
    assert_no_secrets(output, token, PASSWORD)


def test_text_output_marks_and_summary(world, vault_env, capsys):
    """Text output has one ✓ line per step and a closing summary; exit code 0."""
    _, path = world.user(password=PASSWORD)
    assert main(["doctor", path, *where(world), "--warehouse", "WH"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 11  # the session step's warning has a fix line
    assert lines[0].startswith("✓ Configuration")
    assert lines[4].startswith("- Private key")
    assert lines[5].startswith("- Token")
    assert lines[8].startswith("! Session")  # the double cannot verify the warehouse
    assert lines[10] == "All checks passed (1 with warnings)."


def test_missing_warehouse_is_a_warning(world, vault_env, capsys):
    """No warehouse anywhere is a warning with its fix, not a failure: exit code 0."""
    _, path = world.user(password=PASSWORD)
    code, steps, _ = doctor(capsys, world, path)
    assert code == 0
    session = by_step(steps)["session"]
    assert (session["status"], session["ok"]) == ("warn", True)
    assert "no warehouse" in session["detail"]
    assert "--warehouse" in session["fix"]


def _assert_failed_at(steps: list[dict], step: str) -> dict:
    """The step failed with a fix, the earlier ones passed and the later ones were skipped."""
    index = STEP_NAMES.index(step)
    assert all(s["ok"] is not False for s in steps[:index])
    failed = steps[index]
    assert (failed["status"], failed["ok"]) == ("fail", False)
    assert failed["fix"]
    assert statuses(steps[index + 1 :]) == ["skip"] * (len(STEP_NAMES) - index - 1)
    assert all(s["ok"] is None for s in steps[index + 1 :])
    return failed


def test_vault_unreachable(world, vault_env, capsys):
    """A Vault that does not answer fails the vault step with a fix about VAULT_ADDR."""
    _, path = world.user(password=PASSWORD)
    addr = f"http://127.0.0.1:{free_port()}"
    code, steps, output = doctor(capsys, world, path, "--addr", addr)
    assert code == 1
    failed = _assert_failed_at(steps, "vault")
    assert failed["detail"].startswith(f"Could not reach Vault at {addr}")
    assert "Check VAULT_ADDR" in failed["fix"]
    assert "--addr" in steps[0]["detail"]
    assert_no_secrets(output, PASSWORD, vault_env["VAULT_SECRET_ID"])


def test_missing_vault_addr(world, vault_env, monkeypatch, capsys):
    """Without VAULT_ADDR the config step fails and says to set it."""
    monkeypatch.delenv("VAULT_ADDR")
    code, steps, _ = doctor(capsys, world, "secret/snowflake/any")
    assert code == 1
    failed = _assert_failed_at(steps, "config")
    assert "VAULT_ROLE_ID, VAULT_SECRET_ID set" in failed["detail"]
    assert "VAULT_ADDR is not set" in failed["detail"]
    assert "export VAULT_ADDR=" in failed["fix"]


def test_legacy_variable_is_a_warning(world, vault_env, monkeypatch, capsys):
    """HVAULT_ADDR instead of VAULT_ADDR still works, with a config warning naming VAULT_ADDR."""
    _, path = world.user(password=PASSWORD)
    monkeypatch.delenv("VAULT_ADDR")
    monkeypatch.setenv("HVAULT_ADDR", world.vault.addr)
    code, steps, _ = doctor(capsys, world, path, "--warehouse", "WH")
    assert code == 0
    config = by_step(steps)["config"]
    assert config["status"] == "warn"
    assert "HVAULT_ADDR is deprecated; set VAULT_ADDR instead" in config["fix"]


@pytest.mark.parametrize(
    ("answer", "status", "detail", "fix"),
    [
        ({"initialized": True, "sealed": True, "standby": True, "version": "1.15.0"}, 200,
         "version 1.15.0, sealed", "vault operator unseal"),
        ({"initialized": False, "sealed": True, "version": "1.15.0"}, 200,
         "not initialized", "vault operator init"),
        ("<html>Bad Gateway</html>", 502,
         "answered HTTP 502 with text/html", "not at a web page or a failing proxy"),
    ],
)
def test_vault_health_problems(world, httpserver, monkeypatch, capsys, answer, status, detail, fix):
    """A sealed or uninitialised Vault, or a proxy's error page, fails the vault step."""
    if isinstance(answer, dict):
        httpserver.expect_request("/v1/sys/health").respond_with_json(answer, status=status)
    else:
        httpserver.expect_request("/v1/sys/health").respond_with_data(
            answer, status=status, content_type="text/html"
        )
    monkeypatch.setenv("VAULT_ADDR", httpserver.url_for("").rstrip("/"))
    monkeypatch.setenv("VAULT_TOKEN", "hvs.doctor-test-token-not-checked")
    code, steps, _ = doctor(capsys, world, "secret/snowflake/any")
    assert code == 1
    failed = _assert_failed_at(steps, "vault")
    assert detail in failed["detail"]
    assert fix in failed["fix"]


def test_tls_vault_needs_its_ca(openbao_tls, world, monkeypatch, capsys):
    """A TLS Vault whose CA is not trusted fails the vault step with the VAULT_CACERT fix;
    with --ca-cert it passes and says what it verified against."""
    monkeypatch.setenv("VAULT_ADDR", openbao_tls.addr)
    monkeypatch.setenv("VAULT_TOKEN", openbao_tls.create_token(policies=["default"]))
    code, steps, _ = doctor(capsys, world, "secret/snowflake/any")
    assert code == 1
    failed = _assert_failed_at(steps, "vault")
    assert failed["detail"].startswith(f"TLS verification failed for {openbao_tls.addr}")
    assert "VAULT_CACERT" in failed["fix"]
    code, steps, _ = doctor(capsys, world, "secret/snowflake/any", "--ca-cert", openbao_tls.ca_cert)
    vault = by_step(steps)["vault"]
    assert vault["status"] == "ok"
    assert vault["detail"].endswith(f"TLS verified against {openbao_tls.ca_cert}")


def test_missing_secret_path(world, vault_env, capsys):
    """Without a path argument or SNOWFLAKE_VAULT_PATH the config step fails and says so."""
    code, steps, _ = doctor(capsys, world)
    assert code == 1
    assert "SNOWFLAKE_VAULT_PATH" in _assert_failed_at(steps, "config")["fix"]


def test_bad_secret_id(world, vault_env, monkeypatch, capsys):
    """A refused AppRole login fails the auth step with advice on the secret_id."""
    _, path = world.user(password=PASSWORD)
    bad = "6a1b2c3d-0000-4bad-8bad-0123456789ab"
    monkeypatch.setenv("VAULT_SECRET_ID", bad)
    code, steps, output = doctor(capsys, world, path)
    assert code == 1
    failed = _assert_failed_at(steps, "auth")
    assert "Login at auth/approle/login was refused" in failed["detail"]
    assert "VAULT_SECRET_ID" in failed["fix"]
    assert "secret-id" in failed["fix"]
    assert_no_secrets(output, bad, PASSWORD)


def test_secret_not_found(world, vault_env, capsys):
    """A path with no secret fails the secret step with how to write it."""
    code, steps, _ = doctor(capsys, world, "secret/snowflake/nobody-here")
    assert code == 1
    failed = _assert_failed_at(steps, "secret")
    assert "No secret at secret/snowflake/nobody-here" in failed["detail"]
    assert "vault kv put secret/snowflake/nobody-here" in failed["fix"]


def test_secret_not_readable(world, vault_env, capsys):
    """A path the role's policy does not cover fails the secret step asking for 'read'."""
    world.vault.kv_put("secret", "elsewhere/doctor", {"user": "X", "password": PASSWORD})
    code, steps, _ = doctor(capsys, world, "secret/elsewhere/doctor")
    assert code == 1
    failed = _assert_failed_at(steps, "secret")
    assert "Permission denied" in failed["detail"]
    # The library's fix: the KV v2 policy path, and the HCL that grants it.
    assert "grant 'read' on secret/data/elsewhere/doctor" in failed["fix"]
    assert 'path "secret/data/elsewhere/doctor" { capabilities = ["read"] }' in failed["fix"]


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        pytest.param(
            {"account": "testaccount", "user": "X"},
            ["has none of 'private_key', 'token' or 'password'", "key-pair is recommended",
             "Fields present: account, user."],
            id="no password or key",
        ),
        pytest.param(
            {"account": "testaccount", "password": PASSWORD},
            ["has no 'user' field", "vault kv patch {path} user=", "Fields present: account, "
             "password."],
            id="no user",
        ),
        pytest.param(
            {"account": "testaccount", "user": "X", "password": PASSWORD, "role": 7},
            ["Field 'role' of secret {path} is a int, not text", "store it as a string",
             "vault kv patch {path} role="],
            id="a field not text",
        ),
        pytest.param(
            {"account": "testaccount", "user": " ", "password": PASSWORD},
            ["has no 'user' field"],
            id="an empty user",
        ),
    ],
)
def test_incomplete_secret_fails_with_the_runtime_message(world, vault_env, capsys, fields, says):
    """A secret get_snowflake_connection() would refuse fails the secret step with the same
    message (what is wrong and the command that fixes it), never a credential's value."""
    path = f"secret/snowflake/doctor-bad-{next(_ids)}"
    world.vault.kv_put("secret", path.split("/", 1)[1], fields)
    code, steps, output = doctor(capsys, world, path)
    assert code == 1
    failed = _assert_failed_at(steps, "secret")
    for text in says:
        assert text.format(path=path) in failed["detail"]
    assert f"vault kv patch {path} <field>=<value>" in failed["fix"]
    assert "private_key=@rsa_key.p8" in failed["fix"]
    assert_no_secrets(output, PASSWORD)


def test_secret_without_an_account(world, vault_env, capsys):
    """No account in the secret, SNOWFLAKE_ACCOUNT or --account fails the secret step,
    naming all three, with the fields the secret has."""
    path = f"secret/snowflake/doctor-bad-{next(_ids)}"
    world.vault.kv_put("secret", path.split("/", 1)[1], {"user": "X", "password": PASSWORD})
    code, steps, _ = doctor(capsys, world, path)
    assert code == 1
    failed = _assert_failed_at(steps, "secret")
    assert f"{path} has fields password, user; no 'account', SNOWFLAKE_ACCOUNT" in failed["detail"]
    assert f"vault kv patch {path} account=" in failed["fix"]


def test_key_and_password_warns_that_the_password_is_ignored(world, vault_env, rsa_key, capsys):
    """A secret with both a key and a password passes with a warning: the key is used."""
    user, path = world.user(key=rsa_key, password=PASSWORD, warehouse="WH")
    code, steps, output = doctor(capsys, world, path)
    assert code == 0
    secret = by_step(steps)["secret"]
    assert secret["status"] == "warn"
    assert f"key pair authentication as user {user}" in secret["detail"]
    assert "(the password field is ignored)" in secret["detail"]
    assert f"drop the password from {path}" in secret["fix"]
    assert_no_secrets(output, PASSWORD, pem(rsa_key))


def test_wrong_passphrase(world, vault_env, rsa_key, capsys):
    """A wrong passphrase fails the key step and points at private_key_passphrase."""
    encrypted = pem(rsa_key, PASSPHRASE.encode())
    _, path = world.user(
        key=rsa_key, private_key=encrypted, private_key_passphrase="not-" + PASSPHRASE
    )
    code, steps, output = doctor(capsys, world, path)
    assert code == 1
    failed = _assert_failed_at(steps, "key")
    assert "passphrase" in failed["detail"]
    assert "is wrong" in failed["detail"]
    assert f"Correct field 'private_key_passphrase' of {path}" in failed["fix"]
    assert_no_secrets(output, encrypted, PASSPHRASE, "not-" + PASSPHRASE)


@pytest.mark.parametrize(
    ("problem", "detail", "fix"),
    [
        ("no passphrase", "is encrypted", "Add the key's passphrase: vault kv patch {path} "
         "private_key_passphrase="),
        ("Ed25519", "of type Ed25519, which Snowflake cannot use", "Convert or replace the key"),
        ("truncated", "is incomplete", "Store the whole private key again: vault kv patch {path}"),
    ],
    ids=["no passphrase", "Ed25519", "truncated"],
)
def test_unusable_key_fails_the_key_step(world, vault_env, rsa_key, capsys, problem, detail, fix):
    """A key the runtime cannot use fails the key step with the runtime's message and a fix
    for that kind of problem, printing no key material."""
    if problem == "no passphrase":
        stored = pem(rsa_key, PASSPHRASE.encode())
    elif problem == "Ed25519":
        from cryptography.hazmat.primitives.asymmetric import ed25519

        stored = pem(ed25519.Ed25519PrivateKey.generate())
    else:
        stored = "\n".join(pem(rsa_key).splitlines()[:6])
    _, path = world.user(key=rsa_key, private_key=stored)
    code, steps, output = doctor(capsys, world, path)
    assert code == 1
    failed = _assert_failed_at(steps, "key")
    assert detail in failed["detail"]
    assert fix.format(path=path) in failed["fix"]
    assert_no_secrets(output, stored)


def test_snowflake_rejects_the_key(world, vault_env, rsa_key, other_rsa_key, capsys):
    """A key Snowflake does not know fails the login step; the fix names DESC USER and the
    stored key's fingerprint, and Snowflake saw exactly one attempt."""
    user, path = world.user(key=other_rsa_key, private_key=pem(rsa_key), warehouse="WH")
    code, steps, output = doctor(capsys, world, path)
    assert code == 1
    failed = _assert_failed_at(steps, "login")
    assert "390144" in failed["detail"]
    assert "JWT token is invalid" in failed["detail"]
    fingerprint = public_key_fingerprint(rsa_key.public_key())
    assert f"DESC USER {user}" in failed["fix"]
    assert fingerprint in failed["fix"]
    assert fingerprint in by_step(steps)["key"]["detail"]
    assert world.snowflake.failed_login_count(user) == 1
    assert_no_secrets(output, pem(rsa_key), vault_env["VAULT_SECRET_ID"])


def test_snowflake_rejects_the_password(world, vault_env, capsys):
    """A password Snowflake does not accept fails the login step with advice on the password."""
    user, path = world.user(password=PASSWORD)
    world.vault.kv_put(
        "secret", path.split("/", 1)[1],
        {"account": world.snowflake.account, "user": user, "password": "stale-" + PASSWORD},
    )
    code, steps, output = doctor(capsys, world, path)
    assert code == 1
    failed = _assert_failed_at(steps, "login")
    assert "390100" in failed["detail"]
    assert f"rejected the password of user {user}" in failed["fix"]
    assert_no_secrets(output, PASSWORD, "stale-" + PASSWORD)


def _client(world) -> VaultClient:
    role_id, secret_id = world.vault.approle(f"doctor-{next(_ids)}", policies=["snowflake"])
    return VaultClient(world.vault.addr, auth=AppRoleAuth(role_id, secret_id), retry=FAST_RETRY)


def test_clock_off_fails_key_pair_and_warns_for_password(world, rsa_key):
    """A clock 5 minutes off Vault's fails the clock step for key pair, and only warns for a
    password (which has no JWT to reject)."""
    kwargs = {k: v for k, v in world.snowflake.connect_kwargs().items() if k != "account"}
    skewed = lambda: time.time() + 300  # noqa: E731 - a clock five minutes fast
    _, key_path = world.user(key=rsa_key)
    steps = run_doctor(key_path, make_client=lambda: _client(world), environ={},
                       connect_kwargs=kwargs, clock=skewed)
    assert [s.status for s in steps] == ["ok"] * 5 + ["skip", "fail", "skip", "skip"]
    seconds = float(steps[6].detail.split()[2])
    assert 298 < seconds < 302
    assert "ahead of Vault's: key-pair login will fail" in steps[6].detail
    assert "NTP" in (steps[6].fix or "")
    _, password_path = world.user(password=PASSWORD)
    steps = run_doctor(password_path, make_client=lambda: _client(world), environ={},
                       connect_kwargs=kwargs, clock=skewed, snowflake_options={"warehouse": "W"})
    assert [s.status for s in steps] == ["ok"] * 4 + ["skip", "skip", "warn", "ok", "warn"]


def test_secret_in_a_lower_layer_error_is_scrubbed(world, rsa_key):
    """Even if the connector's error echoed the key or passphrase, the output would not."""
    encrypted = pem(rsa_key, PASSPHRASE.encode())
    _, path = world.user(key=rsa_key, private_key=encrypted, private_key_passphrase=PASSPHRASE)

    def leaky_connect(**kwargs):
        raise RuntimeError(f"login failed for {PASSPHRASE} with {encrypted} / {kwargs['user']}")

    steps = run_doctor(path, make_client=lambda: _client(world), environ={}, connect=leaky_connect)
    assert [s.status for s in steps][-2:] == ["fail", "skip"]
    out = io.StringIO()
    render_text(steps, out)
    assert "[REDACTED]" in steps[7].detail
    printed = out.getvalue() + json.dumps([s.as_dict() for s in steps])
    assert_no_secrets(printed, encrypted, PASSPHRASE)


def test_ascii_fallback_when_output_cannot_encode_marks():
    """A stream that cannot encode ✓ and ✗ gets + and x instead, and non-ASCII text replaced."""
    results = [
        StepResult(step="config", title="Configuration", status="ok", detail="fine"),
        StepResult(step="vault", title="Vault", status="fail", detail="café down", fix="start it"),
        StepResult(step="auth", title="Vault login", status="skip", detail="skipped"),
    ]
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    render_text(results, stream)
    lines = raw.getvalue().decode("ascii").splitlines()
    assert lines[0] == "+ Configuration  fine"
    assert lines[1] == "x Vault          caf? down"
    assert lines[2].strip() == "fix: start it"
    assert lines[3] == "- Vault login    skipped"


def test_console_entry_in_a_subprocess(world, vault_env, rsa_key):
    """`python -m gds_snowflake.cli doctor` exits 0 all green, with ASCII marks on an
    ASCII-only stdout, and prints no credential."""
    _, path = world.user(key=rsa_key, warehouse="WH")
    result = subprocess.run(
        [sys.executable, "-m", "gds_snowflake.cli", "doctor", path, *where(world)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PYTHONIOENCODING": "ascii"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line[:2] for line in lines[:9]] == ["+ "] * 5 + ["- "] + ["+ "] * 2 + ["! "]
    assert lines[10] == "All checks passed (1 with warnings)."
    assert_no_secrets(result.stdout + result.stderr, pem(rsa_key), vault_env["VAULT_SECRET_ID"])


def test_fractional_login_timeout_passes_on_either_connector_line(world, vault_env, capsys):
    """--login-timeout 2.5 reaches the connector as the whole number it takes (5.x refuses a
    float): every step passes (the session step warns only that the double cannot show
    the warehouse in effect)."""
    _, path = world.user(password=PASSWORD, warehouse="WH")
    code, steps, _ = doctor(capsys, world, path, "--login-timeout", "2.5")
    assert code == 0, steps
    assert statuses(steps) == ["ok"] * 4 + ["skip", "skip"] + ["ok"] * 2 + ["warn"]
    assert "NOT verified" in steps[-1]["detail"]


def test_a_refused_connection_argument_is_not_blamed_on_the_account(world):
    """An argument the connector refuses before sending anything (a login_timeout that is no
    number: 5.x's ProgrammingError, 4.x's ValueError) fails the login step with advice on
    the arguments, not on the account identifier."""
    _, path = world.user(password=PASSWORD)
    kwargs = {k: v for k, v in world.snowflake.connect_kwargs().items() if k != "account"}
    steps = run_doctor(path, make_client=lambda: _client(world), environ={},
                       connect_kwargs={**kwargs, "login_timeout": "soon"})
    failed = _assert_failed_at([s.as_dict() for s in steps], "login")
    assert "connection argument" in failed["fix"]
    assert "--login-timeout" in failed["fix"]
    assert "account identifier" not in failed["fix"]
