"""Secret hygiene for the whole test suite: no known secret in a log, an error or a repr.

The autouse fixture :func:`secret_hygiene` (made autouse for every test by
``tests/conftest.py``) watches each test and fails it when a *known secret* appears in

- any log record, from any logger, at DEBUG and above (the message, and the message of
  an attached exception), captured raw: before any redaction filter, since redaction is
  the second line of defence and the test is about the first;
- the message of any error the libraries raised (``VaultError``,
  ``VaultClientClosedError``, ``SnowflakeVaultError`` and their subclasses), whether
  the test caught it or not;
- the ``repr()`` of the libraries' objects made during the test (clients, auth methods,
  settings, token state, providers, connections, credentials, loaded keys).

Known secrets are everything passed to :func:`gds_vault._logging.register_secret`: the
libraries register the tokens, secret_ids, JWTs and wrapping tokens they handle, and the
test helpers (``OpenBaoServer``, the Snowflake ``World``) register the passwords, private
keys (each PEM line), passphrases and tokens they write. Tests may call :func:`register`
for values of their own. Test locals are never inspected: tests hold secrets on purpose.

Cheap by design: each record's message appended to a list (handlers still see only what
the loggers' levels let through, as without the check), a list append per library error
or object, and at teardown one substring search per known secret over the joined text.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from gds_vault import _logging as vault_logging
from gds_vault.testing import register_written_secret

__all__ = ["find_leaks", "register", "secret_hygiene"]


def register(*values: object) -> None:
    """Make values known secrets (a PEM text also registers each of its base64 lines)."""
    for value in values:
        register_written_secret(
            value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        )


class _Watch:
    """What one test produced: log texts, library errors and library objects."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []  # (where, text)
        self.errors: list[BaseException] = []
        self.objects: list[object] = []


_watch = _Watch()
# Every secret known so far this session. register_secret keeps a bounded set (it evicts
# when full), so each test's secrets are copied here at the test's end.
_known: set[str] = set()


def _capture(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:
        message = str(record.msg)
    _watch.texts.append((f"log record of {record.name} ({record.levelname})", message))
    exc = record.exc_info[1] if record.exc_info else None
    if exc is not None:
        _watch.texts.append((f"exception logged by {record.name}", f"{type(exc).__name__}: {exc}"))


def _install_logging() -> tuple[Any, Any]:
    """Make every logger create its records from DEBUG up and show them to the check, while
    handlers still get only the records they got before (the loggers' own levels decide).

    Lowering the root logger's level instead would feed every DEBUG record of every thread
    to pytest's own handlers, slowing the suite and making a fork more likely to catch a
    handler's stream lock held by another thread.
    """
    enabled_for, call_handlers = logging.Logger.isEnabledFor, logging.Logger.callHandlers

    def every_level(self: logging.Logger, level: int) -> bool:
        return level >= logging.DEBUG and self.manager.disable < level

    def capture_then_call(self: logging.Logger, record: logging.LogRecord) -> None:
        _capture(record)
        if enabled_for(self, record.levelno):
            call_handlers(self, record)

    logging.Logger.isEnabledFor = every_level  # type: ignore[method-assign]
    logging.Logger.callHandlers = capture_then_call  # type: ignore[method-assign]
    return enabled_for, call_handlers


def _error_classes() -> list[type[BaseException]]:
    from gds_snowflake._errors import SnowflakeVaultError
    from gds_vault._errors import VaultClientClosedError, VaultError

    return [VaultError, VaultClientClosedError, SnowflakeVaultError]


def _object_classes() -> list[type]:
    from gds_snowflake._connection import VaultSnowflakeConnection
    from gds_snowflake._credentials import SecretFields, SnowflakeCredentials
    from gds_snowflake._keys import LoadedKey
    from gds_snowflake._provider import SnowflakeConnectionProvider
    from gds_vault._auth import (
        AppRoleAuth,
        AWSIAMAuth,
        CertAuth,
        JWTAuth,
        LDAPAuth,
        LoginResult,
        TokenAuth,
        UserpassAuth,
    )
    from gds_vault._client import VaultClient
    from gds_vault._config import ClientSettings
    from gds_vault._token import _TokenState

    return [
        VaultClient,
        ClientSettings,
        AppRoleAuth,
        TokenAuth,
        JWTAuth,
        UserpassAuth,
        LDAPAuth,
        CertAuth,
        AWSIAMAuth,
        LoginResult,
        _TokenState,
        SnowflakeConnectionProvider,
        VaultSnowflakeConnection,
        SnowflakeCredentials,
        SecretFields,
        LoadedKey,
    ]


def _install() -> list[tuple[type, Any]]:
    """Record every library error and object made from now on; returns what to restore."""
    saved: list[tuple[type, Any]] = []
    for cls in _error_classes():
        own_init = cls.__dict__.get("__init__")
        saved.append((cls, own_init))

        def error_init(
            self: BaseException, *args: Any, __cls: type = cls, __own: Any = own_init, **kwargs: Any
        ) -> None:
            if __own is not None:  # the class's own __init__ (cause=, fix=), then record
                __own(self, *args, **kwargs)
            else:
                super(__cls, self).__init__(*args, **kwargs)  # type: ignore[arg-type]
            _watch.errors.append(self)

        cls.__init__ = error_init  # type: ignore[misc]
    # Objects are recorded by __new__, not __init__: a wrapper around __init__ would add a
    # frame between the caller and the library, and change which line warnings blame.
    for cls in _object_classes():
        assert "__new__" not in cls.__dict__, cls

        def object_new(cls_: type, *args: Any, **kwargs: Any) -> object:
            obj = object.__new__(cls_)
            _watch.objects.append(obj)
            return obj

        cls.__new__ = object_new  # type: ignore[assignment]
    return saved


def _uninstall(saved: list[tuple[type, Any]]) -> None:
    for cls, original in reversed(saved):
        if original is None:
            del cls.__init__  # type: ignore[misc]
        else:
            cls.__init__ = original  # type: ignore[misc]
    for cls in _object_classes():
        del cls.__new__


@pytest.fixture(scope="session")
def _hygiene_hooks() -> Iterator[None]:
    saved = _install()
    enabled_for, call_handlers = _install_logging()
    yield
    logging.Logger.isEnabledFor = enabled_for  # type: ignore[method-assign]
    logging.Logger.callHandlers = call_handlers  # type: ignore[method-assign]
    _uninstall(saved)


def _texts(watch: _Watch) -> Iterable[tuple[str, str]]:
    yield from watch.texts
    for error in watch.errors:
        yield f"message of {type(error).__name__}", str(error)
    for obj in watch.objects:
        try:
            text = repr(obj)
        except Exception:  # noqa: S112 - an object whose init failed half-way
            continue
        yield f"repr() of {type(obj).__name__}", text


def _describe_leak(secret: str, where: str, text: str) -> str:
    shown = text.replace(secret, "<<SECRET>>")
    if len(shown) > 400:
        at = shown.find("<<SECRET>>")
        shown = "..." + shown[max(0, at - 150) : at + 160] + "..."
    return (
        f"secret hygiene: a known secret ({len(secret)} characters, registered with "
        f"register_secret) appeared in the {where}:\n    {shown}\n(If that value is not "
        "really secret, a test registered a common word: give it a distinctive value.)"
    )


def find_leaks(watch: _Watch, secrets: Iterable[str]) -> list[str]:
    """Descriptions (without the secret) of each place a secret appears."""
    texts = list(_texts(watch))
    joined = "\n".join(text for _, text in texts)
    found = [s for s in secrets if s in joined]
    leaks = []
    for secret in found:
        for where, text in texts:
            if secret in text:
                leaks.append(_describe_leak(secret, where, text))
                break
    return leaks


def _snapshot_registered() -> None:
    with vault_logging._registered_lock:
        _known.update(vault_logging._registered)


@pytest.fixture(autouse=True)
def secret_hygiene(_hygiene_hooks: None) -> Iterator[_Watch]:
    """Fail the test if a known secret shows in a log record, library error or repr."""
    global _watch
    _snapshot_registered()
    watch = _watch = _Watch()
    try:
        yield watch
    finally:
        _watch = _Watch()
    _snapshot_registered()
    leaks = find_leaks(watch, _known)
    if leaks:
        pytest.fail("\n".join(leaks), pytrace=False)
