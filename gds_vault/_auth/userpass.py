"""userpass and LDAP auth: a user name and a password, from a file, a variable, or asked
for once at a terminal or in a notebook.

Prompting and re-logins: a token from a password login runs out (its max TTL), and the
client then logs in again on its own, maybe at 3 am with nobody at the keyboard. So the
password typed at the prompt is kept in memory (never on disk, never in a repr, log or
error; registered for redaction) and re-used for those re-logins. The prompt is shown
again only while no login with a typed password has succeeded yet (a typo at the start
is answered by asking again at the next call); once one has, a refusal is an error,
never a new prompt. A password file is re-read at every login, so it can be rotated.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import quote

from gds_vault._auth.base import (
    AuthMethod,
    LoginResult,
    checked_mount,
    login,
    read_credential_file,
)
from gds_vault._errors import VaultAuthError, VaultConfigError
from gds_vault._logging import register_secret

if TYPE_CHECKING:
    from gds_vault._transport import Transport

__all__ = ["LDAPAuth", "UserpassAuth", "ask_password", "can_prompt"]

#: Asks for the password: called with the prompt text, returns what was typed.
Prompt = Callable[[str], str]


def can_prompt() -> bool:
    """Whether someone can be asked: standard input is a terminal, or this is a notebook."""
    stdin = sys.stdin
    try:
        if stdin is not None and stdin.isatty():
            return True
    except (OSError, ValueError):  # a closed or detached stdin
        pass
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    # A Jupyter kernel's shell has a kernel; ipykernel routes getpass to the browser.
    return shell is not None and getattr(shell, "kernel", None) is not None


def ask_password(prompt: str) -> str:
    """Ask with :func:`getpass.getpass`, which does not echo; refuse rather than echo.

    Raises:
        VaultConfigError: Nobody can be asked, or the password could not be read
            without echoing it.
    """
    import getpass
    import warnings

    if not can_prompt():
        raise VaultConfigError(
            "No password for the Vault login and no terminal or notebook to ask in: set "
            "VAULT_PASSWORD_FILE to a file holding the password (or VAULT_PASSWORD, less safe)."
        )
    with warnings.catch_warnings():
        # getpass falls back to reading with echo (and a GetPassWarning) when it cannot
        # turn echo off; as an error, the warning stops it before anything is read.
        warnings.simplefilter("error", getpass.GetPassWarning)
        try:
            return getpass.getpass(prompt)
        except getpass.GetPassWarning:
            raise VaultConfigError(
                "Cannot ask for the Vault password without showing it (no terminal "
                "control); set VAULT_PASSWORD_FILE instead."
            ) from None
        except EOFError:
            raise VaultConfigError(
                "No password was typed for the Vault login (end of input); "
                "set VAULT_PASSWORD_FILE to run without a prompt."
            ) from None
        except Exception as exc:  # e.g. a notebook front end that cannot take input
            raise VaultConfigError(
                f"Could not ask for the Vault password ({type(exc).__name__}); "
                "set VAULT_PASSWORD_FILE to run without a prompt."
            ) from None


class UserpassAuth(AuthMethod):
    """Log in with a user name and password (Vault's ``userpass`` method).

    The password comes from, in this order: ``password_file`` (re-read at every login),
    ``password``, or ``prompt`` (asked once; see the module docstring for re-logins).

    Args:
        username: The Vault user name (VAULT_USERNAME).
        password: The password itself (VAULT_PASSWORD). Visible to anyone who can read
            the process's environment; prefer ``password_file``.
        password_file: A file holding the password (VAULT_PASSWORD_FILE).
        prompt: Called with a prompt text to ask for the password when neither of the
            above is given; None to never ask. Default: :func:`ask_password` (getpass,
            only at a terminal or in a notebook).
        mount: Where the method is mounted. Default "userpass".
    """

    name = "userpass"

    def __init__(
        self,
        username: str,
        password: str | None = None,
        *,
        password_file: str | os.PathLike[str] | None = None,
        prompt: Prompt | None = ask_password,
        mount: str | None = None,
    ) -> None:
        if not isinstance(username, str) or not username.strip():
            raise VaultConfigError(f"{type(self).__name__} needs a user name; set VAULT_USERNAME.")
        if password is not None and password_file is not None:
            raise VaultConfigError(
                "Give the password or a password file, not both; set only one of "
                "VAULT_PASSWORD and VAULT_PASSWORD_FILE."
            )
        if password is not None and not password:
            raise VaultConfigError("The password is empty; check VAULT_PASSWORD.")
        if password is None and password_file is None and prompt is None:
            raise VaultConfigError(
                f"{type(self).__name__} needs a password: set VAULT_PASSWORD_FILE "
                "(or VAULT_PASSWORD)."
            )
        self.username = username.strip()
        if self.username in (".", "..") or not self.username.isprintable():
            raise VaultConfigError(
                f"The user name {self.username!r} cannot be one segment of a login path "
                "('.', '..' or a control character); check VAULT_USERNAME."
            )
        self._password = password
        self.password_file = password_file
        self._prompt = prompt
        self.mount = checked_mount(mount or self.name)
        self._typed: str | None = None  # the password typed at the prompt, kept for re-logins
        self._typed_worked = False
        self._lock = threading.Lock()
        register_secret(password)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(username={self.username!r}, {self._password_source()}, "
            f"mount={self.mount!r})"
        )

    def _password_source(self) -> str:
        if self.password_file is not None:
            return f"password_file={os.fspath(self.password_file)!r}"
        return "password=<hidden>" if self._password is not None else "password=<prompt>"

    @property
    def source(self) -> str:
        if self.password_file is not None:
            where = f"the password file {os.fspath(self.password_file)}"
        elif self._password is not None:
            where = "a password given in the environment or code"
        else:
            where = "a password typed at the prompt"
        return f"user {self.username!r} on auth/{self.mount}, {where}"

    def cache_identity(self) -> str | None:
        """The user name: every login as that user gets the same policies."""
        return f"username={self.username}"

    def after_fork(self) -> None:
        self._lock = threading.Lock()

    def _password_for_login(self, transport: Transport) -> tuple[str, bool]:
        """The password and whether it was typed at the prompt."""
        if self.password_file is not None:
            password = read_credential_file(self.password_file, "password", "VAULT_PASSWORD_FILE")
            return password, False
        if self._password is not None:
            register_secret(self._password)  # in use again: kept by the redaction filter
            return self._password, False
        assert self._prompt is not None
        with self._lock:
            if self._typed is None:
                typed = self._prompt(
                    f"Vault password for {self.username} (auth/{self.mount} at {transport.addr}): "
                )
                if not typed:
                    raise VaultConfigError(
                        "No password was typed for the Vault login; try again, or set "
                        "VAULT_PASSWORD_FILE."
                    )
                register_secret(typed)
                self._typed = typed
            return self._typed, True

    def login(self, transport: Transport) -> LoginResult:
        password, typed = self._password_for_login(transport)
        try:
            result = login(
                transport,
                self.mount,
                {"password": password},
                self._advice(typed),
                # Quoted: a name with spaces or '?' must stay one path segment.
                login_path=f"login/{quote(self.username, safe='@')}",
            )
        except VaultAuthError:
            if typed and not self._typed_worked:
                self._typed = None  # a typo: ask again at the next login
            raise
        if typed:
            self._typed_worked = True
        return result

    def _advice(self, typed: bool) -> str:
        if typed and self._typed_worked:
            return (
                "The password typed earlier is no longer accepted (changed?); restart to be "
                "asked again, or set VAULT_PASSWORD_FILE."
            )
        where = (
            "the password typed"
            if typed
            else "the password file (VAULT_PASSWORD_FILE)"
            if self.password_file is not None
            else "VAULT_PASSWORD"
        )
        return f"Check the user name (VAULT_USERNAME={self.username!r}) and {where}."


class LDAPAuth(UserpassAuth):
    """Log in with an LDAP (or Active Directory) user name and password (Vault's ``ldap``
    method). Same arguments as :class:`UserpassAuth`; the mount defaults to "ldap"."""

    name = "ldap"

    def _advice(self, typed: bool) -> str:
        return (
            super()._advice(typed)
            + " Vault checks them against its LDAP server; if it could not reach that "
            "server, ask your Vault administrator."
        )
