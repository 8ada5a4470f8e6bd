"""The IVR web service: the composition root that wires flows, payments and prompts to Flask."""

import logging
from collections.abc import Mapping
from typing import Any

import click
from flask import Flask

from .config import load_config
from .edge import request_size
from .extensions import (
    CALL_ROWS_BIND,
    POOL_RECYCLE_SECONDS,
    CsrfSessionCookie,
    call_rows_engine_options,
    csrf,
    db,
)
from .voice import call_rows


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: config from the environment (then ``overrides``), database, adapters, routes, commands.

    Every blueprint, call-event listener and command group the app has is registered below. (The
    SQLite pragmas in ``extensions`` are an engine-level listener for every engine in the process,
    migrations and scripts included, so they are installed on import rather than here.)
    """
    app = Flask(__name__, instance_relative_config=False)
    app.config.update(load_config())
    if overrides:
        app.config.update(overrides)
    # Connections are checked out per request; a dead one fails that request and is replaced.
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_recycle": POOL_RECYCLE_SECONDS})
    app.config.setdefault("SQLALCHEMY_BINDS", {}).setdefault(
        CALL_ROWS_BIND, call_rows_engine_options(app.config["SQLALCHEMY_DATABASE_URI"])
    )

    if app.config.get("TRUSTED_PROXIES"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Only the client address: signatures are checked against PUBLIC_BASE_URL, never the Host.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=int(app.config["TRUSTED_PROXIES"]))  # type: ignore[method-assign]

    request_size.init_app(app)
    db.init_app(app)
    call_rows.init_app(app)
    _init_csrf(app)

    from payments import build_gateway

    from .outbox.sms import build_sms_sender

    cfg = app.config
    app.extensions["ivr.gateway"] = cfg.get("GATEWAY") or build_gateway(
        cfg["PAYMENT_GATEWAY"],
        secret_key=cfg["STRIPE_SECRET_KEY"],
        webhook_secret=cfg["STRIPE_WEBHOOK_SECRET"],
        api_base=cfg["STRIPE_API_BASE"],
        moto=cfg["STRIPE_MOTO"],
    )
    app.extensions["ivr.sms"] = cfg.get("SMS") or build_sms_sender(cfg)

    from . import errors, health
    from .agents import api as agent_api
    from .agents import console as agent_console
    from .agents import progress as transfer_progress
    from .agents import voice_entry as agent_voice
    from .money import stripe_webhooks
    from .monitoring import web as monitoring
    from .ops import later as _ops_later  # noqa: F401  (adds the paying-later pages to the ops blueprint)
    from .ops import pages as ops_pages
    from .reminders import inbound_sms
    from .reminders import web as reminder_pages
    from .voice import events as call_events
    from .voice import webhooks as voice

    app.register_blueprint(voice.bp)
    app.register_blueprint(stripe_webhooks.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(inbound_sms.bp)
    app.register_blueprint(reminder_pages.bp)
    app.register_blueprint(agent_api.bp)
    app.register_blueprint(agent_voice.bp)
    app.register_blueprint(agent_console.bp)
    app.register_blueprint(ops_pages.bp)
    # Signed by Twilio or Stripe, or keyed: no browser form reaches these. The agent API checks the
    # token itself for console (cookie) callers.
    for signed in (voice.bp, stripe_webhooks.bp, health.bp, inbound_sms.bp, agent_api.bp, agent_voice.bp):
        csrf.exempt(signed)
    app.register_blueprint(monitoring.bp)
    # Every request is timed once, by endpoint, for GET /metrics.
    monitoring.time_requests(app)
    # A transferred caller's progress through the flow keeps the agent's transfer status current.
    call_events.subscribe(app, transfer_progress.on_call_event)
    for group in command_groups():
        app.cli.add_command(group)
    errors.register(app)
    _configure_logging()
    return app


def _init_csrf(app: Flask) -> None:
    """Flask-WTF's CSRFProtect over a session cookie that holds only its secret."""
    from .agents.auth import SESSION_SECONDS

    cfg = app.config
    # Flask's own defaults are set already, so these are assigned, not defaulted.
    cfg["SESSION_COOKIE_NAME"] = "ivr_csrf"
    cfg["SESSION_COOKIE_SAMESITE"] = "Lax"
    # A token lasts as long as a console session: the agent page sends it all shift long.
    cfg.setdefault("WTF_CSRF_TIME_LIMIT", SESSION_SECONDS)
    # The staff pages send no Referer (Referrer-Policy: no-referrer); the token and SameSite
    # cookies already refuse a cross-site post, so the https Referer check would only lock staff out.
    cfg.setdefault("WTF_CSRF_SSL_STRICT", False)
    app.session_interface = CsrfSessionCookie()
    csrf.init_app(app)


def command_groups() -> list[click.Command]:
    """The wings' commands that work on the app's data; ``create_app`` and ``ivr.cli`` both add these."""
    from .agents.cli import agents_group
    from .billing.commands import accounts_group, payments_group
    from .outbox.commands import worker_command
    from .reminders.cli import reminders_group

    return [worker_command, accounts_group, payments_group, agents_group, reminders_group]


def _configure_logging() -> None:
    """INFO lines from our code on stderr (gunicorn and the worker inherit it); never configured twice."""
    logger = logging.getLogger("ivr")
    logger.setLevel(logging.INFO)
    if not logging.getLogger().handlers and not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
