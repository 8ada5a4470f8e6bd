"""``ivr worker``: send what the outbox holds, and the agents' status callbacks with it."""

import click
from flask import current_app
from flask.cli import with_appcontext


@click.command("worker")
@click.option("--once", is_flag=True, help="send what is due now and exit")
@click.option("--poll", default=2.0, show_default=True, help="seconds between polls")
@with_appcontext
def worker_command(once: bool, poll: float) -> None:
    """Send what the outbox holds: SMS receipts, reminders, agent status callbacks."""
    from sqlalchemy.orm import sessionmaker

    from ..extensions import db
    from . import worker as outbox

    app = current_app
    cfg = app.config
    sender = app.extensions["ivr.sms"]
    options = {"default_tz": cfg["ORG_TIMEZONE"], "rate_per_second": cfg.get("SMS_RATE_PER_SECOND"),
               "state_windows": cfg.get("QUIET_HOURS_STATE_WINDOWS")}
    if once:
        report = outbox.run_once(db.session, sender, **options)
        click.echo(f"worker: {report}")
        click.echo(f"callbacks: {agent_callbacks_pass()}")
        return
    click.echo("worker: sending queued texts and agent status callbacks; Ctrl-C stops", err=True)
    try:
        outbox.run_forever(
            sessionmaker(bind=db.engine), sender, poll_seconds=poll, also=agent_callbacks_pass,
            **options,
        )
    except KeyboardInterrupt:
        pass


def agent_callbacks_pass() -> object:
    """POST due transfer status callbacks to agents' systems (needs the app context).

    One bounded pass (``callbacks.PASS_BUDGET_SECONDS``); ``ivr agents callbacks`` runs it too.
    """
    from ..agents import callbacks
    from ..extensions import db

    try:
        return callbacks.run_once()
    finally:
        db.session.remove()  # each pass starts from fresh rows, never a stale identity map
