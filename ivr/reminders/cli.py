"""``ivr reminders send``: queue reminder texts for bills due soon (or past due)."""

import sys

import click
from flask.cli import AppGroup

from ..masking import mask
from . import selection


@click.group("reminders", cls=AppGroup)
def reminders_group() -> None:
    """Reminder texts whose link makes us call the member back."""


@reminders_group.command("send")
@click.option(
    "--days-before",
    default=3,
    show_default=True,
    type=click.IntRange(min=0),
    help="remind bills due from today to today + N days (in ORG_TIMEZONE)",
)
@click.option("--past-due", is_flag=True, help="remind bills whose due date has passed instead")
@click.option("--dry-run", is_flag=True, help="print what would be sent; queue nothing")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="queue at most N texts")
def send_command(days_before: int, past_due: bool, dry_run: bool, limit: int | None) -> None:
    """Queue one reminder per bill; ivr worker sends them outside quiet hours.

    Picks active accounts with a positive balance, a phone on file and no opt-out whose bill is
    due within --days-before days (or past due with --past-due) and that have not been reminded
    of that bill yet. Re-running sends nothing new; a new due date is a new bill.
    """
    bar = None

    def on_start(count: int) -> None:
        nonlocal bar
        if count and not dry_run:
            bar = click.progressbar(length=count, label="Queueing reminders", file=sys.stderr)
            bar.__enter__()

    def on_text(bill: selection.Bill, body: str) -> None:
        if dry_run:
            click.echo(f"{mask(bill.phone)}\t{bill.language}\t{body}")

    def progress(count: int) -> None:
        if bar is not None:
            bar.update(count)

    try:
        report = selection.run(
            days_before=days_before,
            past_due=past_due,
            dry_run=dry_run,
            limit=limit,
            progress=progress,
            on_text=on_text,
            on_start=on_start,
        )
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    click.echo(report.summary())
