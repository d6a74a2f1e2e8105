"""gds_snowflake: Snowflake connections whose credentials come from Vault."""

import logging as _logging

_logging.getLogger(__name__).addHandler(_logging.NullHandler())
