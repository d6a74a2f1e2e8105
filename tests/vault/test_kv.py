"""Reading KV v1 and v2 secrets from a real OpenBao server."""

from __future__ import annotations

import pytest

from gds_vault import (
    VaultClientClosedError,
    VaultClient,
    VaultPathError,
    VaultPermissionError,
    VaultSecretDeletedError,
    VaultSecretNotFoundError,
)


def test_reads_kv_v2_secret(make_client):
    """A KV v2 secret is returned as a dict of its fields, path written as `vault kv` does."""
    client = make_client()
    assert client.get_secret("secret/snowflake/etl") == {
        "account": "acme",
        "user": "ETL",
        "password": "pw-etl-1",
    }


def test_reads_kv_v1_secret(make_client):
    """A KV v1 secret is read with the v1 layout found through the mounts endpoint."""
    client = make_client()
    assert client.get_secret("kv1/snowflake/etl")["user"] == "ETL_V1"


def test_returns_one_key(make_client):
    """key= returns one field's value."""
    assert make_client().get_secret("secret/snowflake/etl", key="user") == "ETL"


def test_missing_key_names_the_keys_without_values(make_client):
    """A missing key is a not-found error listing the field names but no values."""
    with pytest.raises(VaultSecretNotFoundError) as info:
        make_client().get_secret("secret/snowflake/etl", key="pasword")
    message = str(info.value)
    assert "pasword" in message and "password" in message and "pw-etl-1" not in message


def test_returned_dict_is_a_copy(make_client):
    """Mutating a returned secret does not change what the next call returns."""
    client = make_client()
    first = client.get_secret("secret/snowflake/etl")
    first["user"] = "changed"
    assert client.get_secret("secret/snowflake/etl")["user"] == "ETL"


def test_reads_versions(vault, make_client):
    """version= reads an older KV v2 version; None reads the latest."""
    vault.server.kv_put("secret", "versioned", {"v": "1"})
    vault.server.kv_put("secret", "versioned", {"v": "2"})
    client = make_client()
    assert client.get_secret("secret/versioned", version=1) == {"v": "1"}
    assert client.get_secret("secret/versioned", version=2) == {"v": "2"}
    assert client.get_secret("secret/versioned") == {"v": "2"}


def test_missing_version_is_not_found(vault, make_client):
    """A version that was never written is a not-found error naming the version."""
    vault.server.kv_put("secret", "oneversion", {"v": "1"})
    with pytest.raises(VaultSecretNotFoundError, match="version 9"):
        make_client().get_secret("secret/oneversion", version=9)


def test_deleted_version_says_how_to_undelete(vault, make_client):
    """A soft-deleted version is a VaultSecretDeletedError that tells how to restore it."""
    vault.server.kv_put("secret", "deleted", {"v": "1"})
    vault.server.kv_put("secret", "deleted", {"v": "2"})
    vault.server.api("POST", "secret/delete/deleted", {"versions": [1]})
    with pytest.raises(VaultSecretDeletedError, match="undelete -versions=1"):
        make_client().get_secret("secret/deleted", version=1)


def test_destroyed_version_says_it_is_gone(vault, make_client):
    """A destroyed version is a VaultSecretDeletedError saying it cannot be recovered."""
    vault.server.kv_put("secret", "destroyed", {"v": "1"})
    vault.server.api("PUT", "secret/destroy/destroyed", {"versions": [1]})
    with pytest.raises(VaultSecretDeletedError, match="destroyed"):
        make_client().get_secret("secret/destroyed", version=1)


def test_deleted_latest_version(vault, make_client):
    """Reading a secret whose latest version was deleted is a VaultSecretDeletedError."""
    vault.server.kv_put("secret", "latest-deleted", {"v": "1"})
    vault.server.api("DELETE", "secret/data/latest-deleted")
    with pytest.raises(VaultSecretDeletedError):
        make_client().get_secret("secret/latest-deleted")


def test_version_on_kv_v1_is_refused(make_client):
    """Asking a KV v1 secret for a version is a path error saying versions need KV v2."""
    with pytest.raises(VaultPathError, match="KV version 2"):
        make_client().get_secret("kv1/snowflake/etl", version=1)


@pytest.mark.parametrize("version", [0, -1, "3", 1.5, True])
def test_invalid_version_is_refused(make_client, version):
    """A version that is not a whole number >= 1 is refused before any request."""
    with pytest.raises(VaultPathError, match="version"):
        make_client().get_secret("secret/snowflake/etl", version=version)


def test_missing_secret_is_not_found(make_client):
    """A path with no secret is a not-found error naming the path and the mount."""
    with pytest.raises(VaultSecretNotFoundError, match="secret/nothing/here"):
        make_client().get_secret("secret/nothing/here")


def test_api_style_path_gets_a_hint(make_client):
    """A path written with data/ gets a hint to write it as `vault kv get` does."""
    with pytest.raises(VaultSecretNotFoundError, match="without 'data/'"):
        make_client().get_secret("secret/data/snowflake/etl")


@pytest.mark.parametrize("path", ["", "   ", "/", "secret/../sys", "secret//x", "secret/./x"])
def test_invalid_paths_are_refused(make_client, path):
    """Empty paths and paths with empty, '.' or '..' segments are refused."""
    with pytest.raises(VaultPathError):
        make_client().get_secret(path)


def test_non_string_path_is_refused(make_client):
    """A path that is not a string is a path error."""
    with pytest.raises(VaultPathError, match="string"):
        make_client().get_secret(None)  # type: ignore[arg-type]


def test_mount_root_is_refused(make_client):
    """The mount itself is not a secret; the error suggests a path under it."""
    with pytest.raises(VaultPathError, match="mount"):
        make_client().get_secret("secret/")


def test_permission_denied_names_capability_and_path(vault, make_client):
    """A read the policy forbids says which capability on which path is missing."""
    client = make_client(vault.role(policies=("narrow",)))
    assert client.get_secret("secret/team-a/app") == {"token": "abc"}
    with pytest.raises(VaultPermissionError) as info:
        client.get_secret("secret/snowflake/etl")
    assert "'read'" in str(info.value) and "secret/data/snowflake/etl" in str(info.value)


def test_permission_denied_does_not_log_in_again(vault, make_client):
    """A policy denial is not mistaken for an expired token: no second login."""
    client = make_client(vault.role(policies=("narrow",)))
    client.get_secret("secret/team-a/app")
    mark = vault.server.mark()
    with pytest.raises(VaultPermissionError):
        client.get_secret("secret/snowflake/etl")
    assert vault.server.requests_since(mark, "auth/approle/login") == []


@pytest.mark.parametrize(
    ("path", "expected"), [("secret/snowflake/etl", "ETL"), ("kv1/snowflake/etl", "ETL_V1")]
)
def test_detection_forbidden_falls_back(vault, mounts_forbidden_proxy, path, expected):
    """Without access to the mounts endpoint the client tries v2 then v1 and still reads."""
    from gds_vault import VaultClient

    with VaultClient(mounts_forbidden_proxy.addr, auth=vault.role()) as client:
        assert client.get_secret(path, key="user") == expected
        assert "etl" in client.list_secrets(path.rsplit("/", 1)[0])
    assert mounts_forbidden_proxy.blocked  # the detection really was refused


def test_forbidden_detection_is_retried_later(vault, mounts_forbidden_proxy):
    """A guessed layout is trusted only for a while, then detection is tried again."""
    from gds_vault import VaultClient
    from gds_vault._kv import GUESS_TTL

    now = [0.0]
    with VaultClient(mounts_forbidden_proxy.addr, auth=vault.role(), clock=lambda: now[0]) as client:
        client.get_secret("secret/snowflake/etl")
        client.get_secret("secret/team-a/app")
        asked = len(mounts_forbidden_proxy.blocked)
        now[0] += GUESS_TTL + 1
        client.clear_cache()
        client.get_secret("secret/snowflake/etl")
    assert asked == 1
    assert len(mounts_forbidden_proxy.blocked) == 2


def test_detection_is_remembered_per_mount(vault, make_client):
    """The mounts endpoint is asked once per mount, not once per secret."""
    vault.server.kv_put("secret", "other", {"x": "1"})
    client = make_client()
    client.get_secret("secret/snowflake/etl")
    mark = vault.server.mark()
    client.get_secret("secret/other")
    assert vault.server.requests_since(mark, "sys/internal/ui/mounts/", prefix=True) == []


def test_lists_secrets_v2_and_v1(make_client):
    """list_secrets returns the names under a path on both KV versions."""
    client = make_client()
    assert "etl" in client.list_secrets("secret/snowflake")  # other tests add more
    assert "snowflake/" in client.list_secrets("secret")
    assert client.list_secrets("kv1/snowflake") == ["etl"]


def test_list_of_empty_folder_is_empty(make_client):
    """Listing a folder with nothing under it returns an empty list."""
    assert make_client().list_secrets("secret/no/such/folder") == []


def test_list_without_permission_is_permission_error(vault, make_client):
    """Listing where the policy has no 'list' is a permission error."""
    client = make_client(vault.role(policies=("narrow",)))
    with pytest.raises(VaultPermissionError, match="'list'"):
        client.list_secrets("secret/team-a")


def test_raw_read_returns_lease_information(make_client):
    """read() returns data with lease fields; KV v1's ttl field becomes the lease duration."""
    result = make_client().read("kv1/snowflake/etl")
    assert result["data"]["user"] == "ETL_V1"
    assert result["lease_duration"] == 45
    assert result["renewable"] is False


def test_raw_read_of_missing_path_is_not_found(make_client):
    """read() of a path with nothing is a not-found error."""
    with pytest.raises(VaultSecretNotFoundError):
        make_client().read("kv1/missing")


def test_closed_client_is_runtime_error(vault, make_client):
    """Using a closed client raises VaultClientClosedError (a RuntimeError)."""
    client = make_client()
    client.close()
    try:
        client.get_secret("secret/snowflake/etl")
    except VaultClientClosedError as exc:
        assert "create a new one" in str(exc)
    else:
        raise AssertionError("a closed client must refuse to work")
