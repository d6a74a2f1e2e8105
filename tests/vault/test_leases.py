"""gds_vault's lease calls against OpenBao's real database secrets engine on PostgreSQL."""

from __future__ import annotations

import time

import pytest

from gds_vault import Lease, VaultLeasedSecretError, VaultLeaseError, VaultPermissionError

pytestmark = pytest.mark.timeout(60)


def test_read_lease_gives_working_credentials_and_their_lease(leases):
    """read_lease returns the engine's username and password, which PostgreSQL accepts,
    with the lease's id, duration and renewability; repr shows no password."""
    client = leases.client()
    path = leases.role(ttl="30s", max_ttl="60s")
    lease = client.read_lease(path)
    assert isinstance(lease, Lease)
    assert lease.lease_id.startswith(path + "/")
    assert lease.renewable and lease.duration == 30
    assert 25 < lease.time_left() <= 30
    assert leases.postgres.can_login(lease.data["username"], lease.data["password"])
    assert lease.data["password"] not in repr(lease)
    assert client.stats.lease_reads == 1


def test_renewal_moves_the_end_and_is_capped_by_the_max_ttl(leases):
    """renew_lease extends the lease; near the role's max TTL Vault grants less than
    asked, with a warning, and the credentials still work until then."""
    client = leases.client()
    lease = client.read_lease(leases.role(ttl="2s", max_ttl="4s"))
    time.sleep(1.0)
    renewed = client.renew_lease(lease, increment=2)
    assert renewed.lease_id == lease.lease_id and renewed.data == lease.data
    assert renewed.expires_at > lease.expires_at
    capped = client.renew_lease(renewed, increment=10)
    assert capped.duration < 10
    assert any("max_ttl" in w for w in capped.warnings)
    assert client.stats.lease_renewals == 2
    assert leases.postgres.can_login(lease.data["username"], lease.data["password"])


def test_revoked_lease_drops_the_user_and_cannot_be_renewed(leases):
    """revoke_lease makes Vault drop the user at once; renewing it then is a
    VaultLeaseError that says to read the secret again; revoking twice is fine."""
    client = leases.client()
    lease = client.read_lease(leases.role(ttl="30s"))
    client.revoke_lease(lease)
    assert not leases.postgres.role_exists(lease.data["username"])
    with pytest.raises(VaultLeaseError, match="Read database/creds/.* again") as caught:
        client.renew_lease(lease)
    assert caught.value.lease_id == lease.lease_id
    client.revoke_lease(lease.lease_id)


def test_get_secret_refuses_a_dynamic_secret_and_hands_over_its_lease(leases):
    """get_secret on database/creds/<role> raises VaultLeasedSecretError carrying the
    lease it created (usable, not cached): a second call makes another lease."""
    client = leases.client()
    path = leases.role(ttl="30s")
    with pytest.raises(VaultLeasedSecretError, match="read_lease") as first:
        client.get_secret(path)
    lease = first.value.lease
    assert isinstance(lease, Lease)
    assert leases.postgres.can_login(lease.data["username"], lease.data["password"])
    with pytest.raises(VaultLeasedSecretError) as second:
        client.get_secret(path)
    assert second.value.lease.lease_id != lease.lease_id
    assert client.stats.cache_hits == 0


def test_read_lease_of_a_kv_secret_says_it_is_not_dynamic(leases, openbao):
    """A KV v1 secret read with read_lease: VaultLeaseError pointing at get_secret."""
    openbao.enable_kv("kv1-lease-test", version=1)
    openbao.kv_put("kv1-lease-test", "app", {"a": "b"}, version=1)
    openbao.write_policy("kv1-lease-test", 'path "kv1-lease-test/*" { capabilities = ["read"] }')
    client = leases.client()
    client.login()
    role_id, secret_id = openbao.approle("kv1-lease", policies=["kv1-lease-test"])
    from gds_vault import AppRoleAuth, VaultClient

    with VaultClient(openbao.addr, auth=AppRoleAuth(role_id, secret_id)) as kv_client:
        with pytest.raises(VaultLeaseError, match="get_secret"):
            kv_client.read_lease("kv1-lease-test/app")


def test_revocation_without_the_policy_names_sys_leases_revoke(leases, openbao):
    """Renewal is in Vault's default policy; revocation is not: a token without a grant
    on sys/leases/revoke gets VaultPermissionError naming the path."""
    openbao.write_policy("creds-only", 'path "database/creds/*" { capabilities = ["read"] }')
    role_id, secret_id = openbao.approle("creds-only", policies=["creds-only"])
    from gds_vault import AppRoleAuth, VaultClient

    with VaultClient(openbao.addr, auth=AppRoleAuth(role_id, secret_id)) as client:
        lease = client.read_lease(leases.role(ttl="30s"))
        client.renew_lease(lease)  # the default policy allows it
        with pytest.raises(VaultPermissionError, match="sys/leases/revoke"):
            client.revoke_lease(lease)


def test_a_lease_dies_with_its_token_and_says_so(leases):
    """The token outlives nothing it is not renewed for: a lease's ends_at is bounded by
    the token that read it; when the token expires, Vault drops the user."""
    client = leases.client(token_ttl="3s", token_max_ttl="3s")
    lease = client.read_lease(leases.role(ttl="60s", max_ttl="120s"))
    assert lease.expires_at - lease.token_expires_at > 50
    assert lease.time_left() <= 3.0
    time.sleep(4.0)
    assert not leases.postgres.can_login(lease.data["username"], lease.data["password"])


def test_after_a_new_login_the_old_tokens_end_is_final(leases):
    """When the client logs in again (its token near its max TTL), a lease read with the
    old token keeps the old token's end through renewals, and does die then: the caller
    must read new credentials before it."""
    # Whole seconds with room: Vault rounds TTLs to seconds, so a renewal 1.6 s before a
    # 3 s max TTL could come back as the full 2 s and not look capped.
    client = leases.client(token_ttl="4s", token_max_ttl="5s")
    lease = client.read_lease(leases.role(ttl="60s", max_ttl="120s"))
    time.sleep(3.0)  # past the token's refresh point (2.7 s); renew-self capped at 2 s: login
    renewed = client.renew_lease(lease, increment=60)
    assert client.stats.logins == 2
    assert renewed.expires_at - renewed.token_expires_at > 50
    assert renewed.token_expires_at == pytest.approx(lease.token_expires_at, abs=0.01)
    assert renewed.time_left() < 2.5
    time.sleep(2.5)  # past the old token's max TTL
    assert not leases.postgres.can_login(lease.data["username"], lease.data["password"])
