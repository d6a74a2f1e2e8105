"""What differs between the two connector lines gds_snowflake supports, 4.x and 5.x.

Found by asking the installed connector which parameters it knows and of which type,
not by its version number, so a 5.x release that learns or drops a parameter is
followed without a change here:

- 4.x lists its parameters in ``snowflake.connector.connection.DEFAULT_CONFIGURATION``
  as ``name: (default, accepted types)``; 5.x keeps that name but empty, and describes
  its parameters as the fields of ``snowflake.connector.connection.ConnectionConfig``
  (a dataclass whose field types are written as strings such as ``"int | None"``).
- Parameter types: 5.x's native core checks them before sending anything, and an
  integer parameter given a float fails (``login_timeout=30.0``: ``ProgrammingError`` errno 3,
  "Expected type Int for parameter 'login_timeout', got Double"); 4.x takes
  either. :func:`adapt_connect_arguments` gives such a parameter the next whole number
  up (30.0 -> 30, 0.5 -> 1: a timeout is never shortened).
- Fork: 5.x's native core starts its worker threads (a tokio runtime) when
  ``snowflake.connector`` is imported; a process forked after that has none, and any
  login there hangs for ever (4.x has no such limit). :func:`ensure_usable_here`
  raises :class:`SnowflakeForkError` at once instead; spawned processes are unaffected.
- Logout on close: 5.x warns (``FutureWarning``) at every connect that does not set
  ``enable_server_session_keep_alive_auto_detection``. Where the connector knows the
  parameter it is set to True unless the caller chose: the behaviour 5.x has by
  default and 4.x always has (on close, a session with asynchronous queries still
  running is left open so they can finish).
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import threading
from collections.abc import Mapping
from typing import Any

from gds_snowflake._errors import SnowflakeForkError

__all__ = [
    "KEEP_ALIVE_AUTO_DETECTION",
    "NATIVE_CORE_MODULE",
    "adapt_connect_arguments",
    "ensure_usable_here",
    "integer_parameters",
    "known_parameters",
]

KEEP_ALIVE_AUTO_DETECTION = "enable_server_session_keep_alive_auto_detection"
NATIVE_CORE_MODULE = "snowflake.connector._core.sf_core_python"  # 5.x only

_forked_after_native_core = False

_lock = threading.Lock()
_known: frozenset[str] | None = None
_integers: frozenset[str] | None = None


def _introspect() -> tuple[frozenset[str], frozenset[str]]:
    """(every parameter name, the integer-only ones) of the installed connector."""
    global _known, _integers
    with _lock:
        if _known is None or _integers is None:
            from snowflake.connector import connection

            known: set[str] = set()
            integers: set[str] = set()
            for name, (_default, accepted) in getattr(
                connection, "DEFAULT_CONFIGURATION", {}
            ).items():  # 4.x
                known.add(name)
                types = accepted if isinstance(accepted, tuple) else (accepted,)
                if int in types and float not in types:
                    integers.add(name)
            config = getattr(connection, "ConnectionConfig", None)  # 5.x
            if config is not None and dataclasses.is_dataclass(config):
                for field in dataclasses.fields(config):
                    known.add(field.name)
                    written = field.type if isinstance(field.type, str) else field.type.__name__
                    if written.split("|")[0].strip() == "int":
                        integers.add(field.name)
            _known, _integers = frozenset(known), frozenset(integers)
        return _known, _integers


def known_parameters() -> frozenset[str]:
    """The connect parameters the installed connector knows (imports the connector)."""
    return _introspect()[0]


def integer_parameters() -> frozenset[str]:
    """The connect parameters the installed connector takes as whole numbers only."""
    return _introspect()[1]


def adapt_connect_arguments(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``kwargs`` as the installed connector line expects them (see the module docstring).

    Args:
        kwargs: Arguments for ``snowflake.connector.connect``; not changed.

    Returns:
        A new dict: floats given for integer parameters rounded up, and the logout
        behaviour set explicitly where the connector knows the parameter.
    """
    known, integers = _introspect()
    adapted = dict(kwargs)
    for name, value in kwargs.items():
        if name in integers and isinstance(value, float) and math.isfinite(value):
            adapted[name] = math.ceil(value)
    if KEEP_ALIVE_AUTO_DETECTION in known:
        adapted.setdefault(KEEP_ALIVE_AUTO_DETECTION, True)
    return adapted


def ensure_usable_here() -> None:
    """Raise at once where a login would hang: connector 5.x loaded before a fork.

    Raises:
        SnowflakeForkError: This process was forked after its parent imported
            connector 5.x.
    """
    if _forked_after_native_core:
        raise SnowflakeForkError(
            f"This process (pid {os.getpid()}) was forked after snowflake-connector-python "
            "5.x was imported, and 5.x's native core cannot run in a forked child (its "
            "worker threads are not copied, so a login would hang). Start worker processes "
            "with the 'spawn' or 'forkserver' method (multiprocessing.get_context('spawn')), "
            "import the connector only in the workers, or use connector 4.x."
        )


def _note_fork() -> None:
    global _forked_after_native_core
    if NATIVE_CORE_MODULE in sys.modules:
        _forked_after_native_core = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_note_fork)
