"""How calls enter the flow: by an entry point's name, and a callback hears what its account calls for."""

# Fixtures are imported from the reminder tests, so their names reappear as arguments.
# ruff: noqa: F811

import ast
from pathlib import Path

import pytest
import sqlalchemy as sa
from reminder_fixtures import ORG, answer, app_config, clock, fake_twilio, requested_callback  # noqa: F401

from ivr.extensions import db
from ivr.models import Account, CallSession

GOODBYE = "Thank you. Goodbye."
IVR = Path(__file__).resolve().parents[2] / "ivr"


def test_webhooks_start_calls_by_entry_name_not_by_state():
    # Which state a way in begins at is the table's business (flows.ENTRY_POINTS), not a webhook's.
    started = {}
    for path in IVR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name == "start_call":
                entry = node.args[1]
                assert isinstance(entry, ast.Attribute) and ast.unparse(entry.value).endswith("Entry"), (
                    path.name,
                    ast.unparse(node),
                )
                started[entry.attr] = path.relative_to(IVR).as_posix()
    assert started == {
        "SELF_SERVICE": "voice/webhooks.py",
        "TRANSFER": "agents/voice_entry.py",
        "CALLBACK": "reminders/web.py",
    }


def answered_callback(app, client, make_account, fake_twilio, language="en", **changes):
    """A member asked for a callback; ``changes`` happen to the account before they answer."""
    _, call = requested_callback(app, client, make_account, fake_twilio, language=language)
    with app.app_context():
        account = db.session.scalars(sa.select(Account)).one()
        for name, value in changes.items():
            setattr(account, name, value)
        db.session.commit()
    answer(call)
    with app.app_context():
        row = db.session.scalars(sa.select(CallSession)).one()
        return call, row


def test_callback_to_an_owing_account_offers_the_balance(
    app, client, make_account, clock, fake_twilio
):
    call, row = answered_callback(app, client, make_account, fake_twilio)

    assert call.said() == (
        f"Hello, this is {ORG}, about the account ending in 5 0 0 1. "
        "To pay the balance of one hundred twenty-three dollars and forty-five cents, press 1. "
        "Another amount, press 2."
    )
    assert call.root.xpath("./Gather/@numDigits") == ["1"]
    assert call.root.findall("Hangup") == []
    assert (row.state, row.ended_at) == ("CALLBACK_WELCOME", None)


def test_callback_to_an_account_paid_meanwhile_says_nothing_is_due(
    app, client, make_account, clock, fake_twilio
):
    call, row = answered_callback(app, client, make_account, fake_twilio, balance_cents=0)

    assert call.said() == f"Your balance is zero. Nothing is due. {GOODBYE}"
    assert call.root.xpath("./Gather | ./Pay") == []
    assert len(call.root.findall("Hangup")) == 1
    assert row.state == "NOTHING_DUE" and row.ended_at is not None


def test_callback_to_an_account_in_credit_says_the_credit(
    app, client, make_account, clock, fake_twilio
):
    call, row = answered_callback(app, client, make_account, fake_twilio, balance_cents=-500)

    assert call.said() == (
        f"You have a credit of five dollars. Nothing is due. {GOODBYE}"
    )
    assert len(call.root.findall("Hangup")) == 1
    assert row.state == "NOTHING_DUE"


def test_callback_to_an_account_made_office_only_sends_the_member_to_the_office(
    app, client, make_account, clock, fake_twilio
):
    call, row = answered_callback(app, client, make_account, fake_twilio, status="suspended")

    assert call.said() == (
        f"This account can't be paid by phone. Please call the office. {GOODBYE}"
    )
    assert call.root.xpath("./Gather | ./Pay") == []
    assert len(call.root.findall("Hangup")) == 1
    assert row.state == "OFFICE_ONLY" and row.ended_at is not None


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"status": "suspended"}, "Esta cuenta no se puede pagar por teléfono."),
        ({"balance_cents": 0}, "Su saldo es cero. No debe nada."),
    ],
)
def test_callback_endings_are_said_in_the_members_language(
    app, client, make_account, clock, fake_twilio, changes, said
):
    call, row = answered_callback(
        app, client, make_account, fake_twilio, language="es", **changes
    )

    assert call.said().startswith(said)
    assert call.root.xpath("./Say/@language") == ["es-US"]
    assert row.language == "es"
