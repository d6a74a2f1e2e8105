"""AWS IAM auth: prove the process's IAM identity with a signed sts:GetCallerIdentity.

The client signs (AWS Signature Version 4, with botocore) a GetCallerIdentity request it
never sends; Vault sends it to STS and learns from the answer which IAM principal signed
it. What Vault receives is base64 of the request's URL, body and headers, as the Vault
CLI's ``vault login -method=aws`` builds them. The signed request is itself a credential
for a few minutes, so it is registered for redaction and never logged.

botocore is an optional dependency (``pip install 'gds-vault-snowflake[aws]'``), imported
at the first login only.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from typing import TYPE_CHECKING, Any

from gds_vault._auth.base import AuthMethod, LoginResult, checked_mount, login
from gds_vault._errors import VaultConfigError
from gds_vault._logging import register_secret

if TYPE_CHECKING:
    from gds_vault._transport import Transport

__all__ = ["SERVER_ID_HEADER", "AWSIAMAuth"]

SERVER_ID_HEADER = "X-Vault-AWS-IAM-Server-ID"
DEFAULT_REGION = "us-east-1"  # what the Vault CLI signs for unless told otherwise
GLOBAL_STS_ENDPOINT = "https://sts.amazonaws.com/"  # what Vault calls unless configured
_GET_CALLER_IDENTITY = "Action=GetCallerIdentity&Version=2011-06-15"
_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"


class _QuietSigning(logging.Filter):
    """Drops botocore.auth's records while this thread signs a Vault login.

    botocore logs the canonical request at DEBUG, session token included, and the
    signature: together a Vault login for the next few minutes. Only records made during
    our own signing are dropped; other botocore users keep their logs.
    """

    def __init__(self) -> None:
        super().__init__()
        self._signing = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self._signing, "on", False)

    def sign(self, request: Any, credentials: Any, region: str) -> None:
        from botocore.auth import SigV4Auth

        botocore_auth = logging.getLogger("botocore.auth")
        if self not in botocore_auth.filters:
            botocore_auth.addFilter(self)
        self._signing.on = True
        try:
            SigV4Auth(credentials, "sts", region).add_auth(request)
        finally:
            self._signing.on = False


_quiet_signing = _QuietSigning()


class AWSIAMAuth(AuthMethod):
    """Log in with the process's AWS IAM identity (Vault's ``aws`` method, ``iam`` type).

    Credentials come from botocore's standard chain: AWS_ACCESS_KEY_ID and friends, the
    shared credentials and config files (AWS_PROFILE), SSO, web identity, the ECS
    container endpoint, the EC2 instance metadata service. They are looked up at each
    login, so rotating instance or container credentials are always current.

    Args:
        role: The Vault role (VAULT_AWS_ROLE); None lets Vault use the IAM principal's
            name. Default None.
        server_id: Value of the ``X-Vault-AWS-IAM-Server-ID`` header, signed with the
            request, when Vault's aws config requires one (VAULT_AWS_IAM_SERVER_ID).
        region: The region the request is signed for (VAULT_AWS_REGION). Default
            "us-east-1", as the Vault CLI.
        sts_endpoint: The STS URL the request is signed for (VAULT_AWS_STS_ENDPOINT);
            it must match the ``sts_endpoint`` Vault is configured with. Default the
            global endpoint https://sts.amazonaws.com/.
        mount: Where the method is mounted. Default "aws".
        botocore_session: A ``botocore.session.Session`` to take credentials from
            (e.g. one made for a profile). Default: a new session, the standard chain.
    """

    name = "aws"

    def __init__(
        self,
        role: str | None = None,
        *,
        server_id: str | None = None,
        region: str = DEFAULT_REGION,
        sts_endpoint: str | None = None,
        mount: str = "aws",
        botocore_session: Any = None,
    ) -> None:
        if role is not None and (not isinstance(role, str) or not role.strip()):
            raise VaultConfigError("The AWS auth role name is empty; check VAULT_AWS_ROLE.")
        if not isinstance(region, str) or not region.strip():
            raise VaultConfigError("The AWS region is empty; check VAULT_AWS_REGION.")
        endpoint = sts_endpoint or GLOBAL_STS_ENDPOINT
        if not endpoint.startswith("https://"):
            raise VaultConfigError(
                f"VAULT_AWS_STS_ENDPOINT={endpoint!r} must be an https:// URL of STS."
            )
        self.role = role.strip() if role else None
        self.server_id = server_id.strip() if server_id else None
        self.region = region.strip()
        self.sts_endpoint = endpoint if endpoint.endswith("/") else endpoint + "/"
        self.mount = checked_mount(mount)
        self._given_session = botocore_session
        self._session: Any = botocore_session
        self._credential_method: str | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"AWSIAMAuth(role={self.role!r}, server_id={self.server_id!r}, "
            f"region={self.region!r}, mount={self.mount!r})"
        )

    @property
    def source(self) -> str:
        found = f" (found: {self._credential_method})" if self._credential_method else ""
        role = f"role {self.role!r}" if self.role else "the role named as the IAM principal"
        return f"{role} on auth/{self.mount}, AWS credentials from botocore's chain{found}"

    def cache_identity(self) -> str | None:
        """The Vault role and the server ID header; None without a role, since Vault then
        takes the role from the IAM principal, which only the credentials tell."""
        if not self.role:
            return None
        return f"role={self.role} server_id={self.server_id or ''} region={self.region}"

    def after_fork(self) -> None:
        # botocore's refreshable credentials hold a lock that may be held at fork.
        self._lock = threading.Lock()
        self._session = self._given_session

    def _credentials(self) -> Any:
        """The current credentials (frozen: key, secret, session token) from the chain."""
        try:
            import botocore.exceptions
            import botocore.session
        except ImportError:
            raise VaultConfigError(
                "AWS IAM auth needs botocore: pip install 'gds-vault-snowflake[aws]'."
            ) from None
        try:
            with self._lock:
                if self._session is None:
                    self._session = botocore.session.get_session()
                credentials = self._session.get_credentials()
            frozen = credentials.get_frozen_credentials() if credentials is not None else None
        except botocore.exceptions.BotoCoreError as exc:
            raise VaultConfigError(
                f"Could not get AWS credentials ({type(exc).__name__}: {str(exc)[:200]}); "
                "check AWS_PROFILE and the AWS credentials and config files."
            ) from None
        if frozen is None or not frozen.access_key or not frozen.secret_key:
            raise VaultConfigError(
                "No AWS credentials found for the Vault login: botocore looked in the "
                "environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), "
                "the shared credentials and config files (AWS_PROFILE), the container "
                "endpoint and the instance metadata. Give the job an IAM role or set those "
                "variables."
            )
        register_secret(frozen.secret_key)
        register_secret(frozen.token)
        self._credential_method = getattr(credentials, "method", None)
        return frozen

    def login_data(self) -> dict[str, str]:
        """The body of the login request: the signed GetCallerIdentity, base64-encoded."""
        from botocore.awsrequest import AWSRequest

        credentials = self._credentials()
        headers = {"Content-Type": _CONTENT_TYPE}
        if self.server_id:
            headers[SERVER_ID_HEADER] = self.server_id
        request = AWSRequest(
            method="POST", url=self.sts_endpoint, data=_GET_CALLER_IDENTITY, headers=headers
        )
        _quiet_signing.sign(request, credentials, self.region)
        # As Go's http.Header: each name to a list of values (what the Vault CLI sends).
        signed = {name: [value] for name, value in request.headers.items()}
        register_secret(signed["Authorization"][0])
        encoded_headers = _b64(json.dumps(signed))
        register_secret(encoded_headers)
        data = {
            "iam_http_request_method": "POST",
            "iam_request_url": _b64(self.sts_endpoint),
            "iam_request_body": _b64(_GET_CALLER_IDENTITY),
            "iam_request_headers": encoded_headers,
        }
        if self.role:
            data["role"] = self.role
        return data

    def login(self, transport: Transport) -> LoginResult:
        role = f"role {self.role!r}" if self.role else "the role named as your IAM principal"
        server_id = (
            "the X-Vault-AWS-IAM-Server-ID value (VAULT_AWS_IAM_SERVER_ID)"
            if self.server_id
            else "whether Vault requires VAULT_AWS_IAM_SERVER_ID"
        )
        return login(
            transport,
            self.mount,
            dict(self.login_data()),
            f"Check that {role} exists on auth/{self.mount} with auth_type iam and binds "
            f"this IAM principal (VAULT_AWS_ROLE), that the AWS credentials are current, "
            f"{server_id}, and that VAULT_AWS_REGION / VAULT_AWS_STS_ENDPOINT match Vault's "
            "STS settings.",
        )


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")
