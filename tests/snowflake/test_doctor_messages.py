"""The doctor on the rows of issue 17: its fix is the library's, its advice is not cut by
its own redaction, and the warehouse asked for is checked against the one in effect."""

from __future__ import annotations

import contextlib
import io
import itertools
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from gds_snowflake.cli import render_text
from gds_snowflake.doctor import run_doctor
from gds_vault import AppRoleAuth, VaultClient

from .conftest import FAST_RETRY
from .test_doctor import PASSWORD, _assert_failed_at, by_step, doctor

pytestmark = pytest.mark.timeout(60)

_ids = itertools.count()


@pytest.fixture
def approle_env(world, monkeypatch) -> dict[str, str]:
    role_id, secret_id = world.vault.approle(f"doctor-msg-{next(_ids)}", policies=["snowflake"])
    env = {"VAULT_ADDR": world.vault.addr, "VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def _library_error(world, env: dict[str, str], path: str) -> Any:
    """What get_secret raises for the same client settings (the library's own message)."""
    with VaultClient.from_env(env, retry=FAST_RETRY) as client:
        with pytest.raises(Exception) as info:
            client.get_secret(path)
    return info.value


def test_scheme_mismatch_fix_is_the_librarys(world, approle_env, monkeypatch, capsys):
    """https:// against the plain-HTTP server: the vault step's fix is to use http://, as
    the library says, not to set VAULT_CACERT."""
    wrong = world.vault.addr.replace("http://", "https://")
    monkeypatch.setenv("VAULT_ADDR", wrong)
    code, steps, _ = doctor(capsys, world, "secret/snowflake/any")
    assert code == 1
    failed = _assert_failed_at(steps, "vault")
    assert failed["fix"].startswith(f"Set VAULT_ADDR to {world.vault.addr}:")
    assert "does not speak TLS" in failed["detail"]
    library = _library_error(world, {**approle_env, "VAULT_ADDR": wrong}, "secret/snowflake/any")
    assert failed["fix"] == library.fix


def test_data_path_denied_says_drop_data_and_never_kv_put_there(world, approle_env, capsys):
    """`secret/data/snowflake/x` under a policy granting `secret/data/snowflake/*`: the secret
    step says to drop data/ (the library's fix), asks for no grant and suggests no
    `vault kv put` at a data/ path."""
    user, path = world.user(password=PASSWORD)
    hand_written = path.replace("secret/", "secret/data/", 1)
    code, steps, _ = doctor(capsys, world, hand_written)
    assert code == 1
    failed = _assert_failed_at(steps, "secret")
    assert failed["fix"].startswith(f"Drop data/ from the path: read '{path}'")
    assert "kv put" not in failed["fix"] and "grant" not in failed["fix"]
    assert "data/data" not in failed["fix"]
    assert failed["fix"] == _library_error(world, approle_env, hand_written).fix
    code, steps, _ = doctor(capsys, world, path, "--warehouse", "WH")  # the fix, followed
    assert code == 0


def test_kv1_path_denied_names_the_v1_policy_path(world, approle_env, capsys):
    """A KV v1 mount the policy does not cover: the fix names `<mount>/<path>` for v1, and
    `<mount>/data/<path>` only as the v2 alternative, in the library's words."""
    with contextlib.suppress(Exception):
        world.vault.enable_kv("kv1doc", version=1)
    world.vault.kv_put("kv1doc", "snowflake/etl", {"user": "X", "password": PASSWORD}, version=1)
    code, steps, _ = doctor(capsys, world, "kv1doc/snowflake/etl")
    assert code == 1
    failed = _assert_failed_at(steps, "secret")
    assert "'read' on kv1doc/snowflake/etl if kv1doc/ is KV version 1" in failed["fix"]
    assert failed["fix"] == _library_error(world, approle_env, "kv1doc/snowflake/etl").fix


def test_bad_token_beside_approle_says_which_won(world, approle_env, monkeypatch, capsys):
    """A bad VAULT_TOKEN beside AppRole variables: config says the token was chosen over
    VAULT_ROLE_ID, and the auth step's fix says how to choose AppRole."""
    monkeypatch.setenv("VAULT_TOKEN", "hvs.doctor-bad-token-0000000000")
    code, steps, _ = doctor(capsys, world, "secret/snowflake/any")
    assert code == 1
    assert "VAULT_ROLE_ID is set too but not used" in by_step(steps)["config"]["detail"]
    failed = _assert_failed_at(steps, "auth")
    assert "set VAULT_AUTH_METHOD=approle" in failed["fix"]


def test_ca_file_without_certificate_fails_config(world, approle_env, monkeypatch, tmp_path, capsys):
    """VAULT_CACERT naming a file with no certificate fails the config step, saying what the
    file holds; not the vault step telling to set VAULT_CACERT."""
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    monkeypatch.setenv("VAULT_CACERT", str(bogus))
    code, steps, _ = doctor(capsys, world, "secret/snowflake/any")
    assert code == 1
    failed = _assert_failed_at(steps, "config")
    assert f"The CA file '{bogus}'" in failed["detail"]
    assert "holds no PEM certificate" in failed["detail"]


def test_bao_variables_are_listed_and_used(world, monkeypatch, capsys):
    """With only BAO_ADDR and BAO_TOKEN (a shell set up for `bao`), the config step lists
    them, the token's source is BAO_TOKEN, and nothing warns."""
    _, path = world.user(password=PASSWORD)
    monkeypatch.setenv("BAO_ADDR", world.vault.addr)
    monkeypatch.setenv("BAO_TOKEN", world.vault.create_token(policies=["snowflake"]))
    code, steps, _ = doctor(capsys, world, path)
    config = by_step(steps)["config"]
    assert config["status"] == "ok"
    # (the suite sets SNOWFLAKE_DISABLE_PLATFORM_DETECTION for every test; it is listed too)
    assert config["detail"].startswith("BAO_ADDR, BAO_TOKEN, ")
    assert "VAULT_" not in config["detail"].split(" set;")[0]
    assert "; token auth (credentials from BAO_TOKEN);" in config["detail"]
    assert by_step(steps)["login"]["status"] == "ok"


def test_redaction_leaves_the_doctors_advice_whole(world, approle_env, rsa_key, capsys):
    """A public key stored as the private key: the key step's advice quotes the format
    "(-----BEGIN PRIVATE KEY-----)" whole, not cut by the doctor's own redaction."""
    public = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    _, path = world.user(key=rsa_key, private_key=public)
    code, steps, output = doctor(capsys, world, path)
    assert code == 1
    failed = _assert_failed_at(steps, "key")
    assert "needs the private key (-----BEGIN PRIVATE KEY-----); keep the public key" in failed["detail"]
    assert "[REDACTED]" not in failed["detail"] + failed["fix"]
    assert "private_key=@rsa_key.p8" in failed["fix"]
    for line in public.splitlines()[1:-1]:
        assert line not in output


# -- the warehouse asked for, against the one in effect ----------------------------------


class _Snowflake:
    """A session as Snowflake itself answers it, for what no local server can do: the double
    (fakesnow) has no current_warehouse() and accepts any name. ``in_effect`` is what
    current_warehouse(), current_database() and current_schema() return."""

    def __init__(self, in_effect: dict[str, str | None]) -> None:
        self.in_effect = in_effect
        self.statements: list[str] = []

    def __call__(self, **kwargs: Any) -> _Snowflake:
        self.kwargs = kwargs
        return self

    def cursor(self) -> _Snowflake:
        return self

    def execute(self, sql: str) -> _Snowflake:
        self.statements.append(sql)
        self._row: tuple[Any, ...] = (
            ("ETL", "ETL_ROLE", self.in_effect.get("warehouse"))
            if "current_warehouse" in sql
            else (self.in_effect.get("database"), self.in_effect.get("schema"))
        )
        return self

    def fetchone(self) -> tuple[Any, ...]:
        return self._row

    def close(self) -> None:
        pass


def _run(world, options: dict[str, str], in_effect: dict[str, str | None]) -> list[Any]:
    _, path = world.user(password=PASSWORD)
    role_id, secret_id = world.vault.approle(f"doctor-msg-{next(_ids)}", policies=["snowflake"])

    def client() -> VaultClient:
        return VaultClient(world.vault.addr, auth=AppRoleAuth(role_id, secret_id), retry=FAST_RETRY)

    return run_doctor(
        path, make_client=client, environ={}, snowflake_options=options, connect=_Snowflake(in_effect)
    )


def test_a_warehouse_that_does_not_exist_fails(world):
    """Snowflake logs in with a warehouse that does not exist and the session has none: the
    session step fails naming it, where it came from, and the grant (was: all passed)."""
    steps = _run(world, {"warehouse": "NOPE_WH"}, {"warehouse": None})
    session = steps[-1]
    assert session.status == "fail"
    assert "the warehouse asked for, NOPE_WH (--warehouse), is not in effect: the session has no warehouse" in session.detail
    assert "SHOW WAREHOUSES LIKE 'NOPE_WH'" in (session.fix or "")
    assert "GRANT USAGE ON WAREHOUSE NOPE_WH TO ROLE ETL_ROLE" in (session.fix or "")
    out = io.StringIO()
    render_text(steps, out)
    assert "All checks passed" not in out.getvalue()


def test_the_warehouse_in_effect_passes_case_insensitively(world):
    """An unquoted name matches Snowflake's upper-cased one; database and schema too."""
    steps = _run(
        world,
        {"warehouse": "etl_wh", "database": "analytics", "schema": "public"},
        {"warehouse": "ETL_WH", "database": "ANALYTICS", "schema": "PUBLIC"},
    )
    session = steps[-1]
    assert session.status == "ok", session
    assert session.detail.endswith("; warehouse, database, schema as asked")


def test_a_database_not_in_effect_fails(world):
    """A database that does not exist (current_database() NULL) fails the same way."""
    steps = _run(world, {"warehouse": "ETL_WH", "database": "NOPE_DB"}, {"warehouse": "ETL_WH", "database": None})
    assert steps[-1].status == "fail"
    assert "the database asked for, NOPE_DB (--database), is not in effect" in steps[-1].detail


def test_against_the_double_the_warehouse_is_said_unverified(world, approle_env, capsys):
    """The double cannot answer current_warehouse() and accepts any name: the step says the
    warehouse was not verified (a warning), rather than passing it."""
    _, path = world.user(password=PASSWORD)
    code, steps, _ = doctor(capsys, world, path, "--warehouse", "NOPE_WH")
    assert code == 0
    session = by_step(steps)["session"]
    assert session["status"] == "warn"
    assert "warehouse NOPE_WH NOT verified" in session["detail"]
    assert "not Snowflake itself" in session["detail"]
