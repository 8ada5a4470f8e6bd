"""Configuration from the environment: one function, read once per app, never at import time."""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PRODUCTION_SECRETS = (
    "DATABASE_URL",
    "PUBLIC_BASE_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_FROM_NUMBER",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "SECRET_KEY",
)

# Agents' rate limits (docs/agents.md, "Limits"): set only when given as a whole number, so
# the defaults stay in ivr/agents/limits.py.
AGENT_RATE_LIMITS = (
    "AGENT_PAYMENTS_PER_MINUTE",
    "AGENT_LOOKUPS_PER_MINUTE",
    "AGENT_ACTIONS_PER_MINUTE",
    "AGENT_READS_PER_MINUTE",
    "AGENT_LOGIN_FAILURES_PER_10_MINUTES",
)

# Development defaults: a fake Twilio account whose token signs the softphone's requests.
DEV_ACCOUNT_SID = "AC00000000000000000000000000000000"
DEV_AUTH_TOKEN = "dev-auth-token-not-secret"
DEV_STRIPE_WEBHOOK_SECRET = "whsec_dev_not_secret"


class ConfigError(Exception):
    """The environment cannot run the service (missing secrets, forbidden adapters)."""


def default_database_url(instance_dir: Path | None = None) -> str:
    """The embedded SQLite file under ``instance/``."""
    base = instance_dir or Path.cwd() / "instance"
    return f"sqlite:///{base / 'ivr.sqlite3'}"


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _normalise_db_url(url: str) -> str:
    # Heroku-style URLs say postgres://; SQLAlchemy 2 wants an explicit driver.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def parse_state_windows(text: str) -> dict[str, tuple[int, int]]:
    """``"FL=8-20,TX=9-21"`` -> ``{"FL": (8, 20), "TX": (9, 21)}`` (hours, local time)."""
    windows: dict[str, tuple[int, int]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            state, hours = item.split("=")
            start, end = (int(h) for h in hours.split("-"))
        except ValueError as exc:
            raise ConfigError(f"QUIET_HOURS_STATE_WINDOWS: {item!r} is not like FL=8-20") from exc
        if not 0 <= start < end <= 24:
            raise ConfigError(f"QUIET_HOURS_STATE_WINDOWS: {item!r} is not a window within a day")
        windows[state.strip().upper()] = (start, end)
    return windows


MAX_CONVENIENCE_FEE_CENTS = 10_000  # $100: above it, a typo is likelier than a co-op's decision


def parse_convenience_fee(text: str) -> int:
    """``CONVENIENCE_FEE_CENTS``: a whole number of cents, 0 (off) to ``MAX_CONVENIENCE_FEE_CENTS``."""
    value = text.strip()
    if not value:
        return 0
    if not value.isdigit() or int(value) > MAX_CONVENIENCE_FEE_CENTS:
        raise ConfigError(
            f"CONVENIENCE_FEE_CENTS must be a whole number of cents from 0 (no fee) to "
            f"{MAX_CONVENIENCE_FEE_CENTS}, e.g. 250 for $2.50; not {value!r}"
        )
    return int(value)


def load_config(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the app's settings from ``environ``; in production fail listing every missing secret."""
    env = os.environ if environ is None else environ
    ivr_env = env.get("IVR_ENV", "development").strip() or "development"
    if ivr_env not in {"development", "production"}:
        raise ConfigError(f"IVR_ENV must be 'development' or 'production', not {ivr_env!r}")
    production = ivr_env == "production"

    if production:
        missing = [name for name in PRODUCTION_SECRETS if not env.get(name, "").strip()]
        if missing:
            raise ConfigError(
                "IVR_ENV=production needs these environment variables: " + ", ".join(missing)
            )

    gateway = env.get("PAYMENT_GATEWAY", "").strip().lower()
    if not gateway:
        gateway = "stripe" if env.get("STRIPE_SECRET_KEY") else "sandbox"
    if gateway not in {"stripe", "sandbox"}:
        raise ConfigError(f"PAYMENT_GATEWAY must be 'stripe' or 'sandbox', not {gateway!r}")
    if production and gateway == "sandbox":
        raise ConfigError("PAYMENT_GATEWAY=sandbox is refused when IVR_ENV=production")
    if gateway == "stripe" and not env.get("STRIPE_SECRET_KEY"):
        raise ConfigError("PAYMENT_GATEWAY=stripe needs STRIPE_SECRET_KEY")

    sms_sender = env.get("SMS_SENDER", "").strip().lower()
    if not sms_sender:
        sms_sender = "twilio" if env.get("TWILIO_ACCOUNT_SID") and env.get("TWILIO_AUTH_TOKEN") else "sandbox"
    if production and sms_sender == "sandbox":
        raise ConfigError("SMS_SENDER=sandbox is refused when IVR_ENV=production")

    public_base = env.get("PUBLIC_BASE_URL", "").strip().rstrip("/")
    if not public_base:
        public_base = f"http://127.0.0.1:{env.get('PORT', '5000')}"

    return {
        "IVR_ENV": ivr_env,
        "PRODUCTION": production,
        "SQLALCHEMY_DATABASE_URI": _normalise_db_url(
            env.get("DATABASE_URL", "").strip() or default_database_url()
        ),
        "PUBLIC_BASE_URL": public_base,
        "TWILIO_ACCOUNT_SID": env.get("TWILIO_ACCOUNT_SID", "").strip() or DEV_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": env.get("TWILIO_AUTH_TOKEN", "").strip() or DEV_AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": env.get("TWILIO_FROM_NUMBER", "").strip() or "+15005550006",
        "TWILIO_PAY_CONNECTOR": env.get("TWILIO_PAY_CONNECTOR", "").strip() or "Default",
        "TWILIO_API_BASE": env.get("TWILIO_API_BASE", "").strip().rstrip("/") or None,
        "STRIPE_SECRET_KEY": env.get("STRIPE_SECRET_KEY", "").strip() or None,
        "STRIPE_WEBHOOK_SECRET": env.get("STRIPE_WEBHOOK_SECRET", "").strip()
        or DEV_STRIPE_WEBHOOK_SECRET,
        "STRIPE_API_BASE": env.get("STRIPE_API_BASE", "").strip().rstrip("/") or None,
        "STRIPE_MOTO": _flag(env.get("STRIPE_MOTO")),
        "PAYMENT_GATEWAY": gateway,
        "SMS_SENDER": sms_sender,
        "AGENT_TRANSFER_NUMBER": env.get("AGENT_TRANSFER_NUMBER", "").strip() or None,
        # Hosts agents' status callbacks may be sent to (a host and its subdomains); empty: any
        # public host. Stops an agent key from making this server POST into the co-op's network.
        "AGENT_CALLBACK_HOSTS": tuple(
            h.strip().lower().strip(".") for h in env.get("AGENT_CALLBACK_HOSTS", "").split(",") if h.strip()
        ),
        # Proxies (load balancers) in front of ivr serve that append to X-Forwarded-For; their
        # count tells which address is the client's (used by the console's login limits).
        "TRUSTED_PROXIES": int(env.get("TRUSTED_PROXIES", "") or 0),
        **{name: int(env[name]) for name in AGENT_RATE_LIMITS if env.get(name, "").strip().isdigit()},
        "ORG_NAME": env.get("ORG_NAME", "").strip() or "Your Cooperative",
        "ORG_TIMEZONE": env.get("ORG_TIMEZONE", "").strip() or "America/New_York",
        "MIN_PAYMENT_CENTS": int(env.get("MIN_PAYMENT_CENTS", "100")),
        # Empty means "the balance": a member may not overpay by phone unless the co-op allows it.
        "MAX_PAYMENT_CENTS": int(env["MAX_PAYMENT_CENTS"]) if env.get("MAX_PAYMENT_CENTS") else None,
        # A flat fee the caller accepts by a key before card entry, charged with the payment (0: off).
        "CONVENIENCE_FEE_CENTS": parse_convenience_fee(env.get("CONVENIENCE_FEE_CENTS", "")),
        "SECRET_KEY": env.get("SECRET_KEY", "").strip() or "dev-secret-key-not-secret",
        "ORG_PHONE": env.get("ORG_PHONE", "").strip() or None,  # the office number texts and pages give
        "REMINDER_LINK_HOURS": int(env.get("REMINDER_LINK_HOURS", "") or 72),
        "CALLBACK_MIN_GAP_MINUTES": int(env.get("CALLBACK_MIN_GAP_MINUTES", "") or 10),
        "CALLBACK_DAILY_LIMIT": int(env.get("CALLBACK_DAILY_LIMIT", "") or 5),
        # Texts per second the worker sends; Twilio queues beyond a number's rate (1/s for a long code).
        "SMS_RATE_PER_SECOND": float(env.get("SMS_RATE_PER_SECOND", "") or 1.0),
        # Narrower reminder windows some states require, e.g. "FL=8-20"; off by default.
        "QUIET_HOURS_STATE_WINDOWS": parse_state_windows(env.get("QUIET_HOURS_STATE_WINDOWS", "")) or None,
        # The bearer token Prometheus sends to GET /metrics; unset, the endpoint does not exist.
        "METRICS_TOKEN": env.get("METRICS_TOKEN", "").strip() or None,
    }
