"""``ivr demo``: the whole product on this machine, no Twilio or Stripe account needed."""

import csv
import io
import os
import signal
import subprocess
import sys
import time
from datetime import date
from importlib.resources import files
from pathlib import Path

import click

DEMO_REFERENCE_DAY = date(2026, 11, 22)  # due dates in the CSV are relative to this day


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


def _print_accounts(csv_text: str) -> None:
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    click.echo("Demo accounts (account number / last four of the phone on file):")
    for row in rows:
        digits = row["account_number"].replace("-", "")
        phone_digits = "".join(ch for ch in row["phone"] if ch.isdigit())
        note = f"{row['balance']} due {row['due_date']}"
        extras = [x for x in (row.get("language") == "es" and "Spanish", row.get("status") not in ("", "active", None) and row.get("status")) if x]
        click.echo(f"  {digits:<10} last four {phone_digits[-4:]}  {note}  {row['name']}" + (f"  ({', '.join(extras)})" if extras else ""))


@click.command()
@click.option("--port", default=lambda: int(os.environ.get("PORT", "5000")), show_default="$PORT or 5000", type=int,
              help="port of the demo's web server")
@click.option("--workers", default=2, show_default=True, type=int, help="web server processes")
def demo_command(port: int, workers: int) -> None:
    """Create the embedded database, load demo accounts, run the web server and worker."""
    instance = Path.cwd() / "instance"
    instance.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", f"sqlite:///{instance / 'ivr.sqlite3'}")
    env["PAYMENT_GATEWAY"] = "sandbox"
    env["SMS_SENDER"] = "sandbox"
    env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    env["PORT"] = str(port)
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
    click.echo(f"Database ready: {database_label(env['DATABASE_URL'])}. {report.summary()}.")

    ivr = [sys.executable, "-m", "ivr.cli"]
    children = [
        subprocess.Popen(ivr + ["serve", "--port", str(port), "--workers", str(workers), "--no-access-log"], env=env),
        subprocess.Popen(ivr + ["worker"], env=env),
    ]
    try:
        _wait_until_up(port, children[0])
        click.echo("")
        _print_accounts(csv_text)
        url = "" if port == 5000 or os.environ.get("PORT") == str(port) else f" --url http://127.0.0.1:{port}"
        click.echo(f"Place a call:   ivr call{url} --from +12025550143   (Dana's phone; scripted: add --keys \"_ 1 0143 1\" --card 4242424242424242,12/30,123,30301)")
        click.echo("Texts appear:   right here, printed by the worker as it sends them (sandbox SMS).")
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


def _wait_until_up(port: int, server: subprocess.Popen, timeout: float = 30.0) -> None:
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
