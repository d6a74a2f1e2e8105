"""userpass and LDAP auth against a real OpenBao server.

userpass logs in for real. OpenBao ships no ``ldap`` auth method (and there is no LDAP
directory here), so LDAP is tested in two honest halves: its login API, which Vault's
ldap method shares with userpass (POST ``auth/<mount>/login/<user>`` with a
``password``), against OpenBao's userpass mounted at ``ldap``; and the exact request
bytes plus Vault's LDAP refusal ("ldap operation failed: failed to bind as user")
against pytest-httpserver. A bind against a real LDAP server is not tested.

The password prompt is tested twice: in-process with an injected prompt (when it asks,
and what a re-login does), and end to end with ``gds-vault login`` on a pseudo-terminal,
where getpass must not echo what is typed.
"""

from __future__ import annotations

import itertools
import os
import pty
import select
import subprocess
import sys
import threading
import time

import pytest

from gds_vault import (
    LDAPAuth,
    UserpassAuth,
    VaultAuthError,
    VaultClient,
    VaultConfigError,
)
from tests.vault.conftest import FAST_RETRY
from tests.vault.test_fork import _in_child

RENEW = "auth/token/renew-self"
_users = itertools.count()


@pytest.fixture
def user(vault):
    """A fresh userpass user with the reader policy: (name, password, login path)."""

    def make(**options: object) -> tuple[str, str, str]:
        name = f"person{next(_users)}"
        password = f"pw-{name}-correct horse"
        vault.server.userpass(name, password, policies=["reader"], **options)
        return name, password, f"auth/userpass/login/{name}"

    return make


def env(vault, **variables: str) -> dict[str, str]:
    return {"VAULT_ADDR": vault.addr, "VAULT_AUTH_METHOD": "userpass", **variables}


def test_password_file_login_reads_a_secret(vault, make_client, user, tmp_path):
    """UserpassAuth with a password file logs in and reads."""
    name, password, _ = user()
    password_file = tmp_path / "password"
    password_file.write_text(password + "\n")
    client = make_client(UserpassAuth(name, password_file=password_file))
    assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"


def test_from_env_with_password_file_and_with_password(vault, user, tmp_path):
    """VAULT_AUTH_METHOD=userpass reads VAULT_USERNAME and VAULT_PASSWORD_FILE, or the less
    safe VAULT_PASSWORD; the status names the source, never the password."""
    name, password, _ = user()
    password_file = tmp_path / "password"
    password_file.write_text(password)
    for variables, source in (
        ({"VAULT_PASSWORD_FILE": str(password_file)}, f"the password file {password_file}"),
        ({"VAULT_PASSWORD": password}, "a password given in the environment or code"),
    ):
        with VaultClient.from_env(env(vault, VAULT_USERNAME=name, **variables)) as client:
            assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"
            status = client.token_status()
        assert status.source == f"user {name!r} on auth/userpass, {source}"
        assert password not in repr(client.auth)


def test_auth_mount_is_configurable(vault, tmp_path):
    """VAULT_AUTH_MOUNT moves the login to another userpass mount."""
    vault.server.userpass("mounted", "pw-mounted-elsewhere", policies=["reader"], mount="people")
    password_file = tmp_path / "password"
    password_file.write_text("pw-mounted-elsewhere")
    variables = {"VAULT_USERNAME": "mounted", "VAULT_PASSWORD_FILE": str(password_file)}
    with VaultClient.from_env(env(vault, VAULT_AUTH_MOUNT="people", **variables)) as client:
        assert client.auth.mount == "people"
        assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"


def test_user_name_with_dot_and_dash(vault, make_client):
    """A service-style user name (dots, dashes) logs in (quoting: see the LDAP tests)."""
    vault.server.userpass("svc.etl-1", "pw-dotted-user-1", policies=["reader"])
    client = make_client(UserpassAuth("svc.etl-1", "pw-dotted-user-1"))
    assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"


def test_wrong_password_is_an_auth_error_without_the_password(vault, make_client, user):
    """A wrong password is a VaultAuthError naming the user and where the password came
    from, never the password."""
    name, _, _ = user()
    wrong = "pw-not-the-right-one"
    with pytest.raises(VaultAuthError) as info:
        make_client(UserpassAuth(name, wrong)).login()
    message = str(info.value)
    assert f"VAULT_USERNAME={name!r}" in message
    assert "VAULT_PASSWORD" in message
    assert wrong not in message


def test_missing_username_is_a_config_error(vault):
    """VAULT_AUTH_METHOD=userpass (or ldap) without VAULT_USERNAME names the variable."""
    for method in ("userpass", "ldap"):
        with pytest.raises(VaultConfigError, match="needs VAULT_USERNAME"):
            VaultClient.from_env(env(vault, VAULT_AUTH_METHOD=method, VAULT_PASSWORD="x" * 8))


def test_unreadable_password_file_is_a_config_error(make_client, tmp_path):
    """A password file that cannot be read names the file and VAULT_PASSWORD_FILE."""
    missing = tmp_path / "no-such-password"
    with pytest.raises(VaultConfigError, match="VAULT_PASSWORD_FILE") as info:
        make_client(UserpassAuth("alice", password_file=missing)).login()
    assert str(missing) in str(info.value)


def test_both_password_variables_is_a_config_error(vault, tmp_path):
    """VAULT_PASSWORD and VAULT_PASSWORD_FILE together are refused, not guessed between."""
    variables = {"VAULT_PASSWORD": "pw-one-of-two", "VAULT_PASSWORD_FILE": str(tmp_path / "p")}
    with pytest.raises(VaultConfigError, match="keep only one"):
        VaultClient.from_env(env(vault, VAULT_USERNAME="alice", **variables))


def test_username_without_auth_method_is_not_guessed(vault):
    """VAULT_USERNAME alone does not pick userpass or ldap: the error says to choose."""
    with pytest.raises(VaultConfigError, match="VAULT_AUTH_METHOD to userpass or ldap"):
        VaultClient.from_env({"VAULT_ADDR": vault.addr, "VAULT_USERNAME": "alice"})


# -- the prompt --------------------------------------------------------------------------


class Typist:
    """A prompt that answers with the next of ``answers`` and records each question."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.questions: list[str] = []

    def __call__(self, question: str) -> str:
        self.questions.append(question)
        return self.answers.pop(0)


def test_prompt_asks_once_and_relogins_reuse_the_typed_password(vault, make_client, user):
    """The password is asked at the first login only; later logins (here forced) re-use it."""
    name, password, login_path = user()
    typist = Typist(password)
    client = make_client(UserpassAuth(name, prompt=typist))
    mark = vault.server.mark()
    client.login()
    client.login()
    assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"
    assert len(vault.server.requests_since(mark, login_path)) == 2
    assert typist.questions == [f"Vault password for {name} (auth/userpass at {vault.addr}): "]
    assert client.token_status().source.endswith("a password typed at the prompt")


def test_a_typo_is_asked_again_at_the_next_call(vault, make_client, user):
    """A wrong password typed before any login succeeded is forgotten: the next call asks."""
    name, password, _ = user()
    typist = Typist("pw-typo-typo", password)
    client = make_client(UserpassAuth(name, prompt=typist))
    with pytest.raises(VaultAuthError, match="the password typed"):
        client.login()
    client.login()
    assert len(typist.questions) == 2


def test_no_second_prompt_once_a_typed_password_has_worked(vault, make_client, user):
    """After a login with the typed password, a refusal (password changed) is an error
    saying so, not a new prompt that nobody may be there to answer."""
    name, password, _ = user()
    typist = Typist(password, "never asked")
    client = make_client(UserpassAuth(name, prompt=typist), cache_ttl=0)
    client.get_secret("secret/snowflake/etl")
    vault.server.api("POST", f"auth/userpass/users/{name}/password", {"password": "pw-rotated-1"})
    vault.server.revoke_token(client._tokens.current())
    with pytest.raises(VaultAuthError, match="no longer accepted"):
        client.get_secret("secret/snowflake/etl")
    assert len(typist.questions) == 1


def test_no_terminal_means_a_config_error_naming_the_file_variable(vault):
    """Without a password and with no terminal or notebook, the login fails with a
    VaultConfigError saying to set VAULT_PASSWORD_FILE (pytest's stdin is no terminal)."""
    with VaultClient.from_env(env(vault, VAULT_USERNAME="alice")) as client:
        with pytest.raises(VaultConfigError, match="VAULT_PASSWORD_FILE"):
            client.login()


def _gds_vault_login_on_a_terminal(environ: dict[str, str], typed: str) -> tuple[int, str]:
    """Run ``gds-vault login`` with a pseudo-terminal as its controlling terminal, type
    ``typed`` when the password is asked, and return its exit code and everything the
    terminal showed."""
    primary, secondary = pty.openpty()
    # The child becomes a session leader (start_new_session) and opens the terminal by
    # name, which makes it its controlling terminal: getpass then reads from /dev/tty.
    launcher = (
        "import os, sys; fd = os.open(sys.argv[1], os.O_RDWR); "
        "[os.dup2(fd, n) for n in (0, 1, 2)]; "
        "os.execv(sys.executable, [sys.executable, '-m', 'gds_vault.cli', 'login'])"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", launcher, os.ttyname(secondary)],
        env=environ,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # The secondary end stays open here until the end: closed before the child opens it,
    # the terminal would hang up at once.
    shown = b""
    answered = False
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            running = process.poll() is None
            ready, _, _ = select.select([primary], [], [], 0.2)
            if ready:
                shown += os.read(primary, 4096)
            elif not running:
                break  # exited, and everything it wrote has been read
            if not answered and b"Vault password for" in shown:
                os.write(primary, typed.encode() + b"\n")
                answered = True
    finally:
        if process.poll() is None:
            process.kill()
        code = process.wait(timeout=30)
        os.close(primary)
        os.close(secondary)
    return code, shown.decode(errors="replace")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_gds_vault_login_asks_on_the_terminal_without_echo(vault, user):
    """At a terminal, ``gds-vault login`` with only VAULT_USERNAME asks for the password with
    getpass: the login works and the terminal never shows what was typed."""
    name, password, _ = user()
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VAULT_")},
        **env(vault, VAULT_USERNAME=name),
    }
    code, shown = _gds_vault_login_on_a_terminal(environ, password)
    assert code == 0, shown
    assert f"Vault password for {name}" in shown
    assert "Logged in to" in shown
    assert "a password typed at the prompt" in shown
    assert password not in shown


# -- threads, fork, renewal ----------------------------------------------------------------


def test_threads_cause_one_userpass_login(vault, make_client, user):
    """16 threads needing a token at once cause one login (and one prompt)."""
    name, password, login_path = user()
    typist = Typist(password)
    client = make_client(UserpassAuth(name, prompt=typist), cache_ttl=0)
    mark = vault.server.mark()
    barrier = threading.Barrier(16)
    results: list[object] = []

    def work() -> None:
        barrier.wait()
        results.append(client.get_secret("secret/snowflake/etl", key="user"))

    threads = [threading.Thread(target=work) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == ["ETL"] * 16
    assert len(vault.server.requests_since(mark, login_path)) == 1
    assert len(typist.questions) == 1


def test_forked_child_reuses_the_token(vault, make_client, user):
    """A child forked after the login reads with the parent's token: no login, no prompt."""
    name, password, login_path = user()
    client = make_client(UserpassAuth(name, prompt=Typist(password)), cache_ttl=0)
    client.login()
    mark = vault.server.mark()
    assert _in_child(lambda: client.get_secret("secret/team-a/app") == {"token": "abc"}) == 0
    assert vault.server.requests_since(mark, login_path) == []


def test_renewal_then_relogin_rereads_the_password_file(vault, make_client, user, tmp_path):
    """A 3 s token (max 4 s) is renewed, the renewal comes back capped, and the client logs
    in again, reading the password file afresh (it was rotated meanwhile)."""
    name, password, login_path = user(token_ttl="3s", token_max_ttl="4s")
    password_file = tmp_path / "password"
    password_file.write_text(password)
    client = make_client(UserpassAuth(name, password_file=password_file), cache_ttl=0)
    client.get_secret("secret/snowflake/etl")
    vault.server.api("POST", f"auth/userpass/users/{name}/password", {"password": "pw-rotated-2"})
    password_file.write_text("pw-rotated-2")
    mark = vault.server.mark()
    time.sleep(2.1)
    assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"
    assert len(vault.server.requests_since(mark, RENEW)) == 1
    assert len(vault.server.requests_since(mark, login_path)) == 1


# -- LDAP ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ldap_mount(vault):
    """OpenBao's userpass method mounted at ``ldap``: it serves the same login API as
    Vault's ldap method (POST auth/ldap/login/<user> with a password), which OpenBao
    does not ship."""
    vault.server.userpass("ldap.person", "pw-ldap-person-1", policies=["reader"], mount="ldap")
    return "ldap"


def test_ldap_login_through_the_ldap_login_api(vault, make_client, ldap_mount, tmp_path):
    """LDAPAuth posts the password to auth/ldap/login/<user> and gets a token."""
    password_file = tmp_path / "ldap-password"
    password_file.write_text("pw-ldap-person-1")
    mark = vault.server.mark()
    client = make_client(LDAPAuth("ldap.person", password_file=password_file))
    assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"
    [entry] = vault.server.requests_since(mark, "auth/ldap/login/ldap.person")
    assert set(entry["request"]["data"]) == {"password"}  # the value is HMAC'd by the audit


def test_ldap_from_env(vault, ldap_mount, tmp_path):
    """VAULT_AUTH_METHOD=ldap builds an LDAPAuth on the ldap mount, which logs in."""
    password_file = tmp_path / "ldap-password"
    password_file.write_text("pw-ldap-person-1")
    variables = {"VAULT_USERNAME": "ldap.person", "VAULT_PASSWORD_FILE": str(password_file)}
    with VaultClient.from_env(
        env(vault, VAULT_AUTH_METHOD="ldap", **variables), retry=FAST_RETRY
    ) as client:
        assert isinstance(client.auth, LDAPAuth)
        assert (client.auth.name, client.auth.mount) == ("ldap", "ldap")
        assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"


@pytest.mark.parametrize(
    ("username", "path"),
    [
        ("alice@example.com", "/v1/auth/ldap/login/alice@example.com"),
        ("Alice Smith", "/v1/auth/ldap/login/Alice%20Smith"),
        ("a/b?c", "/v1/auth/ldap/login/a%2Fb%3Fc"),
    ],
)
def test_ldap_request_shape_and_vaults_ldap_refusal(httpserver, username, path):
    """The exact request (a user principal name or a name with spaces stays one quoted path
    segment; the body is only the password; no token is sent), and Vault's answer when
    its LDAP bind fails becomes a VaultAuthError pointing at the user, the password and the
    LDAP server, never the password."""
    import json
    import re

    from werkzeug.wrappers import Response

    seen: list[tuple[str, dict[str, object], str | None]] = []

    def vault_ldap(request):
        raw_path = request.environ.get("RAW_URI") or request.environ["REQUEST_URI"]
        seen.append(
            (raw_path, json.loads(request.get_data()), request.headers.get("X-Vault-Token"))
        )
        body = {"errors": ["ldap operation failed: failed to bind as user"]}
        return Response(json.dumps(body), 400, content_type="application/json")

    httpserver.expect_request(re.compile(".*"), method="POST").respond_with_handler(vault_ldap)
    with (
        VaultClient(
            httpserver.url_for("").rstrip("/"),
            auth=LDAPAuth(username, "pw-ldap-sent-once"),
            retry=FAST_RETRY,
        ) as client,
        pytest.raises(VaultAuthError) as info,
    ):
        client.login()
    assert seen == [(path, {"password": "pw-ldap-sent-once"}, None)]
    message = str(info.value)
    assert "ldap operation failed: failed to bind as user" in message
    assert f"VAULT_USERNAME={username!r}" in message and "LDAP server" in message
    assert "pw-ldap-sent-once" not in message
