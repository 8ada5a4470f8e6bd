"""Agent API keys: made once, shown once, stored only as a hash plus a derived signing secret."""

import hashlib
import hmac
import re
import secrets

import sqlalchemy as sa

from ..extensions import db
from .models import ROLES, Agent

KEY_PREFIX = "ivrak_"
# The signing secret is derived from the key with this label; receivers derive it the same way.
SIGNING_LABEL = b"ivr-status-callback"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,79}$")


class AgentError(Exception):
    """An agent cannot be created or changed as asked."""


def new_key() -> str:
    """A fresh API key: a prefix that says what it is, then 256 random bits."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The stored form of a key (SHA-256, hex): enough for a 256-bit random secret."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def signing_secret(key: str) -> str:
    """HMAC-SHA256(key, "ivr-status-callback") as hex: what signs this agent's status callbacks."""
    return hmac.new(key.encode("utf-8"), SIGNING_LABEL, hashlib.sha256).hexdigest()


def sign_body(secret: str, body: bytes) -> str:
    """The ``X-IVR-Signature`` value for ``body``: ``sha256=`` + HMAC-SHA256(secret, body) hex."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def create_agent(name: str, role: str = "agent") -> tuple[Agent, str]:
    """Create an agent and return it with its key (the only time the key exists in clear)."""
    name = name.strip()
    if role not in ROLES:
        raise AgentError(f"role: one of {', '.join(ROLES)}")
    if not NAME_PATTERN.fullmatch(name):
        raise AgentError(
            "agent name: 1-80 letters, digits, spaces or . _ @ -, starting with a letter or digit"
        )
    if db.session.scalar(sa.select(Agent.id).where(sa.func.lower(Agent.name) == name.lower())):
        raise AgentError(f"an agent named {name!r} already exists")
    key = new_key()
    agent = Agent(
        name=name, key_hash=hash_key(key), signing_secret=signing_secret(key), active=True, role=role
    )
    db.session.add(agent)
    db.session.flush()
    return agent, key


def rotate_key(agent: Agent) -> str:
    """Give ``agent`` a new key (returned once); the old key and its sessions stop working."""
    key = new_key()
    agent.key_hash = hash_key(key)
    agent.signing_secret = signing_secret(key)
    agent.active = True
    return key


def agent_for_key(key: str | None) -> Agent | None:
    """The active agent holding ``key``, else None."""
    if not key or not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    agent = db.session.scalar(sa.select(Agent).where(Agent.key_hash == hash_key(key)))
    if agent is None or not agent.active:
        return None
    return agent
