"""The line ``ivr serve`` and ``ivr worker`` print as they start: which gateway, SMS sender and database they use."""

from collections.abc import Mapping
from typing import Any

from .database import database_label


def start_line(command: str, config: Mapping[str, Any], *details: str) -> str:
    """``ivr worker (production): gateway stripe, SMS twilio, database postgresql db:5432/ivr`` plus ``details``."""
    parts = [
        f"gateway {config['PAYMENT_GATEWAY']}",
        f"SMS {config['SMS_SENDER']}",
        f"database {database_label(config['SQLALCHEMY_DATABASE_URI'])}",
        *details,
    ]
    return f"ivr {command} ({config['IVR_ENV']}): " + ", ".join(parts)
