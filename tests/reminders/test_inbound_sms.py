"""`POST /twilio/sms`: PAY/PAGAR, BAL/SALDO, the STOP family, START, HELP, and unknown numbers."""

# Fixtures are imported from reminder_fixtures, so their names reappear as arguments.
# ruff: noqa: F811

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from reminder_fixtures import MEMBER, ORG, clock, fake_twilio, signed_post, text_in  # noqa: F401

from ivr.extensions import db
from ivr.reminders.models import Callback, SmsOptOut

STRANGER = "+13035550188"


def opted_out(app, phone=MEMBER):
    with app.app_context():
        return db.session.scalar(sa.select(SmsOptOut.opted_out).where(SmsOptOut.phone == phone))


def callbacks(app):
    with app.app_context():
        return list(db.session.scalars(sa.select(Callback).order_by(Callback.id)))


@pytest.mark.parametrize(
    "word", ["STOP", "stop", " Stop ", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"]
)
def test_stop_family_records_the_opt_out_without_a_reply(app, client, make_account, word):
    make_account()
    assert text_in(client, word) == (200, [])
    assert opted_out(app) is True


@pytest.mark.parametrize("word", ["START", "unstop"])
def test_start_records_opting_back_in(app, client, make_account, word):
    make_account()
    text_in(client, "STOP")
    assert text_in(client, word) == (200, [])
    assert opted_out(app) is False


def test_opt_out_from_a_number_not_on_file_is_still_honoured(app, client):
    text_in(client, "STOP", from_=STRANGER)
    assert opted_out(app, STRANGER) is True


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        (
            "HELP",
            "Riverbend Electric Cooperative pay by phone. Call (202) 555-0100 to pay or for help.",
        ),
        (
            "ayuda",
            f"{ORG}, pagos por telefono. Llame al (202) 555-0100 para pagar o pedir ayuda.",
        ),
    ],
)
def test_help_says_who_we_are_and_how_to_reach_the_office(
    app, client, make_account, word, expected
):
    app.config["ORG_PHONE"] = "+12025550100"
    make_account()
    status, (reply,) = text_in(client, word)
    assert status == 200 and reply.startswith(expected)


def test_help_from_a_spanish_members_phone_is_in_spanish(app, client, make_account):
    make_account(language="es")
    _, (reply,) = text_in(client, "HELP")
    assert "pagos por telefono" in reply


@pytest.mark.parametrize(
    ("word", "language", "expected"),
    [
        (
            "BAL",
            "en",
            "Riverbend Electric Cooperative: account ending 5001, balance $123.45, due Dec 5.",
        ),
        (
            "bal",
            "es",
            f"{ORG}: cuenta que termina en 5001, saldo $123.45, vence el 5 dic.",
        ),
        (
            "SALDO",
            "en",
            f"{ORG}: cuenta que termina en 5001, saldo $123.45, vence el 5 dic.",
        ),
    ],
)
def test_balance_reply_in_the_members_language(app, client, make_account, word, language, expected):
    make_account(language=language)
    assert text_in(client, word) == (200, [expected])


def test_balance_lists_every_account_on_the_number(app, client, make_account):
    make_account(account_number="11115001")
    make_account(account_number="22227002", balance_cents=0)
    make_account(account_number="33339003", status="closed")
    _, (reply,) = text_in(client, "BAL")
    assert (
        reply
        == "Riverbend Electric Cooperative: ending 5001: $123.45, due Dec 5; ending 7002: $0.00."
    )


def test_unknown_number_learns_nothing_about_any_account(app, client, make_account, fake_twilio):
    make_account(account_number="12345001")
    english = "Riverbend Electric Cooperative: this number is not on file with us."
    spanish = "Riverbend Electric Cooperative: este numero no esta registrado"
    for word, expected in (("BAL", english), ("PAY", english), ("PAY 5001", english), ("SALDO", spanish),
                           ("hello", english)):
        status, (reply,) = text_in(client, word, from_=STRANGER)
        assert status == 200
        assert reply.startswith(expected), (word, reply)
        assert "5001" not in reply and "$" not in reply
    assert fake_twilio.created_calls == [] and callbacks(app) == []


def test_other_text_gets_the_keyword_menu(app, client, make_account):
    make_account()
    _, (reply,) = text_in(client, "what is this?")
    assert reply.startswith(
        "Riverbend Electric Cooperative: reply PAY to get a call and pay, BAL for your balance"
    )


def test_unsigned_text_is_refused_and_changes_nothing(app, client, make_account):
    make_account()
    params = {"From": MEMBER, "To": "+15005550006", "Body": "STOP", "MessageSid": "SM" + "2" * 32}
    assert signed_post(client, "/twilio/sms", params, signature="forged").status_code == 403
    assert signed_post(client, "/twilio/sms", params, token="wrong-token").status_code == 403
    assert opted_out(app) is None


# --- PAY / PAGAR -------------------------------------------------------------------------------


def test_pay_calls_the_phone_on_file_after_replying(app, client, make_account, clock, fake_twilio):
    make_account()
    status, (reply,) = text_in(client, "PAY")
    assert reply == f"{ORG}: we are calling you now about account ending 5001. Please answer."
    (created,) = fake_twilio.created_calls
    assert created["To"] == MEMBER
    assert created["Url"].startswith("https://ivr.example.coop/twilio/voice/callback?c=")
    (callback,) = callbacks(app)
    assert (callback.source, callback.status) == ("sms", "calling")


def test_pagar_replies_in_spanish(app, client, make_account, clock, fake_twilio):
    make_account()
    _, (reply,) = text_in(client, "pagar")
    assert reply.startswith("Riverbend Electric Cooperative: le estamos llamando ahora")
    assert len(fake_twilio.created_calls) == 1


def test_pay_with_several_accounts_asks_which_then_calls_for_the_one_named(
    app, client, make_account, clock, fake_twilio
):
    make_account(account_number="11115001")
    second = make_account(account_number="22227002")

    assert text_in(client, "PAY") == (
        200,
        ["Riverbend Electric Cooperative: which account? Reply PAY 5001 or PAY 7002."],
    )
    assert text_in(client, "PAGAR")[1] == [
        "Riverbend Electric Cooperative: ¿cual cuenta? Responda PAGAR 5001 o PAGAR 7002."
    ]
    assert fake_twilio.created_calls == []

    _, (reply,) = text_in(client, "pay 7002")
    assert "account ending 7002" in reply
    (callback,) = callbacks(app)
    assert callback.account_id == second and fake_twilio.created_calls[0]["To"] == MEMBER


def test_answering_which_account_with_just_the_digits_works(
    app, client, make_account, clock, fake_twilio
):
    make_account(account_number="11115001")
    second = make_account(account_number="22227002")
    text_in(client, "PAY")
    _, (reply,) = text_in(client, "7002")
    assert "account ending 7002" in reply
    assert [c.account_id for c in callbacks(app)] == [second]


def test_stop_inside_a_sentence_is_not_an_opt_out(app, client, make_account):
    make_account()
    _, (reply,) = text_in(client, "stop by the office later?")
    assert opted_out(app) is None and "reply PAY" in reply


def test_pay_naming_an_account_not_on_this_number_asks_again(
    app, client, make_account, clock, fake_twilio
):
    make_account(account_number="11115001")
    make_account(account_number="22227002")
    make_account(account_number="99998888", phone="+12025550199")
    _, (reply,) = text_in(client, "PAY 8888")
    assert (
        reply.startswith("Riverbend Electric Cooperative: which account?") and "8888" not in reply
    )
    assert fake_twilio.created_calls == []


def test_pay_when_nothing_is_due_places_no_call(app, client, make_account, clock, fake_twilio):
    make_account(balance_cents=0)
    _, (reply,) = text_in(client, "PAY")
    assert reply == "Riverbend Electric Cooperative: nothing is due on account ending 5001."
    assert fake_twilio.created_calls == []


def test_pay_shares_the_limits_with_the_link_page(app, client, make_account, clock, fake_twilio):
    make_account()
    text_in(client, "PAY")
    clock.advance(minutes=3)
    _, (reply,) = text_in(client, "PAY")
    assert reply == f"{ORG}: we called you a moment ago. You can ask for another call in 7 min."
    assert len(fake_twilio.created_calls) == 1
    for _ in range(4):
        clock.advance(minutes=10)
        text_in(client, "PAY")
    assert len(fake_twilio.created_calls) == 5
    clock.advance(minutes=10)
    _, (reply,) = text_in(client, "PAY")
    assert reply.endswith("You can ask for another call after December 4, 2026, 10:00 AM.")
    assert len(fake_twilio.created_calls) == 5


def test_pay_is_not_held_by_quiet_hours(app, client, make_account, clock, fake_twilio):
    make_account()
    clock.set(datetime(2026, 12, 3, 9, 0, tzinfo=UTC))  # 4 am in New York
    text_in(client, "PAY")
    assert len(fake_twilio.created_calls) == 1


def test_keyword_logs_mask_the_number(app, client, make_account, clock, fake_twilio, caplog):
    caplog.set_level("DEBUG")
    make_account(account_number="98765001")
    for word in ("STOP", "START", "BAL", "PAY"):
        text_in(client, word)
    text_in(client, "BAL", from_=STRANGER)
    assert (
        MEMBER not in caplog.text and STRANGER not in caplog.text and "98765001" not in caplog.text
    )


def test_twilio_refusing_the_call_is_not_counted(app, client, make_account, clock, fake_twilio):
    make_account()
    fake_twilio.fail_calls.append((400, 21215, "Geographic permission"))
    text_in(client, "PAY")
    assert [c.status for c in callbacks(app)] == ["error"]
    text_in(client, "PAY")
    assert [c.status for c in callbacks(app)] == ["error", "calling"]
