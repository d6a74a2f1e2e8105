"""One logging configuration for gds_vault and gds_snowflake, with a redaction filter.

The first line of defence is that the libraries never put a secret into a log call. The
:class:`RedactionFilter` is the second: it masks anything shaped like a Vault token, a
PEM block or a ``password=`` pair, and every value registered with
:func:`register_secret`: the tokens, secret_ids, JWTs, passwords and wrapping tokens
gds_vault obtains, and the Snowflake passwords, passphrases and private keys (each PEM
line too) gds_snowflake reads from Vault.

The registry keeps at most :data:`_MAX_REGISTERED` values, dropping the one registered
longest ago; registering a value again makes it recent, and the libraries do so whenever
they use one again (each login registers the token and the credential it used), so a
value in use is never the one dropped. Its lock is re-created in a forked child: a child
forked while another thread registered a secret would otherwise wait for ever.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from typing import IO, Any

__all__ = ["RedactionFilter", "configure_logging", "register_secret"]

PACKAGE_LOGGERS = ("gds_vault", "gds_snowflake")
REDACTED = "[REDACTED]"
_MIN_REGISTERED_LENGTH = 6  # shorter values would mask ordinary words
_MAX_REGISTERED = 1024  # keeps the filter's cost bounded in long-running processes

_PATTERNS = (
    # Vault/OpenBao tokens: service, batch, recovery, legacy "s." forms.
    re.compile(r"\b(?:hv[sbr]|s|b|r)\.[A-Za-z0-9_-]{20,}"),
    # PEM private keys (and escaped-newline variants): a BEGIN line followed by key material
    # (lines of base64, or the Proc-Type header of a legacy encrypted key). A BEGIN line
    # quoted in prose, as advice names the format ("(-----BEGIN PRIVATE KEY-----); keep"),
    # is left alone.
    re.compile(
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"
        r"(?=[ \t]*(?:\r?\n|(?:\\r)?\\n)\s*(?:Proc-Type:|[A-Za-z0-9+/=])"  # key lines follow
        r"|\s*[A-Za-z0-9+/]{16})"  # or the key flattened onto the same line
        r".*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)",
        re.S,
    ),
    # key=value and quoted "key": "value" pairs whose key names a secret. A bare
    # "token: word" is prose ("token: logged in"), not a pair, and is left alone; so are
    # the placeholders advice uses: `password=...`, `token=<token>`, and a `vault kv put`
    # file reference such as `private_key=@rsa_key.p8`.
    re.compile(
        r"""(?ix)
        ( ["'](?:password|passphrase|secret_id|client_token|token|private_key|jwt)["']\s*:\s*
        | \b(?:password|passphrase|secret_id|client_token|token|private_key|jwt)\s*=\s* )
        (?! \.\.\.(?![^\s"',}])                        # password=...
          | <[^<>\s]+>(?![^\s"',})])                   # token=<token>
          | @[\w.~/-]+\.(?:p8|pem|key|der|txt|crt)\b )  # private_key=@rsa_key.p8
        (["']?)[^\s"',}]+\2"""
    ),
)

# Insertion-ordered: the first key is the one registered longest ago.
_registered: dict[str, None] = {}
_registered_lock = threading.Lock()
# What redact() iterates: replaced whole under the lock, so readers need none.
_snapshot: tuple[str, ...] = ()


def register_secret(value: object) -> None:
    """Remember a secret value so that the redaction filter masks it wherever it appears.

    Registering a value again makes it the most recent, the last to be dropped when the
    registry is full. Values that are not strings or are shorter than 6 characters are
    ignored (they would mask ordinary words).
    """
    global _snapshot
    if not isinstance(value, str) or len(value) < _MIN_REGISTERED_LENGTH:
        return
    with _registered_lock:
        if value in _registered:
            # Known: only its place in the order changes (the values masked do not), so
            # this is two dict operations, cheap enough to do at every use.
            del _registered[value]
            _registered[value] = None
            return
        if len(_registered) >= _MAX_REGISTERED:
            del _registered[next(iter(_registered))]  # the one registered longest ago
        _registered[value] = None
        _snapshot = tuple(_registered)


def redact(text: str) -> str:
    """Mask registered secrets and secret-shaped substrings in ``text``."""
    # Whole PEM blocks first: once a registered line inside one is masked, the block no
    # longer looks like key material to the pattern.
    text = _PATTERNS[1].sub(REDACTED, text)
    for secret in _snapshot:
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _PATTERNS[0].sub(REDACTED, text)
    return _PATTERNS[2].sub(lambda m: f"{m.group(1)}{REDACTED}", text)


def _after_fork_in_child() -> None:
    # Another thread of the parent may have held the lock at fork; it does not exist here.
    global _registered_lock
    _registered_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class RedactionFilter(logging.Filter):
    """A logging filter that rewrites each record's message with secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if record.exc_info and record.exc_info[1] is not None:
            # Formatting the traceback here lets us mask it too; the handler reuses it.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            payload["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER_MARK = "_gds_logging_handler"


def configure_logging(
    level: int | str = "INFO",
    fmt: str = "text",
    *,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Send gds_vault and gds_snowflake logs to a stream, redacted, as text or JSON.

    Calling it again replaces the handler it added before, so notebooks can re-run it.

    Args:
        level: A logging level name or number for both packages. Default "INFO".
        fmt: "text" for human-readable lines, "json" for one JSON object per line.
        stream: Where to write. Default sys.stderr.

    Returns:
        The handler that was installed (to add to other loggers if wanted).

    Raises:
        ValueError: For an unknown ``fmt`` or ``level``.
    """
    if fmt not in ("text", "json"):
        raise ValueError(f"fmt must be 'text' or 'json', not {fmt!r}")
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        raise ValueError(f"unknown logging level {level!r}; use DEBUG, INFO, WARNING or ERROR")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(_TEXT_FORMAT))
    handler.addFilter(RedactionFilter())
    setattr(handler, _HANDLER_MARK, True)
    for name in PACKAGE_LOGGERS:
        package_logger = logging.getLogger(name)
        for old in [h for h in package_logger.handlers if getattr(h, _HANDLER_MARK, False)]:
            package_logger.removeHandler(old)
        package_logger.addHandler(handler)
        package_logger.setLevel(numeric)
    return handler
