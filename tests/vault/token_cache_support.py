"""Shared by the token-cache tests: names, audit-log and file helpers."""

from __future__ import annotations

import logging
import os

LOGIN = "auth/approle/login"
SECRET_PATH = "secret/snowflake/etl"
SECRET = {"account": "acme", "user": "ETL", "password": "pw-etl-1"}
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def paths_since(vault, mark: int) -> list[str]:
    return [entry["request"]["path"] for entry in vault.server.requests_since(mark)]


def warnings_of(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name.startswith("gds_vault")
    ]


def token_file(cache):
    (found,) = cache.glob("token-*.json")
    return found


def mounts_file(cache):
    (found,) = cache.glob("mounts-*.json")
    return found
