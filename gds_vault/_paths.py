"""Checking secret paths as users write them (``vault kv`` style: mount + path)."""

from __future__ import annotations

import re

from gds_vault._errors import VaultPathError

_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f?#%\\]")


def normalise_path(path: object, *, what: str = "secret path") -> str:
    """Strip slashes and reject paths that can never name a secret.

    Raises:
        VaultPathError: For a non-string, empty path, ``.``/``..`` or empty segments, or
            characters that would change the URL's meaning.
    """
    if not isinstance(path, str):
        raise VaultPathError(
            f"The {what} must be a string such as 'secret/snowflake/etl', "
            f"not {type(path).__name__}."
        )
    cleaned = path.strip().strip("/")
    if not cleaned:
        raise VaultPathError(
            f"The {what} is empty; give mount and path, for example 'secret/snowflake/etl'."
        )
    segments = cleaned.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        raise VaultPathError(
            f"The {what} {cleaned!r} has an empty, '.' or '..' segment; Vault paths are "
            "literal names, not file-system paths."
        )
    if _BAD_CHARS.search(cleaned):
        raise VaultPathError(
            f"The {what} {cleaned!r} contains a control character or one of ? # % \\ "
            "which cannot appear in a Vault path."
        )
    return cleaned
