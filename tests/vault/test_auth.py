"""Auth methods against a real OpenBao server: AppRole, token, JWT."""

from __future__ import annotations

import time

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gds_vault import (
    AppRoleAuth,
    AWSIAMAuth,
    CertAuth,
    LDAPAuth,
    UserpassAuth,
    JWTAuth,
    TokenAuth,
    VaultAuthError,
    VaultClient,
    VaultConfigError,
)


def test_approle_login_reads_secret(vault, make_client):
    """An AppRole with role_id and secret_id logs in and reads."""
    assert make_client(vault.role()).get_secret("secret/snowflake/etl", key="user") == "ETL"


def test_approle_secret_id_from_file(vault, make_client, tmp_path):
    """A secret_id file is read at login."""
    role_id, secret_id = vault.server.approle("from-file", policies=["reader"])
    path = tmp_path / "secret-id"
    path.write_text(secret_id + "\n")
    client = make_client(AppRoleAuth(role_id, secret_id_file=path))
    assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"


def test_approle_secret_id_file_is_reread_at_next_login(vault, make_client, tmp_path):
    """A rotated secret_id file is picked up by the next login."""
    role_id, old = vault.server.approle("rotating-file", policies=["reader"])
    path = tmp_path / "secret-id"
    path.write_text(old)
    client = make_client(AppRoleAuth(role_id, secret_id_file=path))
    client.login()
    vault.server.destroy_secret_ids("rotating-file")
    path.write_text(vault.server.secret_id("rotating-file"))
    client.login()  # would fail with the destroyed secret_id
    assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"


def test_wrapped_secret_id_is_unwrapped(vault, make_client):
    """A response-wrapped secret_id is unwrapped once and used for login (and re-login)."""
    role_id, _ = vault.server.approle("wrapped", policies=["reader"])
    wrapping_token = vault.server.wrapped_secret_id("wrapped")
    client = make_client(AppRoleAuth(role_id, wrapping_token, wrapped=True))
    assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"
    client.login()  # a second login must not try to unwrap again
    mark = vault.server.mark()
    client.login()
    assert vault.server.requests_since(mark, "sys/wrapping/unwrap") == []


def test_used_wrapping_token_is_a_clear_auth_error(vault, make_client):
    """A wrapping token that was already unwrapped gives an error saying it works once."""
    role_id, _ = vault.server.approle("wrapped-twice", policies=["reader"])
    wrapping_token = vault.server.wrapped_secret_id("wrapped-twice")
    vault.server.api("POST", "sys/wrapping/unwrap", token=wrapping_token)
    with pytest.raises(VaultAuthError, match="work once") as info:
        make_client(AppRoleAuth(role_id, wrapping_token, wrapped=True)).login()
    assert wrapping_token not in str(info.value)


def test_wrong_secret_id_is_auth_error_without_secret(vault, make_client):
    """A wrong secret_id is a VaultAuthError that names the variables, not the values."""
    role_id, _ = vault.server.approle("wrong-secret", policies=["reader"])
    bad = "00000000-1111-2222-3333-444444444444"
    with pytest.raises(VaultAuthError) as info:
        make_client(AppRoleAuth(role_id, bad)).get_secret("secret/snowflake/etl")
    message = str(info.value)
    assert "VAULT_SECRET_ID" in message and bad not in message and role_id not in message


def test_wrong_role_id_is_auth_error(vault, make_client):
    """An unknown role_id is a VaultAuthError."""
    with pytest.raises(VaultAuthError):
        make_client(AppRoleAuth("no-such-role-id", "no-such-secret")).login()


def test_unknown_auth_mount_says_so(vault, make_client):
    """Logging in at a mount that does not exist says to check the mount path."""
    with pytest.raises(VaultAuthError, match="mount"):
        make_client(AppRoleAuth("r", "s", mount="nowhere")).login()


def test_login_logged_without_secrets(vault, make_client, caplog):
    """The login is logged at INFO with method, TTL and policies, never the token."""
    caplog.set_level("INFO", logger="gds_vault")
    client = make_client(vault.role(token_ttl="1h"))
    client.login()
    text = caplog.text
    assert "approle" in text and "3600 s" in text and "reader" in text
    assert client._tokens.current() not in text


def test_token_auth(vault, make_client):
    """A token from VAULT_TOKEN reads secrets."""
    token = vault.server.create_token(policies=["reader"])
    assert make_client(TokenAuth(token)).get_secret("secret/snowflake/etl", key="user") == "ETL"


def test_invalid_token_is_auth_error(vault, make_client):
    """A revoked token is a VaultAuthError telling the user to get a new one."""
    token = vault.server.create_token(policies=["reader"])
    vault.server.revoke_token(token)
    with pytest.raises(VaultAuthError, match="VAULT_TOKEN") as info:
        make_client(TokenAuth(token)).get_secret("secret/snowflake/etl")
    assert token not in str(info.value)


def test_token_file_agent_sink_is_reread(vault, make_client, tmp_path):
    """A Vault Agent sink file is re-read when the cached token is rejected."""
    sink = tmp_path / "sink"
    first = vault.server.create_token(policies=["reader"])
    sink.write_text(first)
    client = make_client(TokenAuth(token_file=sink), cache_ttl=0)
    client.get_secret("secret/snowflake/etl")
    # The agent rotates: the old token is revoked and the file rewritten.
    sink.write_text(vault.server.create_token(policies=["reader"]))
    vault.server.revoke_token(first)
    assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"


def test_unreadable_token_file_is_config_error(make_client, tmp_path):
    """A token file that cannot be read is a config error naming the file and variable."""
    with pytest.raises(VaultConfigError, match="VAULT_TOKEN_FILE"):
        make_client(TokenAuth(token_file=tmp_path / "missing")).login()


def test_auth_reprs_hide_credentials(tmp_path):
    """repr() of every auth method shows no credential."""
    reprs = [
        repr(AppRoleAuth("role-id-value", "secret-id-value")),
        repr(TokenAuth("s.token-value-1234567890abcdef")),
        repr(JWTAuth("etl", jwt="header.payload.signature")),
        repr(UserpassAuth("alice", "password-value-1")),
        repr(LDAPAuth("alice", "password-value-1")),
        repr(CertAuth("etl")),
        repr(AWSIAMAuth("etl", server_id="vault.example.com")),
    ]
    for text in reprs:
        for secret in ("role-id-value", "secret-id-value", "token-value", "payload", "password-value"):
            assert secret not in text


@pytest.mark.parametrize(
    "build",
    [
        lambda: AppRoleAuth(""),
        lambda: AppRoleAuth("r", "   "),
        lambda: AppRoleAuth("r", "s", secret_id_file="/x"),
        lambda: TokenAuth(),
        lambda: TokenAuth("t", token_file="/x"),
        lambda: JWTAuth(""),
        lambda: JWTAuth("role"),
        lambda: UserpassAuth(""),
        lambda: UserpassAuth("alice", "pw", password_file="/x"),
        lambda: UserpassAuth("alice", ""),
        lambda: UserpassAuth("alice", prompt=None),
        lambda: CertAuth(" "),
        lambda: AWSIAMAuth(region=""),
    ],
)
def test_invalid_auth_settings_are_config_errors(build):
    """Auth objects refuse settings that can never work."""
    with pytest.raises(VaultConfigError):
        build()


@pytest.fixture(scope="module")
def jwt_signer(vault):
    """A JWT auth mount trusting a locally generated RSA key, and a role bound to it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    vault.server.enable_auth("jwt", "jwt")
    vault.server.api("POST", "auth/jwt/config", {"jwt_validation_pubkeys": [public_pem]})
    vault.server.api(
        "POST",
        "auth/jwt/role/etl",
        {
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": ["gds-tests"],
            "token_policies": ["reader"],
            "token_ttl": "10m",
        },
    )

    def sign(audience: str = "gds-tests") -> str:
        now = int(time.time())
        claims = {"sub": "etl-job", "aud": audience, "iat": now, "nbf": now - 5, "exp": now + 300}
        return pyjwt.encode(claims, key, algorithm="RS256")

    return sign


def test_jwt_login_from_file(make_client, jwt_signer, tmp_path):
    """JWTAuth logs in with a JWT read from a file (as a Kubernetes token would be)."""
    token_file = tmp_path / "jwt"
    token_file.write_text(jwt_signer())
    client = make_client(JWTAuth("etl", jwt_file=token_file))
    assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"


def test_jwt_file_is_read_at_every_login(make_client, jwt_signer, tmp_path):
    """A rotated JWT file is used at the next login."""
    token_file = tmp_path / "jwt"
    token_file.write_text(jwt_signer(audience="wrong"))
    client = make_client(JWTAuth("etl", jwt_file=token_file))
    with pytest.raises(VaultAuthError, match="bound claims"):
        client.login()
    token_file.write_text(jwt_signer())
    client.login()
    assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"


def test_kubernetes_variant_defaults():
    """JWTAuth.kubernetes reads the pod's service-account token on the kubernetes mount."""
    auth = JWTAuth.kubernetes("etl")
    assert auth.mount == "kubernetes"
    assert str(auth.jwt_file) == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert auth.name == "kubernetes"


def test_client_requires_an_auth_method(vault):
    """A client without an auth method is a config error pointing to the options."""
    with pytest.raises(VaultConfigError, match="from_env"):
        VaultClient(vault.addr, auth=None)  # type: ignore[arg-type]
