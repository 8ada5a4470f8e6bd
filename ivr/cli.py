"""The ``ivr`` command line (names fixed by the operators' contract).

Two kinds of command: the app's (``ivr.command_groups()``: worker, accounts, payments, agents,
reminders), which ``create_app`` also adds to ``app.cli`` and which run inside an app context; and
the ones below, which start processes or read files and never build the app (serve, demo, call,
db upgrade, flow-table). No product module imports this one.
"""

import os
import sys
from typing import Any

import click
from flask import Flask
from flask.cli import ScriptInfo

from . import command_groups, create_app
from .config import ConfigError, load_config
from .demo import demo_command
from .monitoring import multiproc
from .softphone import call_command


def _build_app() -> Flask:
    """The app for one command, reporting a configuration problem as one line instead of a traceback."""
    try:
        return create_app()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


class IvrGroup(click.Group):
    """The top group: its commands find a ``ScriptInfo`` that builds the app on first use only.

    Flask's ``with_appcontext`` (and every ``AppGroup`` command) asks that ``ScriptInfo`` for the
    app, so the app is built once per command and never for one that does not need it. Not a
    ``FlaskGroup``: that one builds the app to list commands (``ivr --help``) and adds
    ``--app``/``--env-file``/``--debug`` and ``FLASK_*`` variables that mean nothing here.
    """

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        """A fresh ``ScriptInfo`` per run, so two runs in one process (tests) never share an app."""
        extra.setdefault("obj", ScriptInfo(create_app=_build_app, set_debug_flag=False, load_dotenv_defaults=False))
        return super().make_context(info_name, args, parent=parent, **extra)


@click.group(cls=IvrGroup)
def main() -> None:
    """Pay-by-phone for utility co-operatives."""


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=lambda: int(os.environ.get("PORT", "5000")), type=int, show_default="5000 or $PORT")
@click.option("--workers", default=max(2, min(2 * (os.cpu_count() or 1) + 1, 8)), type=int, show_default=True)
@click.option("--threads", default=4, type=int, show_default=True, help="threads per worker process")
@click.option("--access-log/--no-access-log", default=True, show_default=True)
def serve(host: str, port: int, workers: int, threads: int, access_log: bool) -> None:
    """Run the production web server (gunicorn) for app:app."""
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
        # Hooks that keep /metrics counting across the worker processes.
        "-c", multiproc.GUNICORN_CONFIG,
    ]
    if access_log:
        # Query strings (seq=…) are harmless; request bodies are never logged: they carry caller input.
        args += ["--access-logfile", "-", "--access-logformat", '%(h)s "%(r)s" %(s)s %(b)s %(M)sms']
    # prometheus-client reads its directory when first imported, so it is in the workers' environment from the start.
    os.execve(sys.executable, args, multiproc.serve_environment(os.environ))


@click.group("db")
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply Alembic migrations to DATABASE_URL."""
    from .migrate import upgrade  # Alembic is only loaded by the command that needs it

    url = load_config()["SQLALCHEMY_DATABASE_URI"]
    _ensure_sqlite_dir(url)
    upgrade(url)
    click.echo("database is up to date")


def _ensure_sqlite_dir(url: str) -> None:
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


@click.command("flow-table")
def flow_table() -> None:
    """Print the call flow as a Markdown table (the README's copy is checked against it)."""
    from flows.render import markdown

    click.echo(markdown())


# The whole `ivr` tree in one place: commands that never build the app, then the app's groups.
main.add_command(demo_command, "demo")
main.add_command(serve)
main.add_command(call_command, "call")
main.add_command(db)
main.add_command(flow_table)
for group in command_groups():
    main.add_command(group)


if __name__ == "__main__":
    main()
