"""Who is asking: a bearer API key, or the console's signed session cookie (plus a CSRF token).

The session cookie carries the agent id, a random nonce and a fragment of the key hash, signed with
``SECRET_KEY``: disabling an agent (or giving them a new key) ends every console session at once.
The CSRF token is Flask-WTF's (``ivr.extensions.csrf``), shared with /r/<token> and /ops.
"""

import secrets
from dataclasses import dataclass

from flask import Response, current_app, request
from flask_wtf.csrf import CSRFError
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..extensions import csrf, db
from ..models import utcnow
from .keys import agent_for_key
from .models import Agent

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


def new_session(agent: Agent) -> tuple[str, str]:
    """A signed session cookie value for ``agent`` and its nonce."""
    nonce = secrets.token_urlsafe(16)
    value = _serializer().dumps({"a": agent.id, "n": nonce, "k": agent.key_hash[:16]})
    return value, nonce


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
    agent = db.session.get(Agent, data.get("a"))
    if agent is None or not agent.active or agent.key_hash[:16] != data.get("k"):
        return None
    return Caller(agent, "session", str(data.get("n", "")))


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
