"""What every ``gds-snowflake doctor`` step shares: the run's state and the outcome.

A step is a ``_step_<name>`` method (see :mod:`gds_snowflake.doctor._vault_steps` and
:mod:`gds_snowflake.doctor._snowflake_steps`) on a :class:`DoctorState`: it returns its detail
line when it passes, or raises :class:`Outcome` (``warn``, ``fail`` or ``skip``, with the
fix) and the runner in :mod:`gds_snowflake.doctor` turns that into a ``StepResult``.
Later steps read what earlier ones left on the state (the Vault client, the secret, the
key, Vault's clock). Every credential value a step sees is registered with gds_vault's
redaction, which the runner applies to every line it prints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gds_snowflake._credentials import SecretFields
from gds_snowflake._keys import LoadedKey
from gds_vault import register_secret

if TYPE_CHECKING:
    from gds_vault import Lease, VaultClient


__all__ = ["DoctorState", "Outcome", "fail"]

_CREDENTIAL_VARIABLES = (
    "VAULT_TOKEN",
    "VAULT_SECRET_ID",
    "BAO_TOKEN",
    "HVAULT_TOKEN",
    "HVAULT_SECRET_ID",
)


class Outcome(Exception):
    """Raised by a step to end it with a status other than ok."""

    def __init__(self, status: str, detail: str, fix: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.fix = status, detail, fix


def fail(detail: str, fix: str) -> Outcome:
    return Outcome("fail", detail, fix)


class DoctorState:
    """The doctor's inputs and what the steps found, shared by every step."""

    def __init__(
        self,
        secret_path: str | None,
        *,
        make_client: Callable[[], VaultClient],
        environ: Mapping[str, str],
        snowflake_options: Mapping[str, str],
        connect_kwargs: Mapping[str, Any],
        options_given: Sequence[str],
        connect: Callable[..., Any] | None,
        clock: Callable[[], float],
    ) -> None:
        self.path = secret_path or environ.get("SNOWFLAKE_VAULT_PATH", "").strip() or None
        self.make_client = make_client
        self.environ = environ
        self.snowflake_options: dict[str, Any] = dict(snowflake_options)
        self.connect_kwargs = dict(connect_kwargs)
        self.options_given = list(options_given)
        self.connect = connect
        self.clock = clock
        for name in _CREDENTIAL_VARIABLES:
            self._remember_secret(environ.get(name))
        self.client: VaultClient | None = None
        self.server_time: float | None = None
        self.local_time: float | None = None
        self.secret: dict[str, Any] = {}
        self.lease: Lease | None = None  # a dynamic secret's lease, revoked at the end
        self.fields: SecretFields | None = None  # the secret's fields, checked
        self.overrides: dict[str, Any] = {}
        self.user = ""
        self.key: LoadedKey | None = None
        self.connection: Any = None
        #: The warehouse, database and schema the login named (checked by ``session``).
        self.asked: dict[str, Any] = {}

    def _remember_secret(self, value: object) -> None:
        """Register a credential the doctor saw, so every line it prints is scrubbed of it."""
        if not isinstance(value, str) or not value.strip():
            return
        register_secret(value)
        register_secret(value.strip())
        # A key's lines, in case any form of it is ever echoed piecemeal.
        for line in value.replace("\\n", "\n").splitlines():
            if len(line.strip()) >= 16 and "-----" not in line:
                register_secret(line.strip())
