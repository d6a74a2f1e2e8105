"""Logging: configure_logging, the events logged, and redaction of secrets."""

from __future__ import annotations

import io
import json
import logging

import pytest

from gds_vault import configure_logging
from gds_vault._logging import RedactionFilter, redact, register_secret


def test_packages_have_null_handlers():
    """Both package roots carry a NullHandler, so nothing prints unless configured."""
    import gds_snowflake  # noqa: F401

    for name in ("gds_vault", "gds_snowflake"):
        assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger(name).handlers)


def test_json_format(vault, make_client, restore_package_loggers):
    """fmt='json' writes one JSON object per line with level, logger and message."""
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    make_client().login()
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    login = [r for r in records if "Logged in" in r["message"]]
    assert login
    assert login[0]["level"] == "INFO"
    assert login[0]["logger"].startswith("gds_vault")


def test_text_format_and_reconfigure(restore_package_loggers):
    """Calling configure_logging again replaces its handler instead of adding another."""
    first = io.StringIO()
    second = io.StringIO()
    configure_logging("INFO", stream=first)
    configure_logging("WARNING", stream=second)
    logging.getLogger("gds_vault.test").warning("hello %s", "there")
    logging.getLogger("gds_vault.test").info("not shown")
    assert first.getvalue() == ""
    assert "WARNING gds_vault.test: hello there" in second.getvalue()
    assert "not shown" not in second.getvalue()


@pytest.mark.parametrize(("level", "fmt"), [("LOUD", "text"), ("INFO", "xml")])
def test_bad_arguments(level, fmt):
    """Unknown levels and formats are refused with a ValueError."""
    with pytest.raises(ValueError, match=r"LOUD|xml"):
        configure_logging(level, fmt)


def test_debug_logs_method_and_path_only(vault, make_client, restore_package_loggers):
    """DEBUG shows each HTTP call's method and path, and no token or secret value."""
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    client = make_client()
    client.get_secret("secret/snowflake/etl")
    text = stream.getvalue()
    assert "GET /v1/secret/data/snowflake/etl -> 200" in text
    assert "pw-etl-1" not in text
    assert client._tokens.current() not in text


@pytest.mark.parametrize(
    "text",
    [
        "token s.AbCdEfGhIjKlMnOpQrStUvWx used",
        "hvs.CAESIJ0123456789abcdefghijklmnopqrstuv",
        'body {"password": "hunter2-secret"}',
        "secret_id=0a1b2c3d-aaaa-bbbb-cccc-000000000000",
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\\nMIIFHz\\n-----END ENCRYPTED PRIVATE KEY-----",
    ],
)
def test_redaction_masks_secret_shapes(text):
    """Token, PEM and key=value shapes are masked by the redaction filter."""
    cleaned = redact(text)
    assert "[REDACTED]" in cleaned
    for fragment in ("AbCdEfGh", "CAESIJ", "hunter2", "0a1b2c3d", "MIIEvQ", "MIIFHz"):
        assert fragment not in cleaned


def test_registered_secret_is_masked_in_records_and_tracebacks():
    """A registered value is masked in a record's message and its exception text."""
    register_secret("opaque-value-42")
    record = logging.LogRecord(
        "gds_vault.x", logging.ERROR, __file__, 1, "got %s", ("opaque-value-42",), None
    )
    try:
        raise RuntimeError("failure with opaque-value-42")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    RedactionFilter().filter(record)
    assert record.getMessage() == "got [REDACTED]"
    assert "opaque-value-42" not in (record.exc_text or "")


def test_redaction_leaves_prose_alone():
    """Prose such as 'token: logged in' is not mistaken for a key/value pair."""
    assert redact("token: logged in as etl") == "token: logged in as etl"
