"""The ``ivr`` command line (names fixed by the operators' contract).

Two kinds of command: the app's (``ivr.command_groups()``: worker, accounts, payments, agents,
reminders), which ``create_app`` also adds to ``app.cli`` and which run inside an app context; and
the ones below, which start processes or read files and never build the app (serve, demo, call,
db upgrade, flow-table). No product module imports this one.

A configuration or database problem in any command ends it with one line on stderr and exit
status 1 (``IvrGroup.invoke``), never a traceback; usage mistakes keep click's exit status 2.
"""

import os
import sys
from typing import Any

import click
from flask import Flask
from flask.cli import ScriptInfo

from . import command_groups, create_app
from .config import load_config
from .demo import demo_command
from .monitoring import multiproc
from .softphone import call_command
from .terminal import problems
from .terminal.database import check_database
from .terminal.startup import start_line
from .terminal.words import count


def _build_app() -> Flask:
    """The app for one command (looked up here at each call, so tests can count the builds)."""
    return create_app()


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

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a configuration or database problem becomes one line on stderr and exit status 1.

        The one place every command's settings and database errors are caught: an operator reads what
        to fix (the variable, the database by host and name, ``run ivr db upgrade``), not a traceback.
        """
        try:
            return super().invoke(ctx)
        except problems.PROBLEMS as exc:
            raise click.ClickException(problems.one_line(exc)) from None


@click.group(cls=IvrGroup)
def main() -> None:
    """Pay-by-phone for utility co-operatives."""


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on (0.0.0.0: every interface)")
@click.option("--port", default=lambda: int(os.environ.get("PORT", "5000")), type=int, show_default="5000 or $PORT",
              help="port to listen on")
@click.option("--workers", default=max(2, min(2 * (os.cpu_count() or 1) + 1, 8)), type=int, show_default=True,
              help="web server processes")
@click.option("--threads", default=4, type=int, show_default=True, help="requests each process answers at once")
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="a line per request on stdout")
@click.option("--preload/--no-preload", default=True, show_default=True,
              help="load the app once before starting the processes (gunicorn's preload_app)")
def serve(host: str, port: int, workers: int, threads: int, access_log: bool, preload: bool) -> None:
    """Run the web server that answers Twilio, Stripe, agents and members."""
    config = load_config()  # fail here, naming what is wrong, instead of inside every worker process
    check_database(config["SQLALCHEMY_DATABASE_URI"])
    # Printed here, before gunicorn starts its processes, so it appears once.
    listening = (f"listening on {host}:{port}", count(workers, "process", "processes"))
    click.echo(start_line("serve", config, *listening, f"keep-alive {config['KEEPALIVE_SECONDS']} s"), err=True)
    args = gunicorn_command(config, host=host, port=port, workers=workers, threads=threads, access_log=access_log,
                            preload=preload)
    # prometheus-client reads its directory when first imported, so it is in the workers' environment from the start.
    os.execve(sys.executable, args, multiproc.serve_environment(os.environ))


def gunicorn_command(
    config: dict[str, Any], *, host: str, port: int, workers: int, threads: int, access_log: bool,
    preload: bool = True,
) -> list[str]:
    """The command line ``ivr serve`` replaces itself with: gunicorn for ``app:app`` with ``config``'s keep-alive."""
    args = [
        sys.executable, "-m", "gunicorn", "app:app",
        "--bind", f"{host}:{port}",
        "--workers", str(workers),
        "--worker-class", "gthread",
        "--threads", str(threads),
        # Twilio gives up after 15 s; a request still running then is of no use to anyone.
        "--timeout", "20",
        "--graceful-timeout", "10",
        # Longer than a load balancer keeps an idle connection (docs/setup.md, KEEPALIVE_SECONDS): if
        # gunicorn closed first, a request the balancer sends on it at that moment would get a reset.
        "--keep-alive", str(config["KEEPALIVE_SECONDS"]),
        "--log-level", "warning" if not access_log else "info",
        # Hooks that keep /metrics counting across the worker processes.
        "-c", multiproc.GUNICORN_CONFIG,
    ]
    if preload:
        # The app is imported once, in gunicorn's master, and the processes are forked from it:
        # a restart answers as soon as one import is done, not one per process on shared cores
        # (bench/restart.py). Nothing in create_app opens a connection or starts a thread, and the
        # post_fork hook drops any pooled connection a process would otherwise share.
        args.append("--preload")
    if access_log:
        # Query strings (seq=…) are harmless; request bodies are never logged: they carry caller input.
        args += ["--access-logfile", "-", "--access-logformat", '%(h)s "%(r)s" %(s)s %(b)s %(M)sms']
    return args


@click.group("db")
def db() -> None:
    """Create and upgrade the database's tables."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the tables of the database DATABASE_URL names (safe to run on every release)."""
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
    """Print the call flow (every step, what the caller hears and can press) as a Markdown table."""
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
    main(prog_name="ivr")
