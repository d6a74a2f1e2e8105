"""Choosing the auth method from VAULT_* variables.

VAULT_AUTH_METHOD picks one explicitly. Without it, the first that fits wins:

1. a token: VAULT_TOKEN, or VAULT_TOKEN_FILE;
2. AppRole: VAULT_ROLE_ID (with VAULT_SECRET_ID or VAULT_SECRET_ID_FILE);
3. JWT: VAULT_JWT_ROLE (with VAULT_JWT_FILE);
4. the Vault CLI's token, ``~/.vault-token`` (what ``vault login`` leaves), as the Go
   client and the CLI use it when nothing else is set.

userpass, ldap, cert and aws are never guessed (a client certificate or AWS credentials
in the environment are not a request to log in with them); their variables without
VAULT_AUTH_METHOD are an error that says which method to name, rather than a silent
fallback to another identity.
"""

from __future__ import annotations

from collections.abc import Mapping

from gds_vault import _env
from gds_vault._auth.approle import AppRoleAuth
from gds_vault._auth.aws import DEFAULT_REGION, AWSIAMAuth
from gds_vault._auth.base import AuthMethod
from gds_vault._auth.cert import CertAuth
from gds_vault._auth.jwt import JWTAuth
from gds_vault._auth.token import TokenAuth, vault_cli_token_path
from gds_vault._auth.userpass import LDAPAuth, UserpassAuth
from gds_vault._errors import VaultConfigError

__all__ = ["AUTH_METHODS", "auth_from_env"]

AUTH_METHODS = ("token", "approle", "jwt", "kubernetes", "userpass", "ldap", "cert", "aws")

# Variables that belong to a method that must be named: variable -> the methods.
_NAMED_ONLY = {
    "VAULT_USERNAME": "userpass or ldap",
    "VAULT_PASSWORD": "userpass or ldap",
    "VAULT_PASSWORD_FILE": "userpass or ldap",
    "VAULT_CERT_ROLE": "cert",
    "VAULT_AWS_ROLE": "aws",
    "VAULT_AWS_IAM_SERVER_ID": "aws",
}

NO_CREDENTIALS = (
    "No Vault credentials found in the environment. Set one of: VAULT_TOKEN (or "
    "VAULT_TOKEN_FILE); VAULT_ROLE_ID with VAULT_SECRET_ID (or VAULT_SECRET_ID_FILE); "
    "VAULT_JWT_ROLE with VAULT_JWT_FILE; or VAULT_AUTH_METHOD=userpass, ldap, cert or aws "
    "with its variables. For a person: run `vault login` (its token, {path}, is used when "
    "nothing else is set)."
)


def auth_from_env(environ: Mapping[str, str]) -> AuthMethod:
    """Choose the auth method from the environment (see the module docstring).

    Raises:
        VaultConfigError: Naming the variable that is missing or inconsistent.
    """
    method = (environ.get("VAULT_AUTH_METHOD") or "").strip().lower()
    if method and method not in AUTH_METHODS:
        raise VaultConfigError(
            f"VAULT_AUTH_METHOD={method!r} is not known; use one of {', '.join(AUTH_METHODS)}."
        )
    mount = (environ.get("VAULT_AUTH_MOUNT") or "").strip().strip("/") or None
    token = _env.read(environ, "VAULT_TOKEN")
    token_file = _env.read(environ, "VAULT_TOKEN_FILE")
    role_id = _env.read(environ, "VAULT_ROLE_ID")
    jwt_role = _env.read(environ, "VAULT_JWT_ROLE")

    if method == "token" or (not method and (token or token_file)):
        auth = _token(environ, token, token_file, explicit=bool(method))
        if not method:
            token_variable = _env.source_of(environ, "VAULT_TOKEN") if token else "VAULT_TOKEN_FILE"
            auth.passed_over(_passed_over(environ), token_variable)
        return auth
    if method == "approle" or (not method and role_id):
        return _approle(environ, role_id, mount)
    if method in ("jwt", "kubernetes") or (not method and jwt_role):
        return _jwt(environ, method, jwt_role, mount)
    if method in ("userpass", "ldap"):
        return _password(environ, method, mount)
    if method == "cert":
        return CertAuth(_env.read(environ, "VAULT_CERT_ROLE"), mount=mount or "cert")
    if method == "aws":
        return AWSIAMAuth(
            _env.read(environ, "VAULT_AWS_ROLE"),
            server_id=_env.read(environ, "VAULT_AWS_IAM_SERVER_ID"),
            region=_env.read(environ, "VAULT_AWS_REGION") or DEFAULT_REGION,
            sts_endpoint=_env.read(environ, "VAULT_AWS_STS_ENDPOINT"),
            mount=mount or "aws",
        )
    for variable, methods in _NAMED_ONLY.items():
        if _env.read(environ, variable):
            raise VaultConfigError(
                f"{variable} is set but VAULT_AUTH_METHOD is not: set VAULT_AUTH_METHOD to "
                f"{methods} to log in that way."
            )
    cli_token = vault_cli_token_path(environ)
    if cli_token.is_file():
        return TokenAuth.vault_cli(environ)
    raise VaultConfigError(NO_CREDENTIALS.format(path=cli_token))


# Variables of the methods that a token, when set, wins over (the chooser's order).
_OUTRANKED = {"VAULT_ROLE_ID": "approle", "VAULT_JWT_ROLE": "jwt"}


def _passed_over(environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """(variable, method) for each set variable of a method that the token outranked."""
    return tuple(
        (variable, method)
        for variable, method in _OUTRANKED.items()
        if _env.read(environ, variable)
    )


def _token(
    environ: Mapping[str, str], token: str | None, token_file: str | None, *, explicit: bool
) -> TokenAuth:
    if token:
        return TokenAuth(token, source=_env.source_of(environ, "VAULT_TOKEN"))
    if token_file:
        return TokenAuth(token_file=token_file, source=f"VAULT_TOKEN_FILE ({token_file})")
    cli_token = vault_cli_token_path(environ)
    if explicit and cli_token.is_file():
        return TokenAuth.vault_cli(environ)
    raise VaultConfigError(
        "VAULT_AUTH_METHOD=token needs VAULT_TOKEN or VAULT_TOKEN_FILE, or a token from "
        f"`vault login` in {cli_token}."
    )


def _approle(environ: Mapping[str, str], role_id: str | None, mount: str | None) -> AppRoleAuth:
    if not role_id:
        raise VaultConfigError("AppRole login needs VAULT_ROLE_ID (and VAULT_SECRET_ID).")
    secret_id = _env.read(environ, "VAULT_SECRET_ID")
    secret_id_file = _env.read(environ, "VAULT_SECRET_ID_FILE")
    if not secret_id and not secret_id_file:
        raise VaultConfigError(
            "VAULT_ROLE_ID is set but VAULT_SECRET_ID and VAULT_SECRET_ID_FILE are not; "
            "set one of them to the AppRole's secret_id."
        )
    return AppRoleAuth(
        role_id,
        secret_id if not secret_id_file else None,
        secret_id_file=secret_id_file,
        wrapped=_env.read_bool(environ, "VAULT_SECRET_ID_WRAPPED"),
        mount=mount or "approle",
    )


def _jwt(
    environ: Mapping[str, str], method: str, jwt_role: str | None, mount: str | None
) -> JWTAuth:
    if not jwt_role:
        raise VaultConfigError(f"{method or 'JWT'} login needs VAULT_JWT_ROLE (the Vault role).")
    jwt_file = _env.read(environ, "VAULT_JWT_FILE")
    if method == "kubernetes":
        return JWTAuth.kubernetes(
            jwt_role,
            **({"jwt_file": jwt_file} if jwt_file else {}),
            mount=mount or "kubernetes",
        )
    if not jwt_file:
        raise VaultConfigError("JWT login needs VAULT_JWT_FILE, the file holding the JWT.")
    return JWTAuth(jwt_role, jwt_file=jwt_file, mount=mount or "jwt")


def _password(environ: Mapping[str, str], method: str, mount: str | None) -> UserpassAuth:
    username = _env.read(environ, "VAULT_USERNAME")
    if not username:
        raise VaultConfigError(
            f"VAULT_AUTH_METHOD={method} needs VAULT_USERNAME, the {method} user to log in as."
        )
    password_file = _env.read(environ, "VAULT_PASSWORD_FILE")
    # Not stripped: a password may begin or end with a space. (A password file is
    # stripped, since editors end files with a newline that is not part of it.)
    password = environ.get("VAULT_PASSWORD") or None
    if password_file and password:
        raise VaultConfigError(
            "Both VAULT_PASSWORD_FILE and VAULT_PASSWORD are set; keep only one "
            "(VAULT_PASSWORD_FILE is the safer)."
        )
    kind = LDAPAuth if method == "ldap" else UserpassAuth
    return kind(username, password, password_file=password_file, mount=mount)
