"""Text that is safe to send in a header or show on a terminal.

Two checks with one rule, that nothing invisible reaches a header, a terminal or a log:

- :func:`printable` escapes the characters a terminal acts on (ESC sequences, carriage
  returns, bells, bidirectional overrides) in text that came from outside: a secret's
  field names and values, the names under a path, Vault's error strings. Whoever can write
  a secret chooses that text; the person reading it must not have their screen rewritten.
- :func:`is_printable_ascii` is what a token, secret_id or namespace must be. Such a value
  travels in an HTTP header (or beside one), where a line break cannot go: a two-line
  token file or a bad paste is refused with a message that names where the value came
  from and never shows it.
"""

from __future__ import annotations

__all__ = ["NOT_PRINTABLE_ASCII", "is_printable_ascii", "printable"]

#: The end of every message about such a value: what is wrong, and what it usually is.
NOT_PRINTABLE_ASCII = (
    "contains a line break, a control character or a non-ASCII character, which a "
    "credential never holds; it must be one line of printable ASCII (a file holding it "
    "must hold only that one line)"
)


def is_printable_ascii(value: str) -> bool:
    """Whether ``value`` is printable ASCII (spaces allowed; no tab, CR, LF or NUL)."""
    return value.isascii() and value.isprintable()


def printable(text: str, *, keep: str = "") -> str:
    """``text`` with every character that is not printable written as an escape.

    ``\\x1b`` for ESC, ``\\n`` for a line break, ``\\u202e`` for a bidirectional
    override, as Python's ``repr`` writes them; letters of every script stay as they are.

    Args:
        text: The text to show.
        keep: Characters to keep as they are even so (``"\\n\\t"`` for a value printed
            for scripts).
    """
    if text.isprintable():  # the common case: nothing to do
        return text
    return "".join(
        char if char.isprintable() or char in keep else repr(char)[1:-1] for char in text
    )
