"""The ``ivr`` command line (names fixed by the operators' contract)."""

import os
import sys

import click


def _app():
    from . import create_app

    return create_app()


@click.group()
def main() -> None:
    """Pay-by-phone for utility co-operatives."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=lambda: int(os.environ.get("PORT", "5000")), type=int, show_default="5000 or $PORT")
@click.option("--workers", default=max(2, min(2 * (os.cpu_count() or 1) + 1, 8)), type=int, show_default=True)
@click.option("--threads", default=4, type=int, show_default=True, help="threads per worker process")
@click.option("--access-log/--no-access-log", default=True, show_default=True)
def serve(host: str, port: int, workers: int, threads: int, access_log: bool) -> None:
    """Run the production web server (gunicorn) for app:app."""
    from .config import ConfigError, load_config

    try:
        load_config()  # fail here, naming what is missing, instead of inside every worker
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    args = [
        sys.executable, "-m", "gunicorn", "app:app",
        "--bind", f"{host}:{port}",
        "--workers", str(workers),
        "--worker-class", "gthread",
        "--threads", str(threads),
        # Twilio gives up after 15 s; a request still running then is of no use to anyone.
        "--timeout", "20",
        "--graceful-timeout", "10",
        "--log-level", "warning" if not access_log else "info",
    ]
    if access_log:
        # Query strings (seq=…) are harmless; request bodies are never logged: they carry caller input.
        args += ["--access-logfile", "-", "--access-logformat", '%(h)s "%(r)s" %(s)s %(b)s %(M)sms']
    os.execv(sys.executable, args)


@main.command()
@click.option("--once", is_flag=True, help="send what is due now and exit")
@click.option("--poll", default=2.0, show_default=True, help="seconds between polls")
def worker(once: bool, poll: float) -> None:
    """Send what the outbox holds: SMS receipts, reminders, agent status callbacks."""
    from .extensions import db
    from .outbox import engine, texts

    app = _app()
    with app.app_context():
        sms = texts.kind_for(app.config, app.extensions["ivr.sms"])

        def texts_pass() -> engine.Report:
            try:
                return engine.run_once(db.session, sms)
            finally:
                db.session.remove()  # each pass starts from fresh rows, never a stale identity map

        if once:
            click.echo(f"worker: {texts_pass()}")
            click.echo(f"callbacks: {_agent_callbacks_pass()}")
            return
        click.echo("worker: sending queued texts and agent status callbacks; Ctrl-C stops", err=True)
        try:
            engine.run_forever({"texts": texts_pass, "callbacks": _agent_callbacks_pass}, poll_seconds=poll)
        except KeyboardInterrupt:
            pass


def _agent_callbacks_pass() -> object:
    """POST due transfer status callbacks to agents' systems (needs the app context).

    One bounded pass (``callbacks.PASS_BUDGET_SECONDS``); ``ivr agents callbacks`` runs it too.
    """
    from .agents import callbacks
    from .extensions import db

    try:
        return callbacks.run_once()
    finally:
        db.session.remove()  # each pass starts from fresh rows, never a stale identity map


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply Alembic migrations to DATABASE_URL."""
    from .config import load_config
    from .migrate import upgrade

    url = load_config()["SQLALCHEMY_DATABASE_URI"]
    _ensure_sqlite_dir(url)
    upgrade(url)
    click.echo("database is up to date")


def _ensure_sqlite_dir(url: str) -> None:
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


@main.command("flow-table")
def flow_table() -> None:
    """Print the call flow as a Markdown table (the README's copy is checked against it)."""
    from flows.render import markdown

    click.echo(markdown())


@main.group()
def accounts() -> None:
    """Member accounts."""


@main.group("payments")
def payments_group() -> None:
    """Payments."""


def _with_app_context(command: click.Command) -> click.Command:
    """A copy of ``command`` that runs inside the app context (so ``db.session`` is bound)."""
    import copy

    callback = command.callback
    assert callback is not None

    def run(*args, **kwargs):
        with _app().app_context():
            return callback(*args, **kwargs)

    wrapped = copy.copy(command)  # the original stays usable on its own (tests invoke it directly)
    wrapped.callback = run
    return wrapped


def _register() -> None:
    from .agents.cli import agents_group
    from .billing.commands import accounts_import_command, payments_export_command
    from .demo import demo_command
    from .reminders.cli import reminders_group
    from .softphone import call_command

    accounts.add_command(_with_app_context(accounts_import_command), "import")
    payments_group.add_command(_with_app_context(payments_export_command), "export")
    main.add_command(demo_command, "demo")
    main.add_command(call_command, "call")
    main.add_command(agents_group, "agents")
    main.add_command(reminders_group, "reminders")

_register()


if __name__ == "__main__":
    main()
