"""``ivr agents``: create and disable agents, read the audit log, send status callbacks."""

import time

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup

from ..extensions import db
from ..outbox import engine
from ..terminal.database import check_database
from ..terminal.words import STATUS_CALLBACKS, sent_summary
from . import audit, callbacks
from .keys import AgentError, create_agent, rotate_key
from .models import ROLES, Agent, AuditEntry


# An AppGroup: each command runs inside the app's context (db.session is bound).
@click.group("agents", cls=AppGroup)
def agents_group() -> None:
    """Agents who take payments on live calls."""


@agents_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="agent", show_default=True,
              help="supervisors also see /ops; admins also refund and manage staff")
def add(name: str, role: str) -> None:
    """Create agent NAME and print their API key (shown this once; only a hash is kept)."""
    try:
        agent, key = create_agent(name, role)
    except AgentError as exc:
        raise click.ClickException(str(exc)) from exc
    audit.record(agent, "agent.add", "ok", agent_name=agent.name, detail=f"role {role}")
    db.session.commit()
    click.echo(f"Agent {agent.name!r} created. API key (shown once, store it now):", err=True)
    click.echo(key)


@agents_group.command("disable")
@click.argument("name")
def disable(name: str) -> None:
    """Disable agent NAME: their key and console sessions stop working at once."""
    agent = _agent_named(name)
    agent.active = False
    audit.record(agent, "agent.disable", "ok")
    db.session.commit()
    click.echo(f"Agent {agent.name!r} disabled.")


@agents_group.command("rotate")
@click.argument("name")
def rotate(name: str) -> None:
    """Give agent NAME a new API key (printed once); the old key stops working at once."""
    agent = _agent_named(name)
    key = rotate_key(agent)
    audit.record(agent, "agent.rotate", "ok")
    db.session.commit()
    click.echo(f"New API key for {agent.name!r} (shown once, store it now):", err=True)
    click.echo(key)


@agents_group.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
def set_role(name: str, role: str) -> None:
    """Give agent NAME the role ROLE (agent, supervisor or admin); it applies at their next page."""
    agent = _agent_named(name)
    before, agent.role = agent.role, role
    audit.record(agent, "agent.role", "ok", detail=f"{before} -> {role}")
    db.session.commit()
    click.echo(f"Agent {agent.name!r} is now {role}.")


def _agent_named(name: str) -> Agent:
    """The agent called ``name`` (any case), or a one-line error for the operator."""
    agent = db.session.scalar(sa.select(Agent).where(sa.func.lower(Agent.name) == name.strip().lower()))
    if agent is None:
        raise click.ClickException(f"no agent named {name!r}")
    return agent


@agents_group.command("list")
def list_agents() -> None:
    """List agents (never their keys): name, active or disabled, last use, and the role of supervisors and admins."""
    for agent in db.session.scalars(sa.select(Agent).order_by(Agent.name)):
        used = agent.last_used_at.isoformat(timespec="seconds") if agent.last_used_at else "never"
        state = "active" if agent.active else "disabled"
        # The role is a trailing column, shown only above "agent": the three columns scripts
        # already read stay as they were.
        role = f"\t{agent.role}" if agent.role != "agent" else ""
        click.echo(f"{agent.name}\t{state}\tlast used {used}{role}")


@agents_group.command("audit")
@click.option("--limit", default=50, show_default=True, help="most recent entries to show")
def show_audit(limit: int) -> None:
    """Print the most recent audit entries: when, who, action, account (masked), outcome."""
    rows = db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)).all()
    for row in reversed(rows):
        click.echo(
            "\t".join(
                [
                    row.at.isoformat(timespec="seconds"),
                    row.agent_name,
                    row.action,
                    row.account or "-",
                    row.subject or "-",
                    row.outcome,
                    row.detail or "",
                ]
            )
        )


@agents_group.command("callbacks")
@click.option("--once", is_flag=True, help="send what is due now and exit")
@click.option("--poll", default=2.0, show_default=True, help="seconds between looks for new work")
def send_callbacks(once: bool, poll: float) -> None:
    """Send queued transfer status callbacks to agents' systems (ivr worker sends them too)."""
    if once:
        click.echo(sent_summary(callbacks.run_pass(), *STATUS_CALLBACKS))
        return
    # The loop logs and retries a database outage; at start it is a setup mistake, said in one line.
    check_database(current_app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        # Nothing here sets a stop event (Ctrl-C ends the loop), so a plain sleep is the pause.
        engine.run_forever({"callbacks": callbacks.run_pass}, poll_seconds=poll, pause=time.sleep)
    except KeyboardInterrupt:
        pass
