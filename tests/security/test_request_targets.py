"""Review finding 4, where requests go: auth mounts are checked, plain HTTP is flagged.

Before the fix an auth mount such as ``approle/../../sys/...`` was put into the login URL
as given (urllib3 resolves the dots, so the login went to another endpoint), and a plain
``http://`` address of another host, over which the token and secrets travel in clear,
passed without a word.
"""

from __future__ import annotations

import warnings

import pytest

from gds_vault import (
    AppRoleAuth,
    AWSIAMAuth,
    CertAuth,
    JWTAuth,
    LDAPAuth,
    TokenAuth,
    UserpassAuth,
    VaultClient,
    VaultConfigError,
    VaultInsecureWarning,
)

BAD_MOUNTS = ["approle/../../sys/raw", "../sys", "app role?x=1", "a//b", "jwt#x", "a\\b", "a\x1bb"]
MAKERS = {
    "approle": lambda mount: AppRoleAuth("role-id", "secret-id-x", mount=mount),
    "jwt": lambda mount: JWTAuth("role", jwt="header.payload.sig", mount=mount),
    "kubernetes": lambda mount: JWTAuth.kubernetes("role", jwt_file="/dev/null", mount=mount),
    "userpass": lambda mount: UserpassAuth("alice", "pw-mount-test", mount=mount),
    "ldap": lambda mount: LDAPAuth("alice", "pw-mount-test", mount=mount),
    "cert": lambda mount: CertAuth("role", mount=mount),
    "aws": lambda mount: AWSIAMAuth("role", mount=mount),
}


@pytest.mark.parametrize("method", MAKERS)
@pytest.mark.parametrize("mount", BAD_MOUNTS)
def test_auth_mount_is_checked_like_a_secret_path(method, mount):
    """Every auth method refuses a mount with '..', empty segments, '?', '#', '\\' or
    control characters, as a VaultConfigError naming VAULT_AUTH_MOUNT."""
    with pytest.raises(VaultConfigError, match="VAULT_AUTH_MOUNT"):
        MAKERS[method](mount)


def test_auth_mount_from_the_environment_is_checked():
    """VAULT_AUTH_MOUNT=../sys is refused when the client is built from the environment."""
    environ = {
        "VAULT_ADDR": "https://vault.example.com:8200",
        "VAULT_ROLE_ID": "role-id",
        "VAULT_SECRET_ID": "secret-id-x",
        "VAULT_AUTH_MOUNT": "approle/../../sys/raw",
    }
    with pytest.raises(VaultConfigError, match="VAULT_AUTH_MOUNT"):
        VaultClient.from_env(environ)


def test_nested_auth_mounts_are_still_accepted():
    """Mounts with several segments (auth/team-a/approle) stay valid; slashes are trimmed."""
    assert AppRoleAuth("role-id", "secret-id-x", mount="/team-a/approle/").mount == "team-a/approle"


@pytest.mark.parametrize("username", ["..", ".", "alice\r\nX-Injected: 1"])
def test_user_name_that_cannot_be_one_path_segment_is_refused(username):
    """A userpass/LDAP user name of '.' or '..', or with control characters, is refused."""
    with pytest.raises(VaultConfigError, match="VAULT_USERNAME"):
        UserpassAuth(username, "pw-mount-test")


@pytest.mark.parametrize(
    "addr", ["http://vault.example.com:8200", "http://10.0.0.5:8200", "http://[2001:db8::1]:8200"]
)
def test_plain_http_to_another_host_warns(addr):
    """http:// to a host other than this one warns (VaultInsecureWarning, naming the fix)."""
    with pytest.warns(VaultInsecureWarning, match="plain HTTP") as caught:
        VaultClient(addr, auth=TokenAuth("hvs.unused-token")).close()
    assert "https://" in str(caught[0].message)


@pytest.mark.parametrize(
    "addr",
    [
        "http://127.0.0.1:8200",
        "http://127.8.9.10:8200",
        "http://localhost:8200",
        "http://[::1]:8200",
        "https://vault.example.com:8200",
    ],
)
def test_loopback_or_https_does_not_warn(addr):
    """http:// to this machine (a dev server, a Vault Agent) and https:// stay quiet."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        VaultClient(addr, auth=TokenAuth("hvs.unused-token")).close()


def test_plain_http_warning_can_be_turned_off_as_documented():
    """The opt-out README documents (a warnings filter on the message) silences it."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message="Vault at http://", category=VaultInsecureWarning)
        VaultClient("http://vault:8200", auth=TokenAuth("hvs.unused-token")).close()
