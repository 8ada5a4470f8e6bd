"""``ivr accounts import`` and ``ivr payments export``: the billing system's files in and out.

Both groups are ``AppGroup``s: their commands run inside the app's context (``db.session``,
``ORG_TIMEZONE``).
"""

import sys
from datetime import datetime
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from ..extensions import db
from .accounts_csv import CsvImportError, import_accounts
from .payments_csv import export_payments


@click.group("accounts", cls=AppGroup)
def accounts_group() -> None:
    """Member accounts."""


@click.group("payments", cls=AppGroup)
def payments_group() -> None:
    """Payments, refunds and disputes: the posting file for the billing system."""


@accounts_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def accounts_import_command(file: Path) -> None:
    """Create or update member accounts from the billing system's CSV FILE.

    Every row is checked first; if any is bad, each problem is listed and nothing is imported.
    """
    try:
        with file.open("rb") as stream:
            report = import_accounts(db.session, stream)
    except CsvImportError as exc:
        for line, message in exc.errors:
            click.echo(f"line {line}: {message}", err=True)
        click.echo(str(exc), err=True)
        raise SystemExit(1) from None
    click.echo(report.summary())


@payments_group.command("export")
@click.option(
    "--date",
    "on_date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="YYYY-MM-DD",
    help="only the money that moved on this day, a calendar day in ORG_TIMEZONE",
)
def payments_export_command(on_date: datetime | None) -> None:
    """Write the posting file (CSV) to stdout: one row per payment, refund or dispute; paid_at is in UTC."""
    # The co-op's business day, not UTC's: an evening payment belongs to the day the member made it.
    tz = current_app.config.get("ORG_TIMEZONE") or "UTC"
    export_payments(
        db.session,
        sys.stdout,
        on_date=on_date.date() if on_date else None,
        tz=tz,
    )
