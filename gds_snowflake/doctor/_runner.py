"""``gds-snowflake doctor``: walk every step a Snowflake connection from Vault needs.

Steps, in order; once one fails, the rest are reported as skipped:

========  ==================================================================================
config    the configuration is complete: which variables are set (names only), auth method
vault     Vault answers ``sys/health`` (unauthenticated): HTTP or TLS, version, sealed?
auth      logging in works: method, token TTL, renewable, policies
secret    the secret is readable and complete: fields present, which credential is used
key       the private key loads: type, bits, encrypted?, SHA256 public-key fingerprint
token     a token's kind and length, its expiry when it is a JWT, what to check in Snowflake
clock     the local clock agrees with the Date header of Vault's answer (key-pair JWTs
          are rejected when it is off by more than about a minute)
login     Snowflake accepts the credentials (one attempt: no retry that could lock the user)
session   ``select current_user(), current_role(), current_warehouse()``
========  ==================================================================================

Each step's result has a status (``ok``, ``warn``, ``fail``, ``skip``), a detail line and,
for a failure or warning, the fix. Nothing printed ever holds a password, private key,
passphrase, token or secret_id: the steps print field names, never values, and every
line is scrubbed of the credential values the doctor saw (and of token- and PEM-shaped
text) as a second line of defence.

The runner and the output model live here; the steps are methods of
:class:`~gds_snowflake.doctor._vault_steps.VaultSteps` (config to secret) and
:class:`~gds_snowflake.doctor._snowflake_steps.SnowflakeSteps` (key to session), which share
the run's state and the :class:`~gds_snowflake.doctor._base.Outcome` a step raises;
the token step is :class:`~gds_snowflake.doctor._token_step.TokenStep`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gds_snowflake._errors import SnowflakeVaultError
from gds_snowflake.doctor._base import Outcome
from gds_snowflake.doctor._snowflake_steps import CLOCK_LIMIT, CLOCK_OK, QUERY, SnowflakeSteps
from gds_snowflake.doctor._token_step import TokenStep
from gds_snowflake.doctor._vault_steps import VaultSteps
from gds_vault import VaultError, redact

if TYPE_CHECKING:
    from gds_vault import VaultClient

__all__ = ["CLOCK_LIMIT", "CLOCK_OK", "QUERY", "STEPS", "StepResult", "run_doctor"]

STEPS = (
    ("config", "Configuration"),
    ("vault", "Vault reachable"),
    ("auth", "Vault login"),
    ("secret", "Secret"),
    ("key", "Private key"),
    ("token", "Token"),
    ("clock", "Local clock"),
    ("login", "Snowflake login"),
    ("session", "Session"),
)


@dataclass(slots=True, kw_only=True)
class StepResult:
    """One step's outcome. ``status`` is "ok", "warn", "fail" or "skip"."""

    step: str
    title: str
    status: str
    detail: str
    fix: str | None = None

    @property
    def ok(self) -> bool | None:
        """True when it passed (warnings included), False when it failed, None if skipped."""
        return {"ok": True, "warn": True, "fail": False}.get(self.status)

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "ok": self.ok,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix,
        }


class _Doctor(VaultSteps, TokenStep, SnowflakeSteps):
    # -- running -------------------------------------------------------------------------
    def run(self) -> list[StepResult]:
        results: list[StepResult] = []
        failed = False
        try:
            for step, title in STEPS:
                if failed:
                    results.append(
                        StepResult(
                            step=step,
                            title=title,
                            status="skip",
                            detail="skipped: an earlier step failed",
                        )
                    )
                    continue
                result = self._run_step(step, title)
                results.append(result)
                failed = result.status == "fail"
        finally:
            self._close()
        return results

    def _run_step(self, step: str, title: str) -> StepResult:
        status, fix = "ok", None
        try:
            detail = getattr(self, f"_step_{step}")()
        except Outcome as outcome:
            status, detail, fix = outcome.status, outcome.detail, outcome.fix
        except VaultError as exc:  # what the step did not single out: Vault failing midway
            status, detail = "fail", str(exc)
            fix = exc.fix or (
                "Vault failed while answering (see the message); retry, and if it persists "
                "check Vault's health (gds-vault login, `vault status`)."
            )
        except SnowflakeVaultError as exc:
            status, detail = "fail", str(exc)
            fix = "Correct the configuration or the secret as the message says."
        except Exception as exc:  # the doctor reports every failure as a step
            status, detail = "fail", f"unexpected {type(exc).__name__}: {exc}"
            fix = "This answer was not expected; run again with -vv and report it with the output."
        return StepResult(
            step=step,
            title=title,
            status=status,
            # Every credential the steps saw is registered with gds_vault's redaction, which
            # leaves advice alone ("-----BEGIN PRIVATE KEY-----" quoted as a format,
            # "private_key=@rsa_key.p8", "password=..."): both lines are scrubbed.
            detail=redact(detail),
            fix=None if fix is None else redact(fix),
        )

    def _close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):  # closing a diagnostic session: best effort
                self.connection.close()
        if self.lease is not None and self.client is not None:
            # A dynamic secret's user exists for the doctor only: dropped now, not at its TTL.
            with contextlib.suppress(Exception):
                self.client.revoke_lease(self.lease)
        if self.client is not None:
            self.client.close()


def run_doctor(
    secret_path: str | None,
    *,
    make_client: Callable[[], VaultClient],
    environ: Mapping[str, str],
    snowflake_options: Mapping[str, str] | None = None,
    connect_kwargs: Mapping[str, Any] | None = None,
    options_given: Sequence[str] = (),
    connect: Callable[..., Any] | None = None,
    clock: Callable[[], float] = time.time,
) -> list[StepResult]:
    """Run every step and return one result per step, in order.

    Args:
        secret_path: The Vault secret (default: SNOWFLAKE_VAULT_PATH from ``environ``).
        make_client: Builds the Vault client; a VaultConfigError fails the config step.
        environ: The environment to report on and read SNOWFLAKE_* from.
        snowflake_options: account, user, role, warehouse, database, schema overrides.
        connect_kwargs: More snowflake.connector.connect arguments (host, port, ...).
        options_given: Command-line option names, shown by the config step.
        connect: Opens the Snowflake connection (default snowflake.connector.connect).
        clock: Wall-clock seconds, compared with Vault's Date header. Default time.time.
    """
    return _Doctor(
        secret_path,
        make_client=make_client,
        environ=environ,
        snowflake_options=snowflake_options or {},
        connect_kwargs=connect_kwargs or {},
        options_given=options_given,
        connect=connect,
        clock=clock,
    ).run()
