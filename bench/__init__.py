"""Benchmarks against hvac and the raw Snowflake connector (not part of the test run).

Run from the repository root after ``pip install -e '.[dev]'``::

    python -m bench

It starts a local OpenBao dev server and the Snowflake double itself, measures
gds_vault / gds_snowflake side by side with hvac and ``snowflake.connector`` in the same
run, and prints one table of ratios (min / median / max over repeated rounds). Every
timing is a ratio of two measurements taken in the same round, interleaved where
possible, because the machines it runs on are shared and noisy. See ``bench/run.py``.
"""
