"""Configuration from the environment: one function, read once per app, never at import time."""

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

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

# Flask signs session cookies and reminder links with it: production wants one long enough
# that it cannot be guessed (32 characters, e.g. `python -c "import secrets; print(secrets.token_urlsafe(32))"`).
MIN_SECRET_KEY_LENGTH = 32
# Seconds gunicorn keeps an idle connection open. Load balancers reuse connections for up to their
# idle timeout (60 s for AWS ALB and nginx's upstream keepalive_timeout), so the server must wait
# longer than that: closing first races the balancer's next request, which then gets a reset.
DEFAULT_KEEPALIVE_SECONDS = 75
MAX_KEEPALIVE_SECONDS = 3600

# Development defaults: a fake Twilio account whose token signs the softphone's requests.
DEV_ACCOUNT_SID = "AC00000000000000000000000000000000"
DEV_AUTH_TOKEN = "dev-auth-token-not-secret"
DEV_STRIPE_WEBHOOK_SECRET = "whsec_dev_not_secret"


class ConfigError(Exception):
    """The environment cannot run the service (missing secrets, forbidden adapters, bad values)."""


def default_database_url(instance_dir: Path | None = None) -> str:
    """The embedded SQLite file under ``instance/``."""
    base = instance_dir or Path.cwd() / "instance"
    return f"sqlite:///{base / 'ivr.sqlite3'}"


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def database_url(env: Mapping[str, str]) -> str:
    """The SQLAlchemy URL ``DATABASE_URL`` names (normalised), or the embedded SQLite file."""
    return _normalise_db_url(env.get("DATABASE_URL", "").strip() or default_database_url())


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


# Twilio's Confidence runs from 0 to 1; below this a spoken answer is read back before it counts.
DEFAULT_SPEECH_CONFIDENCE = 0.6
# Twilio's <Gather> model for short commands and digits (account numbers, amounts, "yes", "pay").
DEFAULT_SPEECH_MODEL = "numbers_and_commands"
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


# Twilio <Say> voices the prompts may use, by the catalogue's language (<Say language> en-US and es-US):
# Amazon Polly's voices for those locales, plain (standard), -Neural or -Generative; Twilio refuses a voice
# that does not speak the <Say> language. Google voices are checked by their locale only.
POLLY_VOICES = {
    "en": ("Danielle", "Gregory", "Ivy", "Joanna", "Joey", "Justin", "Kendra", "Kevin", "Kimberly", "Matthew",
           "Ruth", "Salli", "Stephen"),
    "es": ("Lupe", "Penelope", "Miguel", "Pedro"),
}
TTS_VOICE_SETTINGS = {"en": "TTS_VOICE_EN", "es": "TTS_VOICE_ES"}
_VOICE = re.compile(r"Polly\.([A-Za-z]+)(-Neural|-Generative)?|Google\.([a-z]{2})-US-[A-Za-z0-9]+-[A-Z]")


def voice_problem(name: str, lang: str) -> str | None:
    """Why ``name`` is not a Twilio voice for the ``lang`` prompts (``en`` or ``es``), or None."""
    match = _VOICE.fullmatch(name)
    polly, google_lang = (match.group(1), match.group(3)) if match else (None, None)
    if (polly and polly in POLLY_VOICES[lang]) or google_lang == lang:
        return None
    examples = {"en": "Polly.Joanna-Neural", "es": "Polly.Lupe-Neural"}[lang]
    return (
        f"{TTS_VOICE_SETTINGS[lang]} must be a Twilio voice that speaks {lang}-US, like {examples} "
        f"(Polly: {', '.join(POLLY_VOICES[lang])}), not {name!r}"
    )


def _database_problem(url: str) -> str | None:
    """Why SQLAlchemy cannot use ``url`` (never quoting it: it may hold a password), or None."""
    try:
        sa.engine.make_url(url).get_dialect().import_dbapi()
    except (sa.exc.ArgumentError, ImportError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return (
            f"DATABASE_URL is not a database URL this service can use ({reason}), "
            "expected postgresql+psycopg://user:password@host/name or sqlite:///path"
        )
    return None


def _is_origin(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in {"http", "https"} and bool(parts.netloc)


def _is_time_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _whole_number(
    env: Mapping[str, str], name: str, default: int | None, problems: list[str], *, minimum: int = 0,
    maximum: int | None = None,
) -> int | None:
    """``env[name]`` as a whole number within bounds, ``default`` when unset; a bad value is a problem named."""
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        bounds = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
        problems.append(f"{name} must be a whole number {bounds}, not {text!r}")
        return default
    return value


def _production_problems(env: Mapping[str, str], db_url: str, public_base: str, secret_key: str) -> list[str]:
    """What ``IVR_ENV=production`` refuses, one phrase each, every variable named."""
    problems = []
    missing = [name for name in PRODUCTION_SECRETS if not env.get(name, "").strip()]
    if missing:
        problems.append("IVR_ENV=production needs these environment variables: " + ", ".join(missing))
    # A missing variable is reported as missing, not also as wrong.
    if env.get("DATABASE_URL", "").strip() and db_url.startswith("sqlite"):
        problems.append("DATABASE_URL is SQLite, which IVR_ENV=production refuses (use PostgreSQL)")
    if public_base and _is_origin(public_base) and urlsplit(public_base).scheme != "https":
        problems.append("PUBLIC_BASE_URL must start with https:// when IVR_ENV=production")
    if secret_key and len(secret_key) < MIN_SECRET_KEY_LENGTH:
        problems.append(
            f"SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters when IVR_ENV=production "
            f"(it has {len(secret_key)})"
        )
    return problems


def load_config(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the app's settings from ``environ``; fail naming every problem found (all at once).

    :raises ConfigError: one message, one line, naming each variable that is missing or wrong.
    """
    env = os.environ if environ is None else environ
    ivr_env = env.get("IVR_ENV", "development").strip() or "development"
    if ivr_env not in {"development", "production"}:
        raise ConfigError(f"IVR_ENV must be 'development' or 'production', not {ivr_env!r}")
    production = ivr_env == "production"

    db_url = database_url(env)
    public_base = env.get("PUBLIC_BASE_URL", "").strip().rstrip("/")
    secret_key = env.get("SECRET_KEY", "").strip()
    problems = _production_problems(env, db_url, public_base, secret_key) if production else []
    database_problem = _database_problem(db_url)
    if database_problem:
        problems.append(database_problem)
    if public_base and not _is_origin(public_base):
        problems.append(f"PUBLIC_BASE_URL must be an origin like https://pay.example.coop, not {public_base!r}")
    org_timezone = env.get("ORG_TIMEZONE", "").strip() or "America/New_York"
    if not _is_time_zone(org_timezone):
        problems.append(f"ORG_TIMEZONE must be a time zone name like America/Chicago, not {org_timezone!r}")

    # In production a sandbox chosen by default is already explained by the missing credentials.
    gateway = chosen_gateway = env.get("PAYMENT_GATEWAY", "").strip().lower()
    if not gateway:
        gateway = "stripe" if env.get("STRIPE_SECRET_KEY") else "sandbox"
    if gateway not in {"stripe", "sandbox"}:
        problems.append(f"PAYMENT_GATEWAY must be 'stripe' or 'sandbox', not {gateway!r}")
    elif production and chosen_gateway == "sandbox":
        problems.append("PAYMENT_GATEWAY=sandbox is refused when IVR_ENV=production")
    elif gateway == "stripe" and not env.get("STRIPE_SECRET_KEY") and not production:
        # (In production the missing key is already named among the missing variables.)
        problems.append("PAYMENT_GATEWAY=stripe needs STRIPE_SECRET_KEY")

    sms_sender = chosen_sender = env.get("SMS_SENDER", "").strip().lower()
    if not sms_sender:
        sms_sender = "twilio" if env.get("TWILIO_ACCOUNT_SID") and env.get("TWILIO_AUTH_TOKEN") else "sandbox"
    if sms_sender not in {"twilio", "sandbox"}:
        problems.append(f"SMS_SENDER must be 'twilio' or 'sandbox', not {sms_sender!r}")
    elif production and chosen_sender == "sandbox":
        problems.append("SMS_SENDER=sandbox is refused when IVR_ENV=production")

    numbers = {
        "TRUSTED_PROXIES": _whole_number(env, "TRUSTED_PROXIES", 0, problems),
        "MIN_PAYMENT_CENTS": _whole_number(env, "MIN_PAYMENT_CENTS", 100, problems, minimum=1),
        # Empty means "the balance": a member may not overpay by phone unless the co-op allows it.
        "MAX_PAYMENT_CENTS": _whole_number(env, "MAX_PAYMENT_CENTS", None, problems, minimum=1),
        "REMINDER_LINK_HOURS": _whole_number(env, "REMINDER_LINK_HOURS", 72, problems, minimum=1),
        "CALLBACK_MIN_GAP_MINUTES": _whole_number(env, "CALLBACK_MIN_GAP_MINUTES", 10, problems),
        "CALLBACK_DAILY_LIMIT": _whole_number(env, "CALLBACK_DAILY_LIMIT", 5, problems),
        # The hour (ORG_TIMEZONE) at which scheduled payments and autopay bills are charged on their day.
        "SCHEDULED_CHARGE_HOUR": _whole_number(env, "SCHEDULED_CHARGE_HOUR", 9, problems, maximum=23),
        "KEEPALIVE_SECONDS": _whole_number(
            env, "KEEPALIVE_SECONDS", DEFAULT_KEEPALIVE_SECONDS, problems, minimum=1, maximum=MAX_KEEPALIVE_SECONDS
        ),
    }
    sms_rate_text = env.get("SMS_RATE_PER_SECOND", "").strip()
    try:
        sms_rate = float(sms_rate_text or 1.0)
        if not sms_rate > 0:
            raise ValueError(sms_rate_text)
    except ValueError:
        problems.append(f"SMS_RATE_PER_SECOND must be a number above 0, not {sms_rate_text!r}")
        sms_rate = 1.0
    # Speech: answers recognised with less confidence than this are read back for a yes or a no.
    confidence_text = env.get("SPEECH_CONFIDENCE_THRESHOLD", "").strip()
    try:
        speech_confidence = float(confidence_text or DEFAULT_SPEECH_CONFIDENCE)
        if not 0 <= speech_confidence <= 1:
            raise ValueError(confidence_text)
    except ValueError:
        problems.append(f"SPEECH_CONFIDENCE_THRESHOLD must be a number from 0 to 1, e.g. 0.6; not {confidence_text!r}")
        speech_confidence = DEFAULT_SPEECH_CONFIDENCE
    speech_model = env.get("SPEECH_MODEL", "").strip() or DEFAULT_SPEECH_MODEL
    try:
        state_windows = parse_state_windows(env.get("QUIET_HOURS_STATE_WINDOWS", "")) or None
    except ConfigError as exc:
        problems.append(str(exc))
        state_windows = None
    try:
        convenience_fee = parse_convenience_fee(env.get("CONVENIENCE_FEE_CENTS", ""))
    except ConfigError as exc:
        problems.append(str(exc))
        convenience_fee = 0

    voices = {}
    for lang, name in TTS_VOICE_SETTINGS.items():
        chosen = env.get(name, "").strip()
        if chosen:
            problem = voice_problem(chosen, lang)
            if problem:
                problems.append(problem)
            else:
                voices[lang] = chosen

    if problems:
        raise ConfigError("; ".join(problems))

    return {
        "IVR_ENV": ivr_env,
        "PRODUCTION": production,
        "SQLALCHEMY_DATABASE_URI": db_url,
        "PUBLIC_BASE_URL": public_base or f"http://127.0.0.1:{env.get('PORT', '5000')}",
        "TWILIO_ACCOUNT_SID": env.get("TWILIO_ACCOUNT_SID", "").strip() or DEV_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": env.get("TWILIO_AUTH_TOKEN", "").strip() or DEV_AUTH_TOKEN,
        # During a token rotation Twilio may still sign with the old token: accepted too, until removed.
        "TWILIO_AUTH_TOKEN_PREVIOUS": env.get("TWILIO_AUTH_TOKEN_PREVIOUS", "").strip() or None,
        "TWILIO_FROM_NUMBER": env.get("TWILIO_FROM_NUMBER", "").strip() or "+15005550006",
        "TWILIO_PAY_CONNECTOR": env.get("TWILIO_PAY_CONNECTOR", "").strip() or "Default",
        "TWILIO_API_BASE": env.get("TWILIO_API_BASE", "").strip().rstrip("/") or None,
        "STRIPE_SECRET_KEY": env.get("STRIPE_SECRET_KEY", "").strip() or None,
        "STRIPE_WEBHOOK_SECRET": env.get("STRIPE_WEBHOOK_SECRET", "").strip()
        or DEV_STRIPE_WEBHOOK_SECRET,
        "STRIPE_API_BASE": env.get("STRIPE_API_BASE", "").strip().rstrip("/") or None,
        "STRIPE_MOTO": _flag(env.get("STRIPE_MOTO")),
        # A line many callers reach through a relay service: every wait for a key is longer from the start.
        "LONGER_KEY_WAITS": _flag(env.get("LONGER_KEY_WAITS")),
        "PAYMENT_GATEWAY": gateway,
        "SMS_SENDER": sms_sender,
        "AGENT_TRANSFER_NUMBER": env.get("AGENT_TRANSFER_NUMBER", "").strip() or None,
        # Hosts agents' status callbacks may be sent to (a host and its subdomains); empty: any
        # public host. Stops an agent key from making this server POST into the co-op's network.
        "AGENT_CALLBACK_HOSTS": tuple(
            h.strip().lower().strip(".") for h in env.get("AGENT_CALLBACK_HOSTS", "").split(",") if h.strip()
        ),
        # TRUSTED_PROXIES: proxies (load balancers) in front of ivr serve that append to
        # X-Forwarded-For; their count tells which address is the client's (the console's login limits).
        **numbers,
        **{name: int(env[name]) for name in AGENT_RATE_LIMITS if env.get(name, "").strip().isdigit()},
        "ORG_NAME": env.get("ORG_NAME", "").strip() or "Your Cooperative",
        "ORG_TIMEZONE": org_timezone,
        # A flat fee the caller accepts by a key before card entry, charged with the payment (0: off).
        "CONVENIENCE_FEE_CENTS": convenience_fee,
        "SECRET_KEY": secret_key or "dev-secret-key-not-secret",
        "ORG_PHONE": env.get("ORG_PHONE", "").strip() or None,  # the office number texts and pages give
        # Texts per second the worker sends; Twilio queues beyond a number's rate (1/s for a long code).
        "SMS_RATE_PER_SECOND": sms_rate,
        # Narrower reminder windows some states require, e.g. "FL=8-20"; off by default.
        "QUIET_HOURS_STATE_WINDOWS": state_windows,
        # The bearer token Prometheus sends to GET /metrics; unset, the endpoint does not exist.
        "METRICS_TOKEN": env.get("METRICS_TOKEN", "").strip() or None,
        "SPEECH_CONFIDENCE_THRESHOLD": speech_confidence,
        "SPEECH_MODEL": speech_model,  # <Gather speechModel>
        # TTS_VOICE_EN / TTS_VOICE_ES: the <Say> voice per language; unset, the catalogue's [voice] default.
        "TTS_VOICES": voices,
    }
