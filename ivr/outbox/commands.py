"""``ivr worker``: send what the outbox holds, and the agents' status callbacks with it."""

import click
from flask import current_app
from flask.cli import with_appcontext

from ..agents import callbacks
from ..extensions import db
from . import engine, texts


@click.command("worker")
@click.option("--once", is_flag=True, help="send what is due now and exit")
@click.option("--poll", default=2.0, show_default=True, help="seconds between polls")
@with_appcontext
def worker_command(once: bool, poll: float) -> None:
    """Send what the outbox holds: SMS receipts, reminders, agent status callbacks."""
    sms = texts.kind_for(current_app.config, current_app.extensions["ivr.sms"])

    def texts_pass() -> engine.Report:
        try:
            return engine.run_once(db.session, sms)
        finally:
            db.session.remove()  # each pass starts from fresh rows, never a stale identity map

    if once:
        click.echo(f"worker: {texts_pass()}")
        click.echo(f"callbacks: {callbacks.run_pass()}")
        return
    click.echo("worker: sending queued texts and agent status callbacks; Ctrl-C stops", err=True)
    try:
        engine.run_forever({"texts": texts_pass, "callbacks": callbacks.run_pass}, poll_seconds=poll)
    except KeyboardInterrupt:
        pass
