"""Shared pieces of the agent tests (no tests here): an agent and key, signed Twilio posts."""

import sqlalchemy as sa
from helpers import ACCOUNT_SID, TOKEN

from ivr.agents.keys import create_agent
from ivr.agents.models import AuditEntry
from ivr.extensions import db
from ivr.twilio.adapter import compute_signature


def new_agent(app, name="Alex Agent"):
    """Create an agent; returns its API key."""
    with app.app_context():
        _agent, key = create_agent(name)
        db.session.commit()
        return key


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def signed_post(client, url, params, *, token=TOKEN):
    """POST ``params`` to the absolute ``url`` signed as Twilio would."""
    path = url.split("://", 1)[1]
    path = path[path.index("/") :]
    return client.post(
        path, data=params, headers={"X-Twilio-Signature": compute_signature(url, params, token)}
    )


def audit_rows(app):
    with app.app_context():
        return db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id)).all()


def twilio_params(call_sid, **extra):
    params = {"AccountSid": ACCOUNT_SID, "CallSid": call_sid}
    params.update(extra)
    return params
