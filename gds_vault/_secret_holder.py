"""Objects that hold a credential refuse to be pickled.

A pickle is bytes that travel: into files, queues, caches, task results, another host.
Pickling an auth method, a token or a client would put the token, secret_id or password
there in clear, so these objects refuse it with a ``TypeError`` that says what to do
instead. ``copy.copy`` and ``copy.deepcopy`` give the object itself: it is shared, never
duplicated (frameworks such as Airflow deep-copy what they are given).
"""

from __future__ import annotations

from typing import Any, NoReturn, SupportsIndex

__all__ = ["SecretHolder"]


class SecretHolder:
    """Mixin: not picklable, copied as itself."""

    __slots__ = ()

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError(
            f"{type(self).__name__} holds a Vault credential (a token, secret_id, password "
            "or JWT) and cannot be pickled: the pickle would carry it in clear. Create it "
            "where it is needed instead, e.g. VaultClient.from_env() in the worker process."
        )

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self
