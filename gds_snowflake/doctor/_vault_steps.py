"""The Vault-side ``gds-snowflake doctor`` steps: config, vault, auth and secret.

``config`` builds the Vault client and names the variables set (never their values);
``vault`` asks the unauthenticated ``sys/health`` with the client's own session and notes
Vault's clock for the ``clock`` step; ``auth`` logs in and looks the token up; ``secret``
reads the secret, remembers the credential values so that the runner can scrub them, and
checks the fields with the runtime's own :func:`~gds_snowflake._credentials.read_fields`,
so a secret fails here with the message get_snowflake_connection() would give.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from gds_snowflake._credentials import SecretLayout, read_fields
from gds_snowflake._errors import SnowflakeSecretError
from gds_snowflake._lease import fields_of_lease, holder_for
from gds_snowflake.doctor._base import DoctorState, Outcome, fail
from gds_vault import (
    VaultAuthError,
    VaultConfigError,
    VaultConnectionError,
    VaultLeasedSecretError,
    VaultPermissionError,
    VaultResponseError,
    VaultSecretNotFoundError,
    VaultTimeoutError,
    VaultTLSError,
)

if TYPE_CHECKING:
    from gds_vault import VaultClient

__all__ = ["VaultSteps"]

_VARIABLE_PREFIXES = ("VAULT_", "BAO_", "HVAULT_", "SNOWFLAKE_", "GDS_VAULT_")


class VaultSteps(DoctorState):
    """Steps config, vault, auth and secret."""

    def _step_config(self) -> str:
        names = sorted(
            name
            for name, value in self.environ.items()
            if name.startswith(_VARIABLE_PREFIXES) and str(value).strip()
        )
        found = ", ".join(names) + " set" if names else "no VAULT_* or SNOWFLAKE_* variables set"
        if self.options_given:
            found += "; options " + ", ".join(self.options_given)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                self.client = self.make_client()
            except VaultConfigError as exc:
                raise fail(f"{found}; {exc}", self._config_fix(exc)) from None
        auth = self.client.auth
        mount = getattr(auth, "mount", None)
        detail = (
            f"{found}; {auth.name} auth"
            + (f" at auth/{mount}" if mount else "")
            + f" (credentials from {auth.source})"
        )
        if not self.path:
            raise fail(
                f"{detail}; no secret path",
                "Pass the secret's path (gds-snowflake doctor secret/snowflake/etl) or set "
                "SNOWFLAKE_VAULT_PATH.",
            )
        detail += f"; secret {self.path}"
        if caught:
            raise Outcome("warn", detail, " ".join(str(w.message) for w in caught))
        return detail

    def _config_fix(self, exc: VaultConfigError) -> str:
        if exc.fix:
            return exc.fix
        has_addr = "--addr" in self.options_given or any(
            self.environ.get(n, "").strip() for n in ("VAULT_ADDR", "BAO_ADDR", "HVAULT_ADDR")
        )
        if not has_addr:
            return (
                "Set VAULT_ADDR to your Vault server's address, e.g. "
                "export VAULT_ADDR=https://vault.example.com:8200 (or pass --addr)."
            )
        if str(exc).startswith("No Vault credentials"):
            return (
                "Give the job a Vault identity: VAULT_ROLE_ID and VAULT_SECRET_ID (AppRole), "
                "VAULT_TOKEN or VAULT_TOKEN_FILE (token), VAULT_JWT_ROLE and VAULT_JWT_FILE "
                "(JWT), or VAULT_AUTH_METHOD=userpass, ldap, cert or aws with its variables; "
                "a person can run `vault login` instead (its ~/.vault-token is used when "
                "nothing else is set)."
            )
        return "Correct the setting the message names; README.md, 'Configuration', lists them."

    def _step_vault(self) -> str:
        client = self.client
        assert client is not None
        addr, verify = client.addr, client.settings.verify
        parts = urlsplit(addr)
        before = self.clock()
        try:
            # The client's own session: the same TLS settings, client certificate and proxies.
            health = client.health()
        except VaultTimeoutError as exc:
            raise fail(
                str(exc),
                "Check that Vault is healthy and reachable from here (firewall, proxy); "
                "raise VAULT_CLIENT_TIMEOUT (or --timeout) for a slow link.",
            ) from None
        except VaultTLSError as exc:  # a certificate or scheme problem, not the network
            raise fail(
                str(exc),
                exc.fix
                or "Set VAULT_CACERT (or --ca-cert) to the CA certificate that signed Vault's "
                "certificate, and check that VAULT_ADDR names a host in that certificate.",
            ) from None
        except VaultConnectionError as exc:
            raise fail(
                str(exc),
                "Check VAULT_ADDR (scheme, host and port) and that Vault is running and "
                "reachable from this machine (firewall, VPN, HTTPS_PROXY/NO_PROXY).",
            ) from None
        except VaultResponseError as exc:
            raise fail(
                str(exc),
                exc.fix
                or "VAULT_ADDR must point at Vault itself (scheme, host and port, no path), "
                "not at a web page or a failing proxy or load balancer.",
            ) from None
        self.local_time = (before + self.clock()) / 2
        self.server_time = health.server_time
        version = health.version or "unknown version"
        if not health.initialized:
            raise fail(
                f"{addr} answered: version {version}, not initialized",
                "An operator must initialize Vault (vault operator init).",
            )
        if health.sealed:
            raise fail(
                f"{addr} answered: version {version}, sealed",
                "An operator must unseal Vault (vault operator unseal); "
                "nothing can be read until then.",
            )
        elapsed = health.elapsed * 1000
        role = "standby" if health.standby else "active"
        detail = f"{addr} answered in {elapsed:.0f} ms: version {version}, unsealed, {role}"
        if parts.scheme == "https":
            if verify is False:
                raise Outcome(
                    "warn",
                    f"{detail}; TLS certificate NOT verified",
                    "Stop skipping verification (VAULT_SKIP_VERIFY / --tls-skip-verify): set "
                    "VAULT_CACERT to Vault's CA certificate instead.",
                )
            trust = "the system CAs" if verify is True else str(verify)
            return f"{detail}; TLS verified against {trust}"
        if parts.hostname in ("127.0.0.1", "localhost", "::1"):
            return f"{detail}; plain HTTP on loopback"
        raise Outcome(
            "warn",
            f"{detail}; plain HTTP: tokens and secrets cross the network unencrypted",
            "Use an https:// VAULT_ADDR.",
        )

    def _step_auth(self) -> str:
        client = self.client
        assert client is not None
        try:
            status = client.token_status()
        except VaultAuthError as exc:
            raise fail(str(exc), exc.fix or _auth_fix(client)) from None
        method = status.method + (f" at auth/{status.mount}" if status.mount else "")
        if status.source:
            method += f" (credentials from {status.source})"
        if not status.lookup_allowed:
            raise Outcome(
                "warn",
                f"logged in with {method}; the token may not look itself up, so its TTL and "
                "policies are unknown",
                "Give the role the 'default' policy (it allows auth/token/lookup-self).",
            )
        renewable = "renewable" if status.renewable else "not renewable"
        policies = ", ".join(status.policies + status.identity_policies) or "none"
        return (
            f"logged in with {method}; token TTL {status.ttl_text}, {renewable}, "
            f"policies {policies}"
        )

    def _step_secret(self) -> str:
        from gds_snowflake._provider import SnowflakeConnectionProvider

        client, path = self.client, self.path
        assert client is not None
        assert path is not None
        leased = ""
        try:
            self.secret = client.get_secret(path)
        except VaultLeasedSecretError as exc:
            leased = self._take_lease(client, path, exc)
        except VaultSecretNotFoundError as exc:
            # The library's fix when it knows the one mistake (a data/ written by hand, a
            # disabled mount); otherwise: check the path, or write the secret there.
            raise fail(
                str(exc),
                exc.fix
                or f"Check the path (mount first, as `vault kv get` takes it, without 'data/'); "
                f"if it is right, the secret must be written: vault kv put {path} account=... "
                "user=... private_key=@rsa_key.p8",
            ) from None
        except VaultPermissionError as exc:
            raise fail(
                str(exc),
                exc.fix
                or f"Ask your Vault administrator to grant 'read' on {path} to the role's "
                "policy (for KV v2 the policy path has 'data/' after the mount).",
            ) from None
        layout = SecretLayout()
        for name in (
            layout.password,
            layout.token,
            layout.private_key,
            layout.private_key_passphrase,
        ):
            self._remember_secret(self.secret.get(name))
        provider = SnowflakeConnectionProvider(
            path, vault_client=client, environ=self.environ, layout=layout, **self.snowflake_options
        )
        self.overrides = provider.overrides
        try:
            # The runtime's own checks and messages: what get_snowflake_connection() says.
            self.fields = fields = read_fields(self.secret, path, layout)
        except SnowflakeSecretError as exc:
            raise fail(
                str(exc),
                f"Correct the secret as the message says: vault kv patch {path} "
                "<field>=<value> sets one field and keeps the others (a private key from its "
                "file: private_key=@rsa_key.p8).",
            ) from None
        present = ", ".join(sorted(map(str, self.secret)))
        account = self.overrides.get("account") or fields.account
        if account is None:
            raise fail(
                f"{path} has fields {present}; no {layout.account!r}, SNOWFLAKE_ACCOUNT or "
                "--account",
                "Set SNOWFLAKE_ACCOUNT or pass --account (a dynamic secret has no account)."
                if self.lease is not None
                else f"Add the account identifier: vault kv patch {path} "
                "account=<orgname-account>, or set SNOWFLAKE_ACCOUNT.",
            )
        self.user = self.overrides.get("user") or fields.user
        detail = (
            f"{path} has fields {present}; {fields.method} authentication as user "
            f"{self.user}, account {account}{leased}"
        )
        # Key pair, then token, then password: what else the secret holds is not used.
        ignored = [
            name
            for name, unused in (
                (layout.token, fields.private_key is not None),
                (layout.password, fields.method != "password"),
            )
            if unused and self.secret.get(name)
        ]
        if ignored:
            fields_are = "fields are" if len(ignored) > 1 else "field is"
            raise Outcome(
                "warn",
                f"{detail} (the {' and '.join(ignored)} {fields_are} ignored)",
                f"Once {fields.method} login works, drop the {' and the '.join(ignored)} "
                f"from {path} (vault kv put the secret again without it).",
            )
        return detail

    def _take_lease(self, client: VaultClient, path: str, exc: VaultLeasedSecretError) -> str:
        """A dynamic secret: its fields under our names, the lease held for the login
        step (and revoked when the doctor closes), one renewal tried."""
        from gds_vault import Lease

        lease = exc.lease
        assert isinstance(lease, Lease)
        self.lease = lease
        for name in ("password", "rsa_private_key"):
            self._remember_secret(lease.data.get(name))
        try:
            self.secret = fields_of_lease(lease)
        except SnowflakeSecretError as bad:
            raise fail(
                str(bad),
                f"Check the role behind {path}: the database secrets engine's Snowflake "
                "plugin gives username with password, or with rsa_private_key "
                "(credential_type=rsa_private_key).",
            ) from None
        holder_for(client, path, lease=lease)  # the login step logs in with this lease
        renewable = "renewable" if lease.renewable else "not renewable"
        try:
            client.renew_lease(lease)
        except VaultPermissionError as denied:
            raise Outcome(
                "warn",
                f"dynamic secret: lease {lease.lease_id}, {lease.duration:.0f} s, {renewable}; "
                f"renewing it was refused ({denied})",
                'Grant the role\'s policy path "sys/leases/renew" { capabilities = '
                '["update"] } (Vault\'s default policy has it), or connections will lose '
                "their user when the lease ends.",
            ) from None
        return f"; dynamic secret: lease {lease.duration:.0f} s, {renewable}, renewal works"


def _auth_fix(client: VaultClient) -> str:
    auth = client.auth
    mount = getattr(auth, "mount", auth.name)
    fixes = {
        "approle": (
            "Check VAULT_ROLE_ID and VAULT_SECRET_ID: the secret_id may have expired, used up "
            "its uses or been destroyed. Ask your Vault administrator for a new one "
            f"(vault write -f auth/{mount}/role/<role>/secret-id) and update VAULT_SECRET_ID."
        ),
        "token": (
            f"Get a fresh token (vault login, or restart the Vault Agent); the token came from "
            f"{auth.source}."
        ),
        "userpass": (
            f"Check VAULT_USERNAME and the password (VAULT_PASSWORD_FILE); the user must exist "
            f"on auth/{mount} (vault write auth/{mount}/users/<name> password=...)."
        ),
        "ldap": (
            f"Check VAULT_USERNAME and the LDAP password (VAULT_PASSWORD_FILE); if they are "
            f"right, ask your Vault administrator whether auth/{mount} can reach its LDAP server."
        ),
        "cert": (
            f"The client certificate (VAULT_CLIENT_CERT) must be signed by a CA registered on "
            f"auth/{mount} (vault write auth/{mount}/certs/<role> certificate=@ca.pem), and "
            "VAULT_CERT_ROLE, if set, must name that role."
        ),
        "aws": (
            f"Check VAULT_AWS_ROLE (an iam role on auth/{mount} bound to this IAM principal), "
            "that the job's AWS credentials are current, and VAULT_AWS_IAM_SERVER_ID when "
            "Vault requires it."
        ),
    }
    return fixes.get(
        auth.name,
        "Check VAULT_JWT_ROLE, that the JWT file holds a current token, and that the role's "
        f"bound claims (issuer, audience, subject) on auth/{mount} match it.",
    )
