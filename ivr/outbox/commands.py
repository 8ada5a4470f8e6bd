"""``ivr worker``: charge what is due later (scheduled payments, autopay), send what the outbox holds,
and the agents' status callbacks with it."""

import click
from flask import current_app
from flask.cli import with_appcontext

from ..agents import callbacks
from ..extensions import db
from ..later import worker as later
from ..terminal.database import check_database
from ..terminal.startup import start_line
from ..terminal.words import STATUS_CALLBACKS, TEXTS, sent_summary
from . import engine, texts


@click.command("worker")
@click.option("--once", is_flag=True, help="do what is due now and exit")
@click.option("--poll", default=2.0, show_default=True, help="seconds between looks for new work")
@with_appcontext
def worker_command(once: bool, poll: float) -> None:
    """Run what is due (scheduled payments, autopay charges and their notices), send queued texts
    (receipts, reminders) and agents' status callbacks; runs until stopped."""
    # Once running, a database outage is logged and retried; at start it is a setup mistake to report.
    check_database(current_app.config["SQLALCHEMY_DATABASE_URI"])
    click.echo(start_line("worker", current_app.config, "one pass" if once else f"every {poll:g} s, Ctrl-C stops"), err=True)
    sms = texts.kind_for(current_app.config, current_app.extensions["ivr.sms"])

    def later_pass() -> later.LaterReport:
        try:
            return later.run_pass()
        finally:
            db.session.remove()

    def later_backlog() -> later.LaterReport:
        try:
            return later.run_until_done()
        finally:
            db.session.remove()

    def texts_pass() -> engine.Report:
        try:
            return engine.run_once(db.session, sms)
        finally:
            db.session.remove()  # each pass starts from fresh rows, never a stale identity map

    if once:
        # Charges first: their receipts and notices then leave in this same run.
        charged = later_backlog()  # everything due now, batch after batch, not only the first batch
        if charged.total:  # a day with nothing due later says nothing about it
            click.echo(later.summary(charged))
        click.echo(sent_summary(texts_pass(), *TEXTS))
        click.echo(sent_summary(callbacks.run_pass(), *STATUS_CALLBACKS))
        return
    try:
        engine.run_forever({"later": later_pass, "texts": texts_pass, "callbacks": callbacks.run_pass},  # type: ignore[dict-item]
                           poll_seconds=poll)
    except KeyboardInterrupt:
        pass
