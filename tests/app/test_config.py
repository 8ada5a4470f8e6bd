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
    "SECRET_KEY": "s3cret",
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
