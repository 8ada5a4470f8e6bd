"""The agent console at ``/agent``: sign in with name + API key, then one page that drives the API.

Plain HTML, one CSS and one JS file, no build step. Forms carry Flask-WTF's CSRF token (checked
before any view runs); the page's JavaScript sends it in ``X-CSRF-Token``. Sessions live in a
signed, HttpOnly, SameSite=Strict cookie.
"""

import hashlib
import logging

from flask import Blueprint, current_app, make_response, redirect, render_template, request
from flask_wtf.csrf import CSRFError, generate_csrf

from ..extensions import db
from . import audit, limits
from .assisted import FIELDS
from .auth import (
    SESSION_COOKIE,
    SESSION_SECONDS,
    clear_cookie,
    end_session,
    new_session,
    read_session,
    set_cookie,
)
from .keys import agent_for_key

logger = logging.getLogger(__name__)
bp = Blueprint("agent_console", __name__)

# field -> (table heading, the words in "Ask for …")
FIELD_LABELS = {
    "payment-card-number": ("Card number", "card number"),
    "expiration-date": ("Expiry date", "expiry date"),
    "security-code": ("Security code", "security code"),
    "postal-code": ("ZIP code", "ZIP code"),
}


@bp.after_request
def _security_headers(response):
    """No framing, no inline script, nothing cached: the page shows account facts."""
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(CSRFError)
def _stale_form(_error):
    """A form without its token: the sign-in page says so; other posts get a plain 403."""
    if request.endpoint == "agent_console.login":
        name = request.form.get("name", "").strip()[:80]
        return login_page(
            error="Your sign-in form expired. Please try again.", status=400, name=name
        )
    return make_response("The form's security token is missing or stale; reload the page.", 403)


def login_page(*, error: str | None = None, status: int = 200, name: str = "", next_url: str = "/agent"):
    """The sign-in form (shared by /agent and /ops; ``next_url`` is where it returns)."""
    return make_response(
        render_template(
            "agent_login.html",
            csrf=generate_csrf(),
            error=error,
            name=name,
            next_url=next_url,
            org=current_app.config["ORG_NAME"],
        ),
        status,
    )


@bp.get("/agent")
def console():
    """The console for a signed-in agent, else the sign-in page."""
    caller = read_session()
    if caller is None:
        return login_page()
    db.session.commit()
    return render_template(
        "agent_console.html",
        agent=caller.agent,
        csrf=generate_csrf(),
        org=current_app.config["ORG_NAME"],
        fields=[(f, *FIELD_LABELS[f]) for f in FIELDS],
    )


@bp.post("/agent/login")
def login():
    """Check name + key; on success start a session, on failure count it against the limit."""
    name = request.form.get("name", "").strip()[:80]
    next_url = _next_url()
    address = request.remote_addr or "-"
    # Failures count per address, and per name from that address: never per name alone, or ten
    # wrong keys sent from anywhere would lock an agent out of the console from everywhere.
    pair = hashlib.sha256(f"{name.lower()}\n{address}".encode()).hexdigest()[:40]  # fits the bucket column
    subjects = (f"login-ip:{address}", f"login-name-ip:{pair}")
    for subject in subjects:
        verdict = limits.peek("login", subject)
        if not verdict.allowed:
            minutes = max(1, verdict.retry_after // 60)
            return login_page(
                error=f"Too many failed sign-ins. Try again in {minutes} minutes.",
                status=429,
                name=name,
                next_url=next_url,
            )
    agent = agent_for_key(request.form.get("key", "").strip())
    if agent is None or agent.name.lower() != name.lower():
        db.session.rollback()
        for subject in subjects:
            limits.hit("login", subject)
        logger.warning("agent console: failed sign-in")
        return login_page(
            error="That name and key do not match an active agent.",
            status=401,
            name=name,
            next_url=next_url,
        )
    value, _nonce = new_session(agent)
    audit.record(agent, "console.login", "ok")
    db.session.commit()
    response = redirect(next_url, 303)
    set_cookie(response, SESSION_COOKIE, value, max_age=SESSION_SECONDS)
    return response


def _next_url() -> str:
    """Where the sign-in returns: /agent or /ops only, never a URL from elsewhere."""
    return "/ops" if request.form.get("next") == "/ops" else "/agent"


@bp.post("/agent/logout")
def logout():
    """End the console session, on the server: its cookie opens nothing afterwards."""
    caller = read_session()
    if caller is not None:
        end_session(caller)
        audit.record(caller.agent, "console.logout", "ok")
        db.session.commit()
    response = redirect("/agent", 303)
    clear_cookie(response, SESSION_COOKIE)
    return response
