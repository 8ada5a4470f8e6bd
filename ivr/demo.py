"""``ivr demo``: the whole product on this machine, no Twilio or Stripe account needed."""

import csv
import io
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import date
from importlib.resources import files
from pathlib import Path

import click

DEMO_REFERENCE_DAY = date(2026, 11, 22)  # due dates in the CSV are relative to this day
# Grace keeps a Visa on file (Stripe's test card 4242…, as the sandbox knows it): her calls offer it.
SAVED_CARD_ACCOUNT = "67890001"
SAVED_CARD_PAYMENT_METHOD = "pm_card_visa"
SAVED_CARD_CALL = 'ivr call --from +12025550127 --keys "_ 1 20016 1 1"'


def demo_accounts_csv(today: date) -> str:
    """The demo accounts with due dates moved so they keep the same distance from ``today``."""
    text = files("ivr").joinpath("demo_accounts.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    shift = today - DEMO_REFERENCE_DAY
    for row in rows:
        if row.get("due_date"):
            row["due_date"] = (date.fromisoformat(row["due_date"]) + shift).isoformat()
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0].keys()))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def keep_demo_card() -> None:
    """Give the demo's saved-card account its Visa on file (sandbox ids), unless it has a card already."""
    import sqlalchemy as sa

    from payments.sandbox_cards import sandbox_customer

    from .extensions import db
    from .models import Account
    from .money import saved_cards

    account = db.session.scalar(sa.select(Account).where(Account.account_number == SAVED_CARD_ACCOUNT))
    if account is None:
        return
    saved_cards.record_existing(
        account,
        customer=sandbox_customer(SAVED_CARD_PAYMENT_METHOD),
        payment_method=SAVED_CARD_PAYMENT_METHOD,
        brand="visa",
        last4="4242",
        channel="demo",
        words="Demo data: a card on file for trying the saved-card call.",
    )


def _print_accounts(csv_text: str) -> None:
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    click.echo("Demo accounts (account number / last four of the phone on file / ZIP, asked when the caller ID matches):")
    for row in rows:
        digits = row["account_number"].replace("-", "")
        phone_digits = "".join(ch for ch in row["phone"] if ch.isdigit())
        note = f"{row['balance']} due {row['due_date']}"
        extras = [x for x in (row.get("language") == "es" and "Spanish",
                              row.get("status") not in ("", "active", None) and row.get("status"),
                              digits == SAVED_CARD_ACCOUNT and "Visa ending 4242 on file") if x]
        # No ZIP on file: a caller-ID caller keys the full account number instead.
        zip_code = row.get("zip") or "none"
        click.echo(f"  {digits:<10} last four {phone_digits[-4:]}  ZIP {zip_code:<5}  {note}  {row['name']}"
                   + (f"  ({', '.join(extras)})" if extras else ""))


DEMO_AGENT = "Demo Admin"  # role admin: the /agent console and /ops both open with its key
DEMO_CALLER = "+12025550143"  # Dana, whose phone has two accounts


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already listens on ``host:port`` (the server would fail to bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR as the server sets it: a port left in TIME_WAIT is free, a listener is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


@click.command()
@click.option("--port", default=lambda: int(os.environ.get("PORT", "5000")), show_default="$PORT or 5000", type=int,
              help="port of the demo's web server")
@click.option("--workers", default=2, show_default=True, type=int, help="web server processes")
@click.option(
    "--send-reminders",
    is_flag=True,
    help="queue reminder texts for bills due soon and send them at once, ignoring quiet hours",
)
def demo_command(port: int, workers: int, send_reminders: bool) -> None:
    """Create the embedded database, load demo accounts, run the web server and worker."""
    # Refuse a busy port before touching the database or starting anything.
    if port_in_use(port):
        click.echo(f"Error: port {port} is already in use; stop what uses it or run ivr demo --port <another>", err=True)
        sys.exit(1)
    port_from_env = os.environ.get("PORT") == str(port)
    instance = Path.cwd() / "instance"
    instance.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", f"sqlite:///{instance / 'ivr.sqlite3'}")
    env["PAYMENT_GATEWAY"] = "sandbox"
    env["SMS_SENDER"] = "sandbox"
    env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    env["PORT"] = str(port)
    # Where the IVR hands a caller to a person; the softphone plays the agent's leg.
    env.setdefault("AGENT_TRANSFER_NUMBER", "+12025550100")
    if env.get("IVR_ENV", "development") == "production":
        raise click.ClickException("ivr demo uses the sandbox gateway and is refused when IVR_ENV=production")
    os.environ.update(env)

    from . import create_app
    from .billing.accounts_csv import import_accounts
    from .extensions import db
    from .migrate import upgrade
    from .terminal.database import database_label

    upgrade(env["DATABASE_URL"])
    csv_text = demo_accounts_csv(date.today())
    app = create_app()
    with app.app_context():
        report = import_accounts(db.session, io.StringIO(csv_text))
        agent_key = _demo_agent_key()
        link = _reminder_link()
        reminders = _queue_reminders() if send_reminders else None
        keep_demo_card()
    click.echo(f"Database ready: {database_label(env['DATABASE_URL'])}. {report.summary()}.")
    if reminders:
        click.echo(f"Reminders (quiet hours ignored): {reminders}")

    from .softphone.twilio_api import TwilioStandIn

    # Twilio's REST API on loopback: transfers, assisted payments and Call me now work offline.
    stand_in = TwilioStandIn(app.config["TWILIO_ACCOUNT_SID"], announce=click.echo,
                             auth_token=app.config["TWILIO_AUTH_TOKEN"]).__enter__()
    env["TWILIO_API_BASE"] = stand_in.url
    ivr = [sys.executable, "-m", "ivr.cli"]
    children = [
        subprocess.Popen(ivr + ["serve", "--port", str(port), "--workers", str(workers), "--no-access-log"], env=env),
        subprocess.Popen(ivr + ["worker"], env=env),
    ]
    try:
        _wait_until_up(port, children[0])
        base = f"http://127.0.0.1:{port}"
        click.echo("")
        _print_accounts(csv_text)
        click.echo("")
        url = "" if port == 5000 or port_from_env else f" --url {base}"
        click.echo(f"Web address:    {base}")
        click.echo(f"Agent console:  {base}/agent   name: {DEMO_AGENT}   key: {agent_key}")
        click.echo(f"Operations:     {base}/ops   (same name and key; the key is new each time the demo starts)")
        if link:
            click.echo(f"Reminder link:  {link}   (Dana's bill; \"Call me now\" calls her back)")
        click.echo(f"Place a call:   ivr call{url} --from {DEMO_CALLER}   (Dana's phone; scripted: add --keys \"_ 1 20011 1\" --card 4242424242424242,12/30,123,30301)")
        click.echo(f"Agent line:     ivr call{url} --agent --twilio-api {stand_in.url} --from {DEMO_CALLER}   (Dana calls an agent; "
                   "the agent console transfers her to pay or takes her card)")
        click.echo(f"Twilio:         a stand-in at {stand_in.url} (no Twilio account needed); "
                   "\"Call me now\" rings here: answer with ivr call --answer --twilio-api " + stand_in.url)
        click.echo(f"Card on file:   {SAVED_CARD_CALL}{url}   (Grace pays with her saved Visa: no card entry)")
        click.echo("Texts appear:   right here, printed by the worker as it sends them (sandbox SMS).")
        if not send_reminders:
            click.echo("Reminders:      ivr demo --send-reminders texts them at once, even in quiet hours.")
        click.echo("Ctrl-C stops the server and the worker.")
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        raise click.ClickException("a demo process stopped unexpectedly; see the output above")
    except KeyboardInterrupt:
        click.echo("\nstopping…")
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        stand_in.__exit__(None, None, None)


def _wait_until_up(port: int, server: subprocess.Popen, timeout: float = 90.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise click.ClickException("the web server did not start; see the output above")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise click.ClickException(f"the web server did not answer on port {port} within {timeout:.0f} s")


def _demo_agent_key() -> str:
    """A fresh key for the demo's admin agent, creating the agent on the first run."""
    import sqlalchemy as sa

    from .agents.keys import create_agent, rotate_key
    from .agents.models import Agent
    from .extensions import db

    agent = db.session.scalar(sa.select(Agent).where(Agent.name == DEMO_AGENT))
    if agent is None:
        agent, key = create_agent(DEMO_AGENT, role="admin")
    else:
        # Keys are stored hashed, so a second run cannot show the old one: it makes a new one.
        key = rotate_key(agent)
        agent.role = "admin"
    db.session.commit()
    return key


def _reminder_link() -> str | None:
    """An ``/r/<token>`` link to Dana's first bill, as a reminder text would carry it."""
    import sqlalchemy as sa

    from .extensions import db
    from .models import Account
    from .reminders import clock, tokens
    from .reminders.settings import settings

    account = db.session.scalar(
        sa.select(Account).where(Account.phone == DEMO_CALLER).order_by(Account.account_number)
    )
    if account is None:
        return None
    cfg = settings()
    token = tokens.issue(cfg.secret_key, account.id, account.phone, clock.now())
    return f"{cfg.public_base_url}/r/{token}"


def _queue_reminders() -> str:
    """Queue reminders for bills due in the next 14 days, sent at once whatever the hour."""
    from .reminders import selection

    return selection.run(days_before=14, respect_quiet_hours=False).summary()
