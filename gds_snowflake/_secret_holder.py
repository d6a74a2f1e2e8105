"""Objects that hold a Snowflake credential refuse to be pickled.

The same rule as gds_vault's (whose private helper this package may not import): a pickle
is bytes that travel, into files, queues, caches and task results, so an object holding a
password, a passphrase or a decrypted private key refuses it with a ``TypeError`` saying
what to do instead. ``copy.copy`` and ``copy.deepcopy`` give the object itself.
"""

from __future__ import annotations

from typing import Any, NoReturn, SupportsIndex

__all__ = ["SecretHolder"]


class SecretHolder:
    """Mixin: not picklable, copied as itself."""

    __slots__ = ()

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError(
            f"{type(self).__name__} holds a Snowflake credential (a password, passphrase "
            "or private key) and cannot be pickled: the pickle would carry it in clear. "
            "Pass the secret's path instead and connect where the connection is needed "
            "(get_snowflake_connection(path) in the worker process)."
        )

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self
