"""Configuration: production refuses to start without its secrets or with sandbox adapters."""

import pytest
from click.testing import CliRunner

from ivr.cli import main
from ivr.config import PRODUCTION_SECRETS, ConfigError, load_config

FULL_PRODUCTION = {
    "IVR_ENV": "production",
    "DATABASE_URL": "postgres://ivr@db/ivr",
    "PUBLIC_BASE_URL": "https://pay.example.coop/",
    "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
    "TWILIO_AUTH_TOKEN": "token",
    "TWILIO_FROM_NUMBER": "+15005550006",
    "STRIPE_SECRET_KEY": "sk_live_x",
    "STRIPE_WEBHOOK_SECRET": "whsec_x",
    "SECRET_KEY": "x" * 32,
}


def test_production_names_every_missing_secret():
    with pytest.raises(ConfigError) as excinfo:
        load_config({"IVR_ENV": "production"})
    for name in PRODUCTION_SECRETS:
        assert name in str(excinfo.value)


def test_production_refuses_the_sandbox_gateway_and_sms():
    with pytest.raises(ConfigError, match="PAYMENT_GATEWAY=sandbox is refused"):
        load_config({**FULL_PRODUCTION, "PAYMENT_GATEWAY": "sandbox"})
    with pytest.raises(ConfigError, match="SMS_SENDER=sandbox is refused"):
        load_config({**FULL_PRODUCTION, "SMS_SENDER": "sandbox"})


def test_production_with_everything_set_uses_stripe_and_normalises_urls():
    cfg = load_config(FULL_PRODUCTION)
    assert cfg["PAYMENT_GATEWAY"] == "stripe" and cfg["SMS_SENDER"] == "twilio"
    assert cfg["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://ivr@db/ivr"
    assert cfg["PUBLIC_BASE_URL"] == "https://pay.example.coop"


def test_development_defaults_to_sandbox_without_a_stripe_key():
    cfg = load_config({})
    assert cfg["PAYMENT_GATEWAY"] == "sandbox" and cfg["ORG_NAME"] == "Your Cooperative"
    assert cfg["AGENT_TRANSFER_NUMBER"] is None and cfg["ORG_TIMEZONE"] == "America/New_York"
    assert cfg["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///") and "instance" in cfg["SQLALCHEMY_DATABASE_URI"]


def test_serve_refuses_to_start_in_production_and_says_what_is_missing(monkeypatch):
    monkeypatch.setenv("IVR_ENV", "production")
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_live_x")
    result = CliRunner().invoke(main, ["serve", "--port", "0"])
    assert result.exit_code != 0
    assert "TWILIO_AUTH_TOKEN" in result.output and "STRIPE_WEBHOOK_SECRET" in result.output
    assert "sk_live_x" not in result.output


def test_healthz_answers_when_the_database_does(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json["database"] == "up"
    assert client.get("/").status_code == 200


def test_state_quiet_hour_windows_are_parsed_and_bad_ones_refused():
    assert load_config({"QUIET_HOURS_STATE_WINDOWS": "FL=8-20, tx=9-21"})["QUIET_HOURS_STATE_WINDOWS"] == {
        "FL": (8, 20),
        "TX": (9, 21),
    }
    assert load_config({})["QUIET_HOURS_STATE_WINDOWS"] is None
    with pytest.raises(ConfigError, match="QUIET_HOURS_STATE_WINDOWS"):
        load_config({"QUIET_HOURS_STATE_WINDOWS": "FL=20-8"})


def test_production_refuses_sqlite_plain_http_and_a_short_secret_key_naming_each_at_once():
    with pytest.raises(ConfigError) as excinfo:
        load_config(
            {
                **FULL_PRODUCTION,
                "DATABASE_URL": "sqlite:////srv/ivr.sqlite3",
                "PUBLIC_BASE_URL": "http://pay.example.coop",
                "SECRET_KEY": "x" * 31,
            }
        )
    message = str(excinfo.value)
    assert "\n" not in message
    assert "DATABASE_URL is SQLite, which IVR_ENV=production refuses" in message
    assert "PUBLIC_BASE_URL must start with https://" in message
    assert "SECRET_KEY must be at least 32 characters when IVR_ENV=production (it has 31)" in message
    assert "x" * 31 not in message


@pytest.mark.parametrize(
    "setting, refused",
    [
        ({"DATABASE_URL": "sqlite:///instance/ivr.sqlite3"}, "DATABASE_URL is SQLite"),
        ({"PUBLIC_BASE_URL": "http://pay.example.coop"}, "PUBLIC_BASE_URL must start with https://"),
        ({"SECRET_KEY": "s3cret"}, "SECRET_KEY must be at least 32 characters"),
    ],
)
def test_each_production_refusal_alone(setting, refused):
    with pytest.raises(ConfigError, match=refused):
        load_config({**FULL_PRODUCTION, **setting})
    # Development takes the same value.
    assert load_config({key: value for key, value in {**FULL_PRODUCTION, **setting}.items() if key != "IVR_ENV"})


def test_a_missing_variable_is_named_as_missing_not_also_as_wrong():
    with pytest.raises(ConfigError) as excinfo:
        load_config({"IVR_ENV": "production", "STRIPE_SECRET_KEY": "sk_live_x"})
    message = str(excinfo.value)
    assert message.startswith("IVR_ENV=production needs these environment variables: DATABASE_URL, PUBLIC_BASE_URL")
    assert "is SQLite" not in message and "https://" not in message and "at least 32" not in message


def test_keepalive_outlasts_load_balancers_idle_timeouts_by_default_and_is_a_setting():
    assert load_config({})["KEEPALIVE_SECONDS"] == 75  # AWS ALB and nginx keep idle connections 60 s
    assert load_config({"KEEPALIVE_SECONDS": "350"})["KEEPALIVE_SECONDS"] == 350
    for bad in ("0", "-5", "soon", "1.5", "3601"):
        with pytest.raises(ConfigError, match=f"KEEPALIVE_SECONDS must be a whole number from 1 to 3600, not '{bad}'"):
            load_config({"KEEPALIVE_SECONDS": bad})


def test_bad_values_are_named_together_instead_of_failing_later():
    with pytest.raises(ConfigError) as excinfo:
        load_config(
            {
                "MIN_PAYMENT_CENTS": "one dollar",
                "SMS_SENDER": "pigeon",
                "ORG_TIMEZONE": "Eastern",
                "PUBLIC_BASE_URL": "pay.example.coop",
                "DATABASE_URL": "postgresql://ivr:pa55word@db:5432",
                "SMS_RATE_PER_SECOND": "fast",
            }
        )
    message = str(excinfo.value)
    assert "MIN_PAYMENT_CENTS must be a whole number of at least 1, not 'one dollar'" in message
    assert "SMS_SENDER must be 'twilio' or 'sandbox', not 'pigeon'" in message
    assert "ORG_TIMEZONE must be a time zone name like America/Chicago, not 'Eastern'" in message
    assert "PUBLIC_BASE_URL must be an origin like https://pay.example.coop, not 'pay.example.coop'" in message
    assert "SMS_RATE_PER_SECOND must be a number above 0, not 'fast'" in message
    assert "pa55word" not in message


def test_a_database_url_sqlalchemy_cannot_read_is_named_without_quoting_it():
    with pytest.raises(ConfigError) as excinfo:
        load_config({"DATABASE_URL": "ivr:pa55word@db/ivr"})
    assert str(excinfo.value).startswith("DATABASE_URL is not a database URL this service can use")
    assert "pa55word" not in str(excinfo.value)


def test_the_convenience_fee_is_off_by_default_and_a_bad_value_is_one_clear_line(monkeypatch):
    assert load_config({})["CONVENIENCE_FEE_CENTS"] == 0
    assert load_config({"CONVENIENCE_FEE_CENTS": " 250 "})["CONVENIENCE_FEE_CENTS"] == 250
    for bad in ("2.50", "$2.50", "-100", "ten", "10001"):
        with pytest.raises(ConfigError, match="CONVENIENCE_FEE_CENTS must be a whole number of cents"):
            load_config({"CONVENIENCE_FEE_CENTS": bad})
    monkeypatch.setenv("CONVENIENCE_FEE_CENTS", "2.50")
    result = CliRunner().invoke(main, ["payments", "export"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    (line,) = [text for text in result.output.splitlines() if "CONVENIENCE_FEE_CENTS" in text]
    assert "e.g. 250 for $2.50" in line and "'2.50'" in line


def test_the_voices_default_to_the_catalogues_and_a_voice_for_the_wrong_language_is_one_clear_line(monkeypatch):
    assert load_config({})["TTS_VOICES"] == {}  # the catalogue's [voice] defaults: Polly.*-Neural
    chosen = load_config({"TTS_VOICE_EN": "Polly.Matthew-Neural", "TTS_VOICE_ES": "Google.es-US-Neural2-B"})
    assert chosen["TTS_VOICES"] == {"en": "Polly.Matthew-Neural", "es": "Google.es-US-Neural2-B"}
    for name, bad in (("TTS_VOICE_ES", "Polly.Joanna-Neural"), ("TTS_VOICE_EN", "Polly.Lupe-Neural"),
                      ("TTS_VOICE_EN", "Joanna"), ("TTS_VOICE_EN", "Google.es-US-Neural2-A")):
        with pytest.raises(ConfigError, match=f"{name} must be a Twilio voice"):
            load_config({name: bad})
    monkeypatch.setenv("TTS_VOICE_ES", "Polly.Joanna-Neural")
    result = CliRunner().invoke(main, ["payments", "export"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    (line,) = [text for text in result.output.splitlines() if "TTS_VOICE_ES" in text]
    assert "Polly.Lupe-Neural" in line and "'Polly.Joanna-Neural'" in line
