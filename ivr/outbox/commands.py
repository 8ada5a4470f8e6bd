"""``ivr worker``: send what the outbox holds, and the agents' status callbacks with it."""

import click
from flask import current_app
from flask.cli import with_appcontext

from ..agents import callbacks
from ..extensions import db
from ..terminal.database import check_database
from ..terminal.startup import start_line
from ..terminal.words import STATUS_CALLBACKS, TEXTS, sent_summary
from . import engine, texts


@click.command("worker")
@click.option("--once", is_flag=True, help="send what is due now and exit")
@click.option("--poll", default=2.0, show_default=True, help="seconds between looks for new work")
@with_appcontext
def worker_command(once: bool, poll: float) -> None:
    """Send queued texts (receipts, reminders) and agents' status callbacks; runs until stopped."""
    # Once running, a database outage is logged and retried; at start it is a setup mistake to report.
    check_database(current_app.config["SQLALCHEMY_DATABASE_URI"])
    click.echo(start_line("worker", current_app.config, "one pass" if once else f"every {poll:g} s, Ctrl-C stops"), err=True)
    sms = texts.kind_for(current_app.config, current_app.extensions["ivr.sms"])

    def texts_pass() -> engine.Report:
        try:
            return engine.run_once(db.session, sms)
        finally:
            db.session.remove()  # each pass starts from fresh rows, never a stale identity map

    if once:
        click.echo(sent_summary(texts_pass(), *TEXTS))
        click.echo(sent_summary(callbacks.run_pass(), *STATUS_CALLBACKS))
        return
    try:
        engine.run_forever({"texts": texts_pass, "callbacks": callbacks.run_pass}, poll_seconds=poll)
    except KeyboardInterrupt:
        pass
