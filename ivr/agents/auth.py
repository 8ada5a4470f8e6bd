"""Who is asking: a bearer API key, or the console's signed session cookie (plus a CSRF token).

The session cookie carries the agent id, a random nonce and a fragment of the key hash, signed with
``SECRET_KEY``: disabling an agent (or giving them a new key) ends every console session at once.
The nonce names the session's row (``AgentSession``, by its hash): signing out ends that row, so
the cookie is worthless afterwards even to someone who copied it.
The CSRF token is Flask-WTF's (``ivr.extensions.csrf``), shared with /r/<token> and /ops.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import Response, current_app, request
from flask_wtf.csrf import CSRFError
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..extensions import csrf, db
from ..models import utcnow
from .keys import agent_for_key
from .models import Agent, AgentSession

SESSION_COOKIE = "ivr_agent_session"
SESSION_SECONDS = 8 * 3600  # one working shift


@dataclass(frozen=True)
class Caller:
    """An authenticated agent and how they proved it (``key`` or ``session``)."""

    agent: Agent
    via: str
    nonce: str = ""


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="ivr-agent-session")


def _nonce_hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode("utf-8")).hexdigest()


def new_session(agent: Agent) -> tuple[str, str]:
    """Start a console session for ``agent`` (the caller commits); its signed cookie value and nonce."""
    nonce = secrets.token_urlsafe(16)
    now = utcnow()
    # This agent's sessions long over are of no use: drop them so the table stays small.
    db.session.execute(
        sa.delete(AgentSession)
        .where(AgentSession.agent_id == agent.id, AgentSession.expires_at < now - timedelta(days=1))
        .execution_options(synchronize_session=False)
    )
    db.session.add(AgentSession(agent_id=agent.id, nonce_hash=_nonce_hash(nonce), created_at=now,
                                expires_at=now + timedelta(seconds=SESSION_SECONDS)))
    value = _serializer().dumps({"a": agent.id, "n": nonce, "k": agent.key_hash[:16]})
    return value, nonce


def end_session(caller: "Caller") -> None:
    """Sign out: the session's row is ended, so its cookie opens nothing any more (the caller commits)."""
    db.session.execute(
        sa.update(AgentSession)
        .where(AgentSession.nonce_hash == _nonce_hash(caller.nonce), AgentSession.ended_at.is_(None))
        .values(ended_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def read_session() -> Caller | None:
    """The agent of a valid, unexpired session cookie, still active and holding the same key."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        data = _serializer().loads(raw, max_age=SESSION_SECONDS)
    except BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    agent_id, nonce = data.get("a"), data.get("n")
    if not isinstance(agent_id, int) or not isinstance(nonce, str) or not nonce:
        return None
    agent = db.session.get(Agent, agent_id)
    if agent is None or not agent.active or agent.key_hash[:16] != data.get("k"):
        return None
    live = db.session.scalar(
        sa.select(AgentSession.id).where(
            AgentSession.nonce_hash == _nonce_hash(nonce),
            AgentSession.agent_id == agent.id,
            AgentSession.ended_at.is_(None),
            AgentSession.expires_at > utcnow(),
        )
    )
    if live is None:  # signed out, or never started here
        return None
    return Caller(agent, "session", nonce)


def authenticate() -> Caller | None:
    """The caller of this request, or None; a wrong ``Authorization`` never falls back."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        agent = agent_for_key(token.strip())
        if agent is None:
            return None
        agent.last_used_at = utcnow()
        return Caller(agent, "key")
    return read_session()


def csrf_ok(caller: Caller) -> bool:
    """Bearer requests need no CSRF token; cookie requests must send the page's token."""
    if caller.via == "key":
        return True
    try:
        csrf.protect()  # the form field csrf_token or the X-CSRF-Token header
    except CSRFError:
        return False
    return True


def set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    """Set an HttpOnly, SameSite=Strict cookie; ``Secure`` whenever the public URL is https."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        secure=current_app.config["PUBLIC_BASE_URL"].startswith("https://"),
        samesite="Strict",
        path="/",
    )


def clear_cookie(response: Response, name: str) -> None:
    """Remove a cookie set by ``set_cookie``."""
    response.delete_cookie(
        name,
        path="/",
        samesite="Strict",
        secure=current_app.config["PUBLIC_BASE_URL"].startswith("https://"),
    )
