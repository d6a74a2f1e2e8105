"""`gds-snowflake doctor` with token credentials: the token step, advice, nothing printed."""

from __future__ import annotations

import base64
import json
import time

import pytest

from tests.reliability.hygiene import register

from .test_doctor import (  # noqa: F401 - vault_env is a fixture
    PASSWORD,
    _assert_failed_at,
    assert_no_secrets,
    by_step,
    doctor,
    statuses,
    vault_env,
)

pytestmark = pytest.mark.timeout(60)


def _jwt(expires_in: float) -> str:
    """An OAuth access token shaped as a JWT (what External OAuth issues), with its exp."""

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {"sub": "ETL", "scp": "session:role:ETL", "exp": int(time.time() + expires_in)}
    token = f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJlLW5vdC1jaGVja2Vk"
    register(token)
    return token


def _oauth_user(world, token: str) -> tuple[str, str]:
    user, path = world.user()
    world.snowflake.issue_oauth_token(user, token=token)
    world.vault.kv_put(
        "secret",
        path.split("/", 1)[1],
        {"account": world.snowflake.account, "user": user, "token": token, "authenticator": "oauth"},
    )
    return user, path


def test_pat_passes_every_step_and_says_what_to_check(world, vault_env, capsys):
    """A PAT secret: the key step is not needed, the token step gives kind and length and
    what to check in Snowflake, the login names the kind; the token is never printed."""
    user, path, token = world.token_user("pat", warehouse="WH")
    code, steps, output = doctor(capsys, world, path)
    assert code == 0, steps
    assert statuses(steps) == ["ok"] * 4 + ["skip"] + ["ok"] * 3 + ["warn"]
    found = by_step(steps)
    assert f"programmatic access token authentication as user {user}" in found["secret"]["detail"]
    assert "not needed: the login uses a programmatic access token" in found["key"]["detail"]
    detail = found["token"]["detail"]
    assert detail.startswith(f"programmatic access token, {len(token)} characters, one line; ")
    assert f"SHOW USER PROGRAMMATIC ACCESS TOKENS FOR USER {user}" in detail
    assert "network policy" in detail
    assert f"as {user} with programmatic access token in" in found["login"]["detail"]
    assert_no_secrets(output, token, vault_env["VAULT_SECRET_ID"])


def test_oauth_jwt_shows_its_expiry(world, vault_env, capsys):
    """An OAuth token shaped as a JWT: the token step reads its exp (unverified) and says
    how long it has left."""
    token = _jwt(expires_in=3 * 3600)
    _, path = _oauth_user(world, token)
    code, steps, output = doctor(capsys, world, path, "--warehouse", "WH")
    assert code == 0, steps
    detail = by_step(steps)["token"]["detail"]
    assert detail.startswith(f"OAuth token, {len(token)} characters, one line; expires in 3 h")
    assert "something other than this library must keep it fresh" in detail
    assert "with OAuth token in" in by_step(steps)["login"]["detail"]
    assert_no_secrets(output, token)


def test_expired_oauth_jwt_fails_before_the_login(world, vault_env, capsys):
    """An OAuth JWT whose exp has passed fails the token step, naming its refresher, and no
    login is tried (so none is refused)."""
    token = _jwt(expires_in=-2 * 3600)
    user, path = _oauth_user(world, token)
    code, steps, output = doctor(capsys, world, path)
    assert code == 1
    failed = _assert_failed_at(steps, "token")
    assert "it expired 2 h ago (its exp claim)" in failed["detail"]
    assert f"Whatever refreshes the OAuth access token in {path}" in failed["fix"]
    assert world.snowflake.login_count(user) == world.snowflake.failed_login_count(user) == 0
    assert_no_secrets(output, token)


def test_oauth_jwt_about_to_expire_warns(world, vault_env, capsys):
    """Less than ten minutes left is a warning with the same fix; the login still runs."""
    token = _jwt(expires_in=240)
    _, path = _oauth_user(world, token)
    code, steps, _ = doctor(capsys, world, path, "--warehouse", "WH")
    assert code == 0
    found = by_step(steps)["token"]
    assert found["status"] == "warn"
    assert "expires in 4 min" in found["detail"] or "expires in 240 s" in found["detail"]
    assert "refresh" in found["fix"]


def test_revoked_pat_fails_the_login_with_pat_advice(world, vault_env, capsys):
    """A PAT removed in Snowflake: one refused login, and the fix names expiry, rotation
    and the network policy, with the commands to check and replace it."""
    user, path, token = world.token_user("pat")
    world.snowflake.revoke_pat(user)
    code, steps, output = doctor(capsys, world, path)
    assert code == 1
    failed = _assert_failed_at(steps, "login")
    assert "394400" in failed["detail"]
    assert "Programmatic access token is invalid." in failed["detail"]
    assert "expired, been rotated or removed" in failed["fix"]
    assert "network policy" in failed["fix"]
    assert f"vault kv patch {path} token=@pat.txt" in failed["fix"]
    assert world.snowflake.failed_login_count(user) == 1
    assert_no_secrets(output, token)


def test_expired_oauth_token_fails_the_login_saying_so(world, vault_env, capsys):
    """An opaque OAuth token Snowflake says expired (390318): the fix says it expired and
    that its refresher must write a new one."""
    user, path, token = world.token_user("oauth")
    world.snowflake.expire_oauth_tokens(user)
    code, steps, output = doctor(capsys, world, path)
    assert code == 1
    failed = _assert_failed_at(steps, "login")
    assert "390318" in failed["detail"]
    assert f"The OAuth access token in {path} has expired" in failed["fix"]
    assert_no_secrets(output, token)


def test_unused_credentials_are_named_as_ignored(world, vault_env, rsa_key, capsys):
    """A token beside a password, or a key beside a token: the secret step warns which
    field is not used, and the fix says to drop it."""
    user, path, token = world.token_user("pat", password=PASSWORD, warehouse="WH")
    code, steps, output = doctor(capsys, world, path)
    assert code == 0
    secret = by_step(steps)["secret"]
    assert secret["status"] == "warn"
    assert "(the password field is ignored)" in secret["detail"]
    assert f"drop the password from {path}" in secret["fix"]
    assert_no_secrets(output, token, PASSWORD)
    key_user, key_path = world.user(key=rsa_key, token="leftover-token-not-checked", warehouse="WH")
    code, steps, _ = doctor(capsys, world, key_path)
    assert code == 0
    assert "(the token field is ignored)" in by_step(steps)["secret"]["detail"]
    assert by_step(steps)["token"]["status"] == "skip"
    assert "with key pair" in by_step(steps)["login"]["detail"]
    assert world.snowflake.login_count(key_user) == 1


def test_token_with_a_line_break_fails_the_secret_step(world, vault_env, capsys):
    """A token wrapped over two lines fails the secret step with the runtime's message."""
    user, path, token = world.token_user("pat")
    broken = token[:30] + "\n" + token[30:]
    world.vault.kv_put(
        "secret",
        path.split("/", 1)[1],
        {"account": world.snowflake.account, "user": user, "token": broken},
    )
    code, steps, output = doctor(capsys, world, path)
    assert code == 1
    failed = _assert_failed_at(steps, "secret")
    assert "contains a line break at character 31" in failed["detail"]
    assert_no_secrets(output, token[:30], token[30:])
