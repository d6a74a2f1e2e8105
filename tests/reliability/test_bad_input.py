"""Bad input: each case a typed error whose message says what to fix and leaks no value.

The catalogue has two parts. ``CASES`` are run here: each raises the expected error
class, its message matches the advice expected, and no offending value appears in it.
``COVERED_ELSEWHERE`` names the existing tests that already pin the other cases (they
are not written twice); a test checks that each of them still exists. Every one of them
also runs under the suite-wide secret-hygiene fixture, which fails a test when a
registered secret shows in any library error message, log record or repr.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from gds_snowflake import (
    SecretLayout,
    SnowflakeConfigError,
    SnowflakeConnectionProvider,
    SnowflakeSecretError,
)
from gds_snowflake._credentials import parse_secret
from gds_vault import (
    AppRoleAuth,
    JWTAuth,
    RetryPolicy,
    TokenAuth,
    UserpassAuth,
    VaultClient,
    VaultConfigError,
    VaultPathError,
    VaultResponseError,
)
from tests.reliability.conftest import write_row
from tests.reliability.hygiene import register

ADDR = "http://127.0.0.1:9"  # nothing is sent: every case fails before any request
PASSWORD = "pw-bad-input-do-not-show"
TOKEN = "s.bad-input-token-do-not-show"
SECRET_ID = "secret-id-bad-input-do-not-show"
PAT = "pat-bad-input-do-not-show-0123456789abcdef"  # a Snowflake programmatic access token
register(PASSWORD, TOKEN, SECRET_ID, PAT)


@dataclass(frozen=True)
class Case:
    name: str
    call: Callable[..., object]  # called with the tmp_path
    error: type[BaseException]
    advice: str  # a substring of the message saying what to do
    leaks: tuple[str, ...] = field(default=())  # values that must not appear


def env(**variables: str) -> dict[str, str]:
    return {"VAULT_ADDR": ADDR, "VAULT_TOKEN": TOKEN, **variables}


def client_from(**variables: str) -> Callable[..., object]:
    return lambda tmp_path: VaultClient.from_env(env(**variables))


def login_with(auth_of: Callable[..., object]) -> Callable[..., object]:
    def run(tmp_path):
        with VaultClient(ADDR, auth=auth_of(tmp_path), retry=RetryPolicy.no_retries()) as client:
            client.login()

    return run


def get_secret(path: object = "secret/app", **kwargs: object) -> Callable[..., object]:
    def run(tmp_path):
        with VaultClient(ADDR, auth=TokenAuth(TOKEN), retry=RetryPolicy.no_retries()) as client:
            client.get_secret(path, **kwargs)  # type: ignore[arg-type]

    return run


def parsed(secret: object, layout: SecretLayout | None = None) -> Callable[..., object]:
    return lambda tmp_path: parse_secret(secret, "secret/snowflake/etl", layout or SecretLayout())


def empty_file(tmp_path, name: str) -> str:
    path = tmp_path / name
    path.write_text("  \n")
    return str(path)


def two_line_file(tmp_path, name: str) -> str:
    """A credential file with a second line (two tokens pasted, or a stray header)."""
    path = tmp_path / name
    path.write_text(f"{TOKEN}\nsecond-line-of-the-file\n")
    return str(path)


CASES = [
    Case(
        "VAULT_ADDR with user:password@",
        client_from(VAULT_ADDR=f"https://etl:{PASSWORD}@vault:8200"),
        VaultConfigError,
        "must not carry credentials",
        (PASSWORD,),
    ),
    Case(
        "VAULT_ADDR as a bare host name",
        client_from(VAULT_ADDR="vault"),
        VaultConfigError,
        "needs a scheme and a host",
    ),
    Case(
        "VAULT_ADDR with a query string",
        client_from(VAULT_ADDR="https://vault:8200?token=x"),
        VaultConfigError,
        "give only scheme, host and port",
    ),
    Case(
        "VAULT_SECRET_ID_WRAPPED not a boolean",
        client_from(
            VAULT_TOKEN="",
            VAULT_ROLE_ID="role",
            VAULT_SECRET_ID=SECRET_ID,
            VAULT_SECRET_ID_WRAPPED="perhaps",
        ),
        VaultConfigError,
        "VAULT_SECRET_ID_WRAPPED",
        (SECRET_ID,),
    ),
    Case(
        "VAULT_SECRET_ID and VAULT_SECRET_ID_FILE together",
        lambda tmp_path: AppRoleAuth("role", SECRET_ID, secret_id_file=tmp_path / "sid"),
        VaultConfigError,
        "not both",
        (SECRET_ID,),
    ),
    Case(
        "empty secret_id file",
        login_with(
            lambda tmp_path: AppRoleAuth("role", secret_id_file=empty_file(tmp_path, "sid"))
        ),
        VaultConfigError,
        "VAULT_SECRET_ID_FILE",
    ),
    Case(
        "empty token file",
        login_with(lambda tmp_path: TokenAuth(token_file=empty_file(tmp_path, "token"))),
        VaultConfigError,
        "VAULT_TOKEN_FILE",
    ),
    Case(
        "unreadable JWT file",
        login_with(lambda tmp_path: JWTAuth("etl", jwt_file=tmp_path / "no-such-jwt")),
        VaultConfigError,
        "VAULT_JWT_FILE",
    ),
    Case(
        "JWT file that is a directory",
        login_with(lambda tmp_path: JWTAuth("etl", jwt_file=tmp_path)),
        VaultConfigError,
        "VAULT_JWT_FILE",
    ),
    Case(
        "VAULT_TOKEN with a line break",
        client_from(VAULT_TOKEN=f"{TOKEN}\r\nsecond-line-of-a-paste"),
        VaultConfigError,
        "one line of printable ASCII",
        (TOKEN, "second-line"),
    ),
    Case(
        "token file of two lines",
        login_with(lambda tmp_path: TokenAuth(token_file=two_line_file(tmp_path, "token"))),
        VaultConfigError,
        "VAULT_TOKEN_FILE",
        (TOKEN, "second-line"),
    ),
    Case(
        "secret_id with a control character",
        lambda tmp_path: AppRoleAuth("role", f"{SECRET_ID}\x00"),
        VaultConfigError,
        "VAULT_SECRET_ID",
        (SECRET_ID,),
    ),
    Case(
        "VAULT_NAMESPACE with CR/LF",
        client_from(VAULT_NAMESPACE="team-a\r\nX-Injected: smuggled-header"),
        VaultConfigError,
        "VAULT_NAMESPACE",
        ("smuggled-header",),
    ),
    Case(
        "VAULT_AUTH_MOUNT with '..'",
        client_from(
            VAULT_TOKEN="",
            VAULT_ROLE_ID="role",
            VAULT_SECRET_ID=SECRET_ID,
            VAULT_AUTH_MOUNT="approle/../../sys/raw",
        ),
        VaultConfigError,
        "VAULT_AUTH_MOUNT",
        (SECRET_ID,),
    ),
    Case(
        "user name '..'",
        lambda tmp_path: UserpassAuth("..", PASSWORD),
        VaultConfigError,
        "VAULT_USERNAME",
        (PASSWORD,),
    ),
    Case(
        "revoke_on_close with a token cache",
        lambda tmp_path: VaultClient(
            ADDR, auth=TokenAuth(TOKEN), token_cache=tmp_path, revoke_on_close=True
        ),
        VaultConfigError,
        "revoke_on_close",
        (TOKEN,),
    ),
    Case(
        "path with a query character",
        get_secret("secret/app?version=2"),
        VaultPathError,
        "cannot appear in a Vault path",
    ),
    Case(
        "path with a control character",
        get_secret("secret/a\x00pp"),
        VaultPathError,
        "control character",
    ),
    Case(
        "RetryPolicy with a negative wait",
        lambda tmp_path: RetryPolicy(initial_wait=-1),
        VaultConfigError,
        "number of seconds >= 0",
    ),
    Case(
        "RetryPolicy with zero attempts",
        lambda tmp_path: RetryPolicy(attempts=0),
        VaultConfigError,
        "at least 1",
    ),
    Case(
        "secret that is not a mapping",
        parsed(["user", PASSWORD]),
        SnowflakeSecretError,
        "not a set of fields",
        (PASSWORD,),
    ),
    Case(
        "user that is not text",
        parsed({"user": 42, "password": PASSWORD}),
        SnowflakeSecretError,
        "store it as a string",
        (PASSWORD,),
    ),
    Case(
        "password that is not text",
        parsed({"user": "ETL", "password": {"value": PASSWORD}}),
        SnowflakeSecretError,
        "store it as a string",
        (PASSWORD,),
    ),
    Case(
        "enormous password",
        parsed({"user": "ETL", "password": PASSWORD * 5000}),
        SnowflakeSecretError,
        "characters long",
        (PASSWORD,),
    ),
    Case(
        "secret without the renamed user field",
        parsed({"user": "ETL", "password": PASSWORD}, SecretLayout(user="username")),
        SnowflakeSecretError,
        "has no 'username' field",
        (PASSWORD,),
    ),
    Case(
        "empty token",
        parsed({"user": "ETL", "token": "", "password": PASSWORD}),
        SnowflakeSecretError,
        "Field 'token' of secret secret/snowflake/etl is empty; store the programmatic access",
        (PASSWORD,),
    ),
    Case(
        "token of only whitespace",
        parsed({"user": "ETL", "token": " \n\t "}),
        SnowflakeSecretError,
        "is empty",
    ),
    Case(
        "token wrapped over two lines",
        parsed({"user": "ETL", "token": PAT[:16] + "\n" + PAT[16:]}),
        SnowflakeSecretError,
        "contains a line break at character 17",
        (PAT, PAT[:16], PAT[16:]),
    ),
    Case(
        "token with a space (a 'Bearer ' prefix)",
        parsed({"user": "ETL", "token": "Bearer " + PAT}),
        SnowflakeSecretError,
        "without line breaks or a prefix such as 'Bearer '",
        (PAT,),
    ),
    Case(
        "token with a control character",
        parsed({"user": "ETL", "token": PAT[:4] + "\x00" + PAT[4:]}),
        SnowflakeSecretError,
        "a control or non-ASCII character at character 5",
        (PAT[4:],),
    ),
    Case(
        "unknown authenticator value",
        parsed({"user": "ETL", "token": PAT, "authenticator": "externalbrowser"}),
        SnowflakeSecretError,
        "takes 'oauth' (the token is an OAuth access token) or 'programmatic_access_token'",
        (PAT,),
    ),
    Case(
        "authenticator 'oauth' without a token",
        parsed({"user": "ETL", "authenticator": "oauth", "password": PASSWORD}),
        SnowflakeSecretError,
        "says 'oauth' but the secret has no 'token' field",
        (PASSWORD,),
    ),
    Case(
        "token passed as an argument",
        lambda tmp_path: SnowflakeConnectionProvider("secret/snowflake/etl", token=PAT),
        SnowflakeConfigError,
        "must come from the Vault secret",
        (PAT,),
    ),
    Case(
        "no Snowflake account anywhere",
        lambda tmp_path: SnowflakeConnectionProvider(
            "secret/snowflake/etl", vault_client=object(), environ={}
        ).connect_arguments(
            parse_secret(
                {"user": "ETL", "password": PASSWORD}, "secret/snowflake/etl", SecretLayout()
            )
        ),
        SnowflakeConfigError,
        "SNOWFLAKE_ACCOUNT",
        (PASSWORD,),
    ),
    Case(
        "private key passed as an argument",
        lambda tmp_path: SnowflakeConnectionProvider("secret/snowflake/etl", private_key=b"key"),
        SnowflakeConfigError,
        "must come from the Vault secret",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_a_typed_helpful_error(case, tmp_path):
    """Each bad input is the expected typed error, says what to fix, and shows no value."""
    with pytest.raises(case.error) as info:
        case.call(tmp_path)
    message = str(info.value)
    assert case.advice in message
    for value in case.leaks:
        assert value not in message
    write_row("bad_input", case=case.name, error=type(info.value).__name__, where="here")


def test_vault_answer_that_is_not_a_mapping(httpserver):
    """A KV answer whose data is not a set of fields is a VaultResponseError, not data."""
    from tests.fakevault import DATA, MOUNTS, SECRET_PATH, FakeVault

    fake = FakeVault(httpserver)
    assert MOUNTS  # FakeVault answers the login and mount detection
    httpserver.expect_request(DATA).respond_with_json({"data": {"data": ["user", PASSWORD]}})
    with (
        VaultClient(fake.addr, auth=TokenAuth(TOKEN), retry=RetryPolicy.no_retries()) as client,
        pytest.raises(VaultResponseError, match="not a set of key/value fields") as info,
    ):
        client.get_secret(SECRET_PATH)
    assert PASSWORD not in str(info.value)
    write_row(
        "bad_input",
        case="Vault answer that is not a mapping",
        error=type(info.value).__name__,
        where="here",
    )


def test_key_that_is_not_a_string(rel):
    """key=5 (not a field name) is a VaultPathError naming the path, without the values."""
    client = rel.client(direct=True)
    with pytest.raises(VaultPathError, match="key must be a string") as info:
        client.get_secret("secret/reliability/app", key=5)  # type: ignore[arg-type]
    assert "pw-reliability-1" not in str(info.value)
    write_row(
        "bad_input", case="key that is not a string", error=type(info.value).__name__, where="here"
    )


def test_both_password_and_key_use_the_key():
    """Both a password and a key in the secret is not an error: the key wins (documented)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    text = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    register(text)
    credentials = parse_secret(
        {"user": "ETL", "password": PASSWORD, "private_key": text},
        "secret/snowflake/etl",
        SecretLayout(),
    )
    assert credentials.method == "key pair"
    assert credentials.password is None
    assert "password" not in credentials.connect_kwargs()
    write_row(
        "bad_input",
        case="both password and private_key (key wins, documented)",
        error="none: key pair used",
        where="here",
    )


# The cases the existing tests already pin (same behaviour, not written twice here).
RELIABILITY_MTLS = "tests/reliability/test_mtls.py::"
SNOWFLAKE_CONNECTION = "tests/snowflake/test_connection.py::"
SNOWFLAKE_KEYS = "tests/snowflake/test_keys.py::"
VAULT_AUTH = "tests/vault/test_auth.py::"
VAULT_AWS = "tests/vault/test_auth_aws.py::"
VAULT_CERT = "tests/vault/test_auth_cert.py::"
VAULT_CLI_TOKEN = "tests/vault/test_auth_vault_cli_token.py::"
VAULT_USERPASS = "tests/vault/test_auth_userpass.py::"
SECURITY_ANSWERS = "tests/security/test_answer_limits.py::"
SECURITY_HEADERS = "tests/security/test_header_values.py::"
VAULT_CONFIG = "tests/vault/test_config.py::"
VAULT_KV = "tests/vault/test_kv.py::"
VAULT_RETRY = "tests/vault/test_retry.py::"
COVERED_ELSEWHERE = {
    "VAULT_ADDR missing, empty or blank": VAULT_CONFIG + "test_missing_addr_names_vault_addr",
    "VAULT_ADDR without scheme, with a path, bad port": VAULT_CONFIG
    + "test_malformed_addr_is_config_error",
    "unknown VAULT_AUTH_METHOD": VAULT_CONFIG + "test_unknown_auth_method_lists_the_known_ones",
    "VAULT_AUTH_METHOD without its variables": VAULT_CONFIG
    + "test_auth_method_without_its_variables_is_config_error",
    "VAULT_ROLE_ID without a secret_id": VAULT_CONFIG
    + "test_role_id_without_secret_id_says_what_is_missing",
    "no credentials at all": VAULT_CONFIG + "test_no_credentials_lists_the_options",
    "empty role_id or secret_id": VAULT_AUTH + "test_invalid_auth_settings_are_config_errors",
    "wrong secret_id": VAULT_AUTH + "test_wrong_secret_id_is_auth_error_without_secret",
    "wrong role_id": VAULT_AUTH + "test_wrong_role_id_is_auth_error",
    "auth mount that does not exist": VAULT_AUTH + "test_unknown_auth_mount_says_so",
    "unreadable token file": VAULT_AUTH + "test_unreadable_token_file_is_config_error",
    "empty path, path with '..', empty segments": VAULT_KV + "test_invalid_paths_are_refused",
    "path that is not a string": VAULT_KV + "test_non_string_path_is_refused",
    "path to a mount root": VAULT_KV + "test_mount_root_is_refused",
    "key not in the secret": VAULT_KV + "test_missing_key_names_the_keys_without_values",
    "non-integer or negative version": VAULT_KV + "test_invalid_version_is_refused",
    "version on a KV v1 mount": VAULT_KV + "test_version_on_kv_v1_is_refused",
    "negative / non-finite timeout and cache_ttl": VAULT_CONFIG
    + "test_bad_timeout_or_cache_ttl_arguments_are_config_errors",
    "bad VAULT_CLIENT_TIMEOUT": VAULT_CONFIG + "test_bad_client_timeout_names_the_variable",
    "bad GDS_VAULT_CACHE_TTL": VAULT_CONFIG + "test_bad_cache_ttl_names_the_variable",
    "bad VAULT_MAX_RETRIES": VAULT_CONFIG + "test_bad_max_retries_names_the_variable",
    "token_cache that is not a path": "tests/vault/test_token_cache.py::"
    + "test_token_cache_of_the_wrong_type_is_a_config_error",
    "bad RetryPolicy settings (NaN, negative)": VAULT_RETRY + "test_bad_settings_are_config_errors",
    "wrong passphrase": SNOWFLAKE_KEYS + "test_wrong_passphrase_is_a_passphrase_error",
    "missing passphrase": SNOWFLAKE_KEYS + "test_encrypted_key_without_passphrase_asks_for_one",
    "corrupt PEM, base64 garbage, truncated DER": SNOWFLAKE_KEYS
    + "test_corrupt_or_truncated_material_is_a_private_key_error",
    "a certificate (or public key) instead of a key": SNOWFLAKE_KEYS
    + "test_certificate_or_public_key_is_named_as_such",
    "a DSA (or EdDSA, small RSA) key": SNOWFLAKE_KEYS + "test_unusable_key_types_are_unsupported",
    "secret without user or without any credential, enormous value": SNOWFLAKE_CONNECTION
    + "test_incomplete_secret_is_typed_error",
    "password passed as an argument": SNOWFLAKE_CONNECTION + "test_password_argument_is_refused",
    "no secret path": SNOWFLAKE_CONNECTION + "test_no_secret_path_is_config_error",
    "unusable client certificate settings": RELIABILITY_MTLS
    + "test_unusable_client_certificate_settings_are_config_errors",
    "userpass/ldap without VAULT_USERNAME": VAULT_USERPASS
    + "test_missing_username_is_a_config_error",
    "unreadable password file": VAULT_USERPASS
    + "test_unreadable_password_file_is_a_config_error",
    "wrong userpass password": VAULT_USERPASS
    + "test_wrong_password_is_an_auth_error_without_the_password",
    "no password and no terminal to ask in": VAULT_USERPASS
    + "test_no_terminal_means_a_config_error_naming_the_file_variable",
    "VAULT_USERNAME without VAULT_AUTH_METHOD": VAULT_USERPASS
    + "test_username_without_auth_method_is_not_guessed",
    "client certificate not accepted by auth/cert": VAULT_CERT
    + "test_certificate_from_an_unknown_ca_is_refused_clearly",
    "cert auth without a client certificate": VAULT_CERT
    + "test_cert_auth_without_a_client_certificate_is_a_config_error",
    "no AWS credentials": VAULT_AWS + "test_no_aws_credentials_is_a_config_error",
    "wrong AWS secret key": VAULT_AWS + "test_wrong_secret_key_is_refused_by_sts_and_named",
    "AWS_PROFILE naming no profile": VAULT_AWS + "test_missing_profile_is_a_config_error",
    "revoked or removed ~/.vault-token": VAULT_CLI_TOKEN
    + "test_removed_token_file_is_a_config_error_saying_vault_login",
    "answer announcing more than 16 MiB": SECURITY_ANSWERS
    + "test_announced_size_over_the_limit_is_refused_before_the_body",
    "answer growing past 16 MiB (no Content-Length)": SECURITY_ANSWERS
    + "test_answer_growing_past_the_limit_is_cut_off",
    "compressed answer (a gzip bomb)": SECURITY_ANSWERS
    + "test_compressed_answer_is_refused_before_inflating",
    "JSON nested too deep to decode": SECURITY_ANSWERS
    + "test_deeply_nested_json_is_a_response_error",
    "two-line secret_id file": SECURITY_HEADERS
    + "test_two_line_secret_id_file_is_a_config_error_at_login",
    "auth mount with '..', '?', '#' or control characters (every method)":
    "tests/security/test_request_targets.py::test_auth_mount_is_checked_like_a_secret_path",
}


def test_catalogue_covers_at_least_30_cases_and_references_exist():
    """At least 30 bad inputs are pinned, and each test referenced here still exists."""
    for reference in COVERED_ELSEWHERE.values():
        module_path, name = reference.split("::")
        module = importlib.import_module(module_path[:-3].replace("/", "."))
        assert callable(getattr(module, name, None)), f"{reference} no longer exists"
    assert len(CASES) + 3 + len(COVERED_ELSEWHERE) >= 30
    for case, reference in COVERED_ELSEWHERE.items():
        write_row("bad_input", case=case, error="(see the test)", where=reference)
