"""VaultClient.from_env(): variables, auth selection, overrides, legacy names, validation.

Most tests pass ``environ={...}`` so that nothing depends on the machine; the ones about
reading ``os.environ`` at call time use monkeypatch. Where a setting changes what goes on
the wire (namespace, retries) a pytest-httpserver fake or the real server checks it.
"""

from __future__ import annotations

import warnings

import pytest

from gds_vault import (
    AppRoleAuth,
    JWTAuth,
    RetryPolicy,
    TokenAuth,
    VaultClient,
    VaultConfigError,
    VaultUnavailableError,
)

ADDR = "https://vault.example.com:8200"
TOKEN = "s.faketoken-not-real-xxxxxxxxx"
LOOKUP = "/v1/auth/token/lookup-self"
LOOKUP_ANSWER = {"data": {"ttl": 0, "renewable": False, "type": "service", "policies": ["x"]}}


@pytest.fixture
def clients():
    """Clients made by a test, closed afterwards (some hold a CA bundle file)."""
    made: list[VaultClient] = []
    yield made
    for client in made:
        client.close()


@pytest.fixture
def from_env(clients):
    """VaultClient.from_env, with every client it makes closed after the test."""

    def build(environ: dict[str, str] | None = None, **overrides: object) -> VaultClient:
        client = VaultClient.from_env(environ, **overrides)
        clients.append(client)
        return client

    return build


def env(**variables: str) -> dict[str, str]:
    """An environment with an address and a token, plus ``variables`` (None removes one)."""
    base = {"VAULT_ADDR": ADDR, "VAULT_TOKEN": TOKEN}
    base.update(variables)
    return {k: v for k, v in base.items() if v is not None}


# -- VAULT_ADDR ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "   "], ids=["missing", "empty", "blank"])
def test_missing_addr_names_vault_addr(value):
    """No (or an empty) VAULT_ADDR is a VaultConfigError naming VAULT_ADDR; no default."""
    environ = env(VAULT_ADDR=value)
    with pytest.raises(VaultConfigError, match="VAULT_ADDR is not set"):
        VaultClient.from_env(environ)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("vault.example.com:8200", "scheme"),
        ("ftp://vault.example.com", "scheme"),
        ("https://", "scheme"),
        ("https://vault.example.com:8200/v1", "path"),
        ("https://vault.example.com:8200/ui/", "path"),
        ("https://vault.example.com:8200?x=1", "path"),
        ("https://vault.example.com:99999", "port"),
    ],
)
def test_malformed_addr_is_config_error(value, expected):
    """An address without an http(s) scheme and host, with a path, or a bad port is refused."""
    with pytest.raises(VaultConfigError, match="VAULT_ADDR") as info:
        VaultClient.from_env(env(VAULT_ADDR=value))
    assert expected in str(info.value)


def test_addr_with_credentials_is_refused_without_echoing_them():
    """user:password@ in VAULT_ADDR is refused, and neither part appears in the message."""
    with pytest.raises(VaultConfigError, match="credentials") as info:
        VaultClient.from_env(env(VAULT_ADDR="https://etl-user:hunter2-secret@vault.example.com"))
    message = str(info.value)
    assert "hunter2-secret" not in message
    assert "etl-user" not in message


def test_addr_trailing_slash_is_dropped(from_env):
    """A trailing slash on VAULT_ADDR is accepted and removed."""
    assert from_env(env(VAULT_ADDR=ADDR + "/")).addr == ADDR


# -- auth selection ----------------------------------------------------------------------------


def test_vault_token_selects_token_auth(from_env):
    """VAULT_TOKEN alone selects TokenAuth with that token."""
    auth = from_env(env()).auth
    assert isinstance(auth, TokenAuth)
    assert auth.current_token() == TOKEN


def test_vault_token_file_selects_token_auth_from_file(from_env, tmp_path):
    """VAULT_TOKEN_FILE selects TokenAuth reading that file."""
    sink = tmp_path / "sink"
    sink.write_text(TOKEN + "\n")
    auth = from_env(env(VAULT_TOKEN=None, VAULT_TOKEN_FILE=str(sink))).auth
    assert isinstance(auth, TokenAuth)
    assert auth.token_file == str(sink)
    assert auth.current_token() == TOKEN


def test_role_and_secret_id_select_approle(from_env):
    """VAULT_ROLE_ID with VAULT_SECRET_ID selects AppRole on the default mount."""
    auth = from_env(env(VAULT_TOKEN=None, VAULT_ROLE_ID="rid", VAULT_SECRET_ID="sid")).auth
    assert isinstance(auth, AppRoleAuth)
    assert auth.mount == "approle"
    assert auth.secret_id_file is None
    assert auth.wrapped is False


def test_secret_id_file_selects_approle_with_file(from_env, tmp_path):
    """VAULT_SECRET_ID_FILE gives AppRole a secret_id file to read at each login."""
    path = tmp_path / "secret-id"
    path.write_text("sid")
    auth = from_env(env(VAULT_TOKEN=None, VAULT_ROLE_ID="rid", VAULT_SECRET_ID_FILE=str(path))).auth
    assert isinstance(auth, AppRoleAuth)
    assert auth.secret_id_file == str(path)


def test_wrapped_secret_id_and_auth_mount(from_env):
    """VAULT_SECRET_ID_WRAPPED and VAULT_AUTH_MOUNT reach the AppRole method."""
    auth = from_env(
        env(VAULT_TOKEN=None, VAULT_ROLE_ID="rid", VAULT_SECRET_ID="wrap",
            VAULT_SECRET_ID_WRAPPED="true", VAULT_AUTH_MOUNT="/ci-approle/")
    ).auth
    assert isinstance(auth, AppRoleAuth)
    assert auth.wrapped is True
    assert auth.mount == "ci-approle"


def test_role_id_without_secret_id_says_what_is_missing():
    """VAULT_ROLE_ID without a secret_id names both secret_id variables."""
    with pytest.raises(VaultConfigError, match="VAULT_SECRET_ID and VAULT_SECRET_ID_FILE"):
        VaultClient.from_env(env(VAULT_TOKEN=None, VAULT_ROLE_ID="rid"))


def test_jwt_role_and_file_select_jwt(from_env, tmp_path):
    """VAULT_JWT_ROLE with VAULT_JWT_FILE selects JWTAuth on the jwt mount."""
    jwt_file = tmp_path / "jwt"
    jwt_file.write_text("header.payload.signature")
    auth = from_env(
        env(VAULT_TOKEN=None, VAULT_JWT_ROLE="etl", VAULT_JWT_FILE=str(jwt_file))
    ).auth
    assert isinstance(auth, JWTAuth)
    assert auth.role == "etl"
    assert auth.jwt_file == str(jwt_file)
    assert auth.mount == "jwt"


def test_jwt_role_without_file_is_config_error():
    """VAULT_JWT_ROLE without VAULT_JWT_FILE names the missing variable."""
    with pytest.raises(VaultConfigError, match="VAULT_JWT_FILE"):
        VaultClient.from_env(env(VAULT_TOKEN=None, VAULT_JWT_ROLE="etl"))


def test_token_wins_when_several_methods_are_configured(from_env):
    """Without VAULT_AUTH_METHOD, a token is preferred over AppRole and JWT variables."""
    auth = from_env(env(VAULT_ROLE_ID="rid", VAULT_SECRET_ID="sid", VAULT_JWT_ROLE="etl")).auth
    assert isinstance(auth, TokenAuth)


@pytest.mark.parametrize(
    ("method", "kind", "mount"),
    [("approle", AppRoleAuth, "approle"), ("jwt", JWTAuth, "jwt"),
     ("kubernetes", JWTAuth, "kubernetes"), ("TOKEN", TokenAuth, None)],
)
def test_auth_method_picks_explicitly(from_env, tmp_path, method, kind, mount):
    """VAULT_AUTH_METHOD chooses the method even when others' variables are set too."""
    jwt_file = tmp_path / "jwt"
    jwt_file.write_text("header.payload.signature")
    auth = from_env(
        env(VAULT_AUTH_METHOD=method, VAULT_ROLE_ID="rid", VAULT_SECRET_ID="sid",
            VAULT_JWT_ROLE="etl", VAULT_JWT_FILE=str(jwt_file))
    ).auth
    assert type(auth) is kind
    assert auth.name == method.lower()
    if mount is not None:
        assert auth.mount == mount


def test_kubernetes_defaults_to_the_service_account_token():
    """VAULT_AUTH_METHOD=kubernetes without VAULT_JWT_FILE uses the pod's token file."""
    client = VaultClient.from_env(env(VAULT_TOKEN=None, VAULT_AUTH_METHOD="kubernetes",
                                      VAULT_JWT_ROLE="etl"))
    with client:
        assert client.auth.jwt_file == "/var/run/secrets/kubernetes.io/serviceaccount/token"


def test_auth_method_without_its_variables_is_config_error():
    """An explicit VAULT_AUTH_METHOD whose variables are missing says which are needed."""
    with pytest.raises(VaultConfigError, match="VAULT_ROLE_ID"):
        VaultClient.from_env(env(VAULT_AUTH_METHOD="approle"))
    with pytest.raises(VaultConfigError, match="VAULT_TOKEN"):
        VaultClient.from_env(env(VAULT_TOKEN=None, VAULT_AUTH_METHOD="token"))


def test_unknown_auth_method_lists_the_known_ones():
    """An unknown VAULT_AUTH_METHOD is refused with the valid choices."""
    with pytest.raises(VaultConfigError, match="VAULT_AUTH_METHOD") as info:
        VaultClient.from_env(env(VAULT_AUTH_METHOD="radius"))
    for known in ("token", "approle", "jwt", "kubernetes", "userpass", "ldap", "cert", "aws"):
        assert known in str(info.value)


def test_no_credentials_lists_the_options():
    """With an address but no credentials, the error lists every way to provide them."""
    with pytest.raises(VaultConfigError, match="No Vault credentials") as info:
        VaultClient.from_env({"VAULT_ADDR": ADDR})
    for variable in ("VAULT_TOKEN", "VAULT_TOKEN_FILE", "VAULT_ROLE_ID", "VAULT_SECRET_ID",
                     "VAULT_SECRET_ID_FILE", "VAULT_JWT_ROLE", "VAULT_JWT_FILE"):
        assert variable in str(info.value)


def test_env_token_and_approle_read_from_the_real_server(vault, from_env, tmp_path):
    """Clients built from VAULT_TOKEN, VAULT_TOKEN_FILE and AppRole variables all read."""
    token = vault.server.create_token(policies=["reader"])
    role_id, secret_id = vault.server.approle("from-env", policies=["reader"])
    sink = tmp_path / "sink"
    sink.write_text(token)
    secret_file = tmp_path / "secret-id"
    secret_file.write_text(vault.server.secret_id("from-env"))
    environs = [
        {"VAULT_TOKEN": token},
        {"VAULT_TOKEN_FILE": str(sink)},
        {"VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id},
        {"VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID_FILE": str(secret_file)},
    ]
    for environ in environs:
        client = from_env({"VAULT_ADDR": vault.addr, **environ})
        assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"


# -- other settings ------------------------------------------------------------------------------


def test_namespace_is_sent_as_header(httpserver, from_env):
    """VAULT_NAMESPACE goes out as X-Vault-Namespace on every request, slashes trimmed."""
    header = {"X-Vault-Namespace": "team-a/etl"}
    httpserver.expect_request(LOOKUP, headers=header).respond_with_json(LOOKUP_ANSWER)
    httpserver.expect_request("/v1/kv1/app", headers=header).respond_with_json({"data": {"x": "1"}})
    addr = httpserver.url_for("").rstrip("/")
    client = from_env(env(VAULT_ADDR=addr, VAULT_NAMESPACE="/team-a/etl/"))
    assert client.settings.namespace == "team-a/etl"
    assert client.read("kv1/app")["data"] == {"x": "1"}
    assert len(httpserver.log) == 2
    assert all(request.headers.get("X-Vault-Namespace") == "team-a/etl"
               for request, _ in httpserver.log)


def test_no_namespace_header_without_namespace(httpserver, from_env):
    """Without VAULT_NAMESPACE no X-Vault-Namespace header is sent."""
    httpserver.expect_request(LOOKUP).respond_with_json(LOOKUP_ANSWER)
    from_env(env(VAULT_ADDR=httpserver.url_for("").rstrip("/"))).login()
    assert len(httpserver.log) == 1
    assert "X-Vault-Namespace" not in httpserver.log[0][0].headers


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("5", 5.0), ("2.5", 2.5), ("5s", 5.0), ("2m", 120.0), ("500ms", 0.5), (" 7S ", 7.0)],
)
def test_client_timeout_from_env(from_env, value, seconds):
    """VAULT_CLIENT_TIMEOUT accepts seconds and Vault CLI durations, and reaches the transport."""
    client = from_env(env(VAULT_CLIENT_TIMEOUT=value))
    assert client.settings.timeout == seconds
    assert client._transport.timeout == seconds


@pytest.mark.parametrize("value", ["soon", "5x", "0", "-1", "-2m", "nan", "inf"])
def test_bad_client_timeout_names_the_variable(value):
    """A VAULT_CLIENT_TIMEOUT that is not a positive finite duration is refused by name."""
    with pytest.raises(VaultConfigError, match="VAULT_CLIENT_TIMEOUT"):
        VaultClient.from_env(env(VAULT_CLIENT_TIMEOUT=value))


@pytest.mark.parametrize(("value", "attempts"), [("0", 1), ("1", 2), ("5", 6)])
def test_max_retries_sets_attempts(from_env, value, attempts):
    """VAULT_MAX_RETRIES=n means n retries after the first try: attempts = n + 1."""
    assert from_env(env(VAULT_MAX_RETRIES=value)).settings.retry.attempts == attempts


def test_max_retries_zero_sends_one_request(httpserver, from_env):
    """With VAULT_MAX_RETRIES=0 a 503 is raised after a single request."""
    httpserver.expect_request(LOOKUP).respond_with_json({"errors": ["busy"]}, status=503)
    client = from_env(env(VAULT_ADDR=httpserver.url_for("").rstrip("/"), VAULT_MAX_RETRIES="0"))
    with pytest.raises(VaultUnavailableError):
        client.login()
    assert len(httpserver.log) == 1


@pytest.mark.parametrize("value", ["-1", "two", "1.5"])
def test_bad_max_retries_names_the_variable(value):
    """A VAULT_MAX_RETRIES that is not a whole number >= 0 is refused by name."""
    with pytest.raises(VaultConfigError, match="VAULT_MAX_RETRIES"):
        VaultClient.from_env(env(VAULT_MAX_RETRIES=value))


@pytest.mark.parametrize(("value", "ttl"), [("0", 0.0), ("60", 60.0), ("0.5", 0.5)])
def test_cache_ttl_from_env(from_env, value, ttl):
    """GDS_VAULT_CACHE_TTL sets the cache lifetime in seconds (0 disables it)."""
    assert from_env(env(GDS_VAULT_CACHE_TTL=value)).settings.cache_ttl == ttl


@pytest.mark.parametrize("value", ["five", "-5", "nan", "inf"])
def test_bad_cache_ttl_names_the_variable(value):
    """A GDS_VAULT_CACHE_TTL that is not a finite number >= 0 is refused by name."""
    with pytest.raises(VaultConfigError, match="GDS_VAULT_CACHE_TTL"):
        VaultClient.from_env(env(GDS_VAULT_CACHE_TTL=value))


@pytest.mark.parametrize(
    "kwargs",
    [{"timeout": -1}, {"timeout": 0}, {"timeout": float("nan")}, {"timeout": "10"},
     {"cache_ttl": -1}, {"cache_ttl": float("inf")}, {"cache_ttl": True}],
    ids=lambda kw: "-".join(f"{k}={v!r}" for k, v in kw.items()),
)
def test_bad_timeout_or_cache_ttl_arguments_are_config_errors(kwargs):
    """Negative, zero (timeout), non-finite or non-numeric timeout/cache_ttl are refused."""
    name = next(iter(kwargs))
    with pytest.raises(VaultConfigError, match=name):
        VaultClient(ADDR, auth=TokenAuth(TOKEN), **kwargs)
    with pytest.raises(VaultConfigError, match=name):
        VaultClient.from_env(env(), **kwargs)


# -- overrides -------------------------------------------------------------------------------------


def test_overrides_win_over_the_environment(from_env):
    """Keyword overrides replace what the environment says."""
    retry = RetryPolicy(attempts=2)
    client = from_env(env(GDS_VAULT_CACHE_TTL="60", VAULT_CLIENT_TIMEOUT="30"),
                      cache_ttl=0, timeout=3.0, retry=retry, namespace="ops")
    assert client.settings.cache_ttl == 0
    assert client.settings.timeout == 3.0
    assert client.settings.retry is retry
    assert client.settings.namespace == "ops"


def test_overrides_supply_what_the_environment_lacks(from_env):
    """addr= and auth= overrides make VAULT_ADDR and credentials unnecessary."""
    auth = AppRoleAuth("rid", "sid")
    client = from_env({}, addr="http://127.0.0.1:8200", auth=auth)
    assert client.addr == "http://127.0.0.1:8200"
    assert client.auth is auth


def test_unknown_override_is_config_error():
    """A misspelt from_env keyword is refused, naming it and the valid ones."""
    with pytest.raises(VaultConfigError, match="cache_tll") as info:
        VaultClient.from_env(env(), cache_tll=0)
    assert "cache_ttl" in str(info.value)


def test_from_env_reads_os_environ_at_call_time(monkeypatch, from_env):
    """from_env() reads os.environ when called, so a later change is seen by the next call."""
    monkeypatch.setenv("VAULT_ADDR", "https://first.example.com:8200")
    monkeypatch.setenv("VAULT_TOKEN", TOKEN)
    first = from_env()
    monkeypatch.setenv("VAULT_ADDR", "https://second.example.com:8200")
    monkeypatch.setenv("GDS_VAULT_CACHE_TTL", "7")
    second = from_env()
    assert first.addr == "https://first.example.com:8200"
    assert second.addr == "https://second.example.com:8200"
    assert first.settings.cache_ttl == 300.0
    assert second.settings.cache_ttl == 7.0


def test_explicit_environ_ignores_os_environ(monkeypatch, from_env):
    """An environ mapping passed in is the only source; os.environ is not consulted."""
    monkeypatch.setenv("VAULT_NAMESPACE", "from-os-environ")
    monkeypatch.setenv("VAULT_CLIENT_TIMEOUT", "99")
    client = from_env(env())
    assert client.settings.namespace is None
    assert client.settings.timeout == 10.0


# -- legacy HVAULT_* names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("legacy", "new", "value"),
    [
        ("HVAULT_ADDR", "VAULT_ADDR", "https://legacy.example.com:8200"),
        ("HVAULT_TOKEN", "VAULT_TOKEN", TOKEN),
        ("HVAULT_ROLE_ID", "VAULT_ROLE_ID", "legacy-role-id"),
        ("HVAULT_NAMESPACE", "VAULT_NAMESPACE", "legacy-ns"),
    ],
)
def test_legacy_name_is_a_fallback_with_deprecation_warning(from_env, legacy, new, value):
    """A legacy HVAULT_* name is read only when VAULT_* is absent, warning with the new name."""
    environ = env(**{new: None, legacy: value})
    if new == "VAULT_ROLE_ID":
        environ = {"VAULT_ADDR": ADDR, legacy: value, "VAULT_SECRET_ID": "sid"}
    with pytest.warns(DeprecationWarning, match=f"set {new} instead") as record:
        client = from_env(environ)
    assert [str(w.message) for w in record if legacy in str(w.message)]
    # The warning points at the caller's line, where the user can act on it.
    assert {w.filename for w in record} == {__file__}
    if new == "VAULT_ADDR":
        assert client.addr == value
    elif new == "VAULT_TOKEN":
        assert client.auth.current_token() == value
    elif new == "VAULT_NAMESPACE":
        assert client.settings.namespace == value
    else:
        assert isinstance(client.auth, AppRoleAuth)


def test_legacy_approle_logs_in_against_the_real_server(vault, from_env):
    """HVAULT_ADDR, HVAULT_ROLE_ID and HVAULT_SECRET_ID alone work, one warning each."""
    role_id, secret_id = vault.server.approle("legacy", policies=["reader"])
    environ = {"HVAULT_ADDR": vault.addr, "HVAULT_ROLE_ID": role_id, "HVAULT_SECRET_ID": secret_id}
    with pytest.warns(DeprecationWarning, match="is deprecated") as record:
        client = from_env(environ)
    messages = sorted(str(w.message) for w in record)
    assert len(messages) == 3
    for legacy, new in (("HVAULT_ADDR", "VAULT_ADDR"), ("HVAULT_ROLE_ID", "VAULT_ROLE_ID"),
                        ("HVAULT_SECRET_ID", "VAULT_SECRET_ID")):
        assert any(m.startswith(f"{legacy} is deprecated; set {new} instead") for m in messages)
    assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"


def test_legacy_names_ignored_when_new_names_are_set(vault, from_env):
    """With VAULT_* set, HVAULT_* values are not used and no warning is raised."""
    role_id, secret_id = vault.server.approle("modern", policies=["reader"])
    environ = {
        "VAULT_ADDR": vault.addr, "HVAULT_ADDR": "http://127.0.0.1:1",
        "VAULT_ROLE_ID": role_id, "HVAULT_ROLE_ID": "wrong-role-id",
        "VAULT_SECRET_ID": secret_id, "HVAULT_SECRET_ID": "wrong-secret-id",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client = from_env(environ)
        assert client.addr == vault.addr
        assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"


def test_empty_new_name_falls_back_to_legacy(from_env):
    """An empty VAULT_ADDR counts as unset, so HVAULT_ADDR is used (with the warning)."""
    with pytest.warns(DeprecationWarning, match="VAULT_ADDR"):
        client = from_env(env(VAULT_ADDR="", HVAULT_ADDR="https://legacy.example.com"))
    assert client.addr == "https://legacy.example.com"


# -- no secrets in repr --------------------------------------------------------------------------


def test_reprs_show_no_credentials(from_env, tmp_path):
    """repr() of clients and auth objects never shows a token, role_id or secret_id."""
    jwt_file = tmp_path / "jwt"
    jwt_file.write_text("header.payload.signature")
    secrets = ["s.token-value-must-not-show", "role-id-must-not-show", "secret-id-must-not-show",
               "jwt-value-must-not-show"]
    objects = [
        from_env(env(VAULT_TOKEN=secrets[0])),
        from_env(env(VAULT_TOKEN=None, VAULT_ROLE_ID=secrets[1], VAULT_SECRET_ID=secrets[2])),
        from_env(env(VAULT_TOKEN=None, VAULT_ROLE_ID=secrets[1], VAULT_SECRET_ID=secrets[2],
                     VAULT_SECRET_ID_WRAPPED="true")),
        TokenAuth(secrets[0]),
        AppRoleAuth(secrets[1], secrets[2]),
        JWTAuth("etl", jwt=secrets[3]),
        JWTAuth("etl", jwt_file=jwt_file),
    ]
    for obj in objects:
        for text in (repr(obj), str(obj)):
            for secret in secrets:
                assert secret not in text
    assert "AppRoleAuth" in repr(objects[1])
    assert ADDR in repr(objects[0])


def test_settings_repr_shows_no_credentials(from_env):
    """The client's settings object, printed in a notebook, shows no credentials either."""
    client = from_env(env(VAULT_TOKEN=None, VAULT_ROLE_ID="role-id-hidden",
                          VAULT_SECRET_ID="secret-id-hidden"))
    text = repr(client.settings)
    assert "role-id-hidden" not in text
    assert "secret-id-hidden" not in text



def test_override_replaces_a_bad_variable_without_reading_it():
    """A bad variable that an explicit argument replaces does not stop the client."""
    env = {
        "VAULT_ADDR": "http://127.0.0.1:8200",
        "VAULT_TOKEN": "s.override-test-token-value",
        "VAULT_CLIENT_TIMEOUT": "oops",
        "VAULT_MAX_RETRIES": "-1",
        "GDS_VAULT_CACHE_TTL": "forever",
    }
    client = VaultClient.from_env(environ=env, timeout=5, retry=RetryPolicy(), cache_ttl=0)
    assert client.settings.timeout == 5
    assert client.settings.cache_ttl == 0
    client.close()
    with pytest.raises(VaultConfigError, match="VAULT_CLIENT_TIMEOUT"):
        VaultClient.from_env(environ=env)
