"""The callback call: answered already identified, voicemail, no answer, channel=callback."""

# Fixtures are imported from reminder_fixtures, so their names reappear as arguments.
# ruff: noqa: F811

import html

import pytest
import sqlalchemy as sa
from helpers import BASE
from lxml import etree
from reminder_fixtures import (  # noqa: F401  (fixtures)
    MEMBER,
    ORG,
    OUR_NUMBER,
    answer,
    app_config,
    call_me_now,
    callback_query,
    clock,
    fake_twilio,
    link,
    requested_callback,
)

from ivr.extensions import db
from ivr.models import Account, CallSession, Payment
from ivr.outbox.models import OutboxMessage
from ivr.reminders.models import Callback


@pytest.fixture
def stripe_and_twilio(stripe_api, fake_twilio):
    """Stripe faked at the HTTP layer, with requests to the loopback Twilio fake let through."""
    stripe_api.rsps.add_passthru(fake_twilio.url)
    return stripe_api


def status(call, call_status, **extra):
    return call.post(
        call.created["StatusCallback"],
        call.params(Direction="outbound-api", CallStatus=call_status, **extra),
    )


def page(client, path) -> str:
    return html.unescape(client.get(path).text)


def callback_row(app) -> Callback:
    with app.app_context():
        return db.session.scalars(sa.select(Callback).order_by(Callback.id.desc())).first()


def test_answered_call_starts_identified_and_pays_on_channel_callback(
    app, client, make_account, clock, fake_twilio, stripe_and_twilio
):
    path, call = requested_callback(app, client, make_account, fake_twilio)

    answer(call)
    assert call.said().startswith(
        f"Hello, this is {ORG}, about the account ending in 5 0 0 1. "
        "To pay the balance of one hundred twenty-three dollars and forty-five cents, press 1."
    )
    call.press("1")
    call.pay("pm_card_visa")
    assert "Approved:" in call.said()

    with app.app_context():
        (payment,) = db.session.scalars(sa.select(Payment)).all()
        assert (payment.channel, payment.status, payment.amount_cents) == (
            "callback",
            "succeeded",
            12345,
        )
        assert db.session.get(Account, payment.account_id).balance_cents == 0
        receipt = db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.kind == "receipt"))
        assert receipt.to_number == MEMBER
    assert stripe_and_twilio.successful_charges[0]["metadata"]["channel"] == "callback"
    assert "You're on the call with us." in page(client, path)
    status(call, "completed")
    assert callback_row(app).status == "completed"
    assert "Your call has ended." in page(client, path)
    assert "Nothing is due right now." in page(client, path)


def test_spanish_member_hears_the_spanish_greeting(app, client, make_account, clock, fake_twilio):
    _, call = requested_callback(app, client, make_account, fake_twilio, language="es")
    answer(call)
    assert call.said().startswith(
        "Hola, le llama Riverbend Electric Cooperative por la cuenta que termina en 5 0 0 1."
    )
    assert call.root.xpath("./Gather/Say/@language") == ["es-US"]


@pytest.mark.parametrize(
    "answered_by", ["machine_end_beep", "machine_end_silence", "machine_start", "fax"]
)
def test_voicemail_gets_a_polite_goodbye_and_nothing_is_charged(
    app, client, make_account, clock, fake_twilio, answered_by
):
    path, call = requested_callback(app, client, make_account, fake_twilio)

    answer(call, answered_by)

    assert call.root.xpath("./Gather") == [] and call.root.xpath("./Pay") == []
    assert len(call.root.findall("Hangup")) == 1
    said = call.said()
    assert "Sorry we missed you" in said
    assert "5 0 0 1" not in said and "dollars" not in said  # a voicemail box may be heard by others
    status(call, "completed", AnsweredBy=answered_by)
    assert callback_row(app).status == "not_reached"
    shown = page(client, path)
    assert "We couldn't reach you." in shown
    assert "You can ask for another call in 10 minutes." in shown
    with app.app_context():
        assert db.session.scalars(sa.select(Payment)).all() == []


@pytest.mark.parametrize("call_status", ["no-answer", "busy", "failed", "canceled"])
def test_no_answer_shows_we_couldnt_reach_you_and_the_member_can_try_again(
    app, client, make_account, clock, fake_twilio, call_status
):
    path, call = requested_callback(app, client, make_account, fake_twilio)
    status(call, "initiated")
    status(call, "ringing")
    assert "We're calling you now" in page(client, path)

    assert status(call, call_status).status_code == 204

    shown = page(client, path)
    assert "We couldn't reach you." in shown
    assert "Call me now" not in shown and "in 10 minutes" in shown
    clock.advance(minutes=10)
    assert "Call me now" in page(client, path)
    assert call_me_now(client, path).status_code == 303
    assert len(fake_twilio.created_calls) == 2
    assert all(c["To"] == MEMBER for c in fake_twilio.created_calls)


def test_unknown_answering_result_is_treated_as_a_person(
    app, client, make_account, clock, fake_twilio
):
    _, call = requested_callback(app, client, make_account, fake_twilio)
    answer(call, "unknown")
    assert "press 1" in call.said() and call.root.xpath("./Gather")


def test_twilio_asking_twice_gets_the_same_answer(app, client, make_account, clock, fake_twilio):
    _, call = requested_callback(app, client, make_account, fake_twilio)
    first_xml = etree.tostring(answer(call))
    again = answer(call)
    assert etree.tostring(again) == first_xml
    call.press("2")
    assert "Enter the amount in dollars" in call.said()


def test_bill_paid_before_the_member_answers_is_said_as_nothing_due(
    app, client, make_account, clock, fake_twilio
):
    _, call = requested_callback(app, client, make_account, fake_twilio)
    with app.app_context():
        db.session.scalars(sa.select(Account)).one().balance_cents = 0
        db.session.commit()
    answer(call)
    assert "Your balance is zero" in call.said() and call.root.xpath("./Pay") == []


def test_unsigned_callback_webhooks_are_refused_and_change_nothing(
    app, client, make_account, clock, fake_twilio
):
    path, call = requested_callback(app, client, make_account, fake_twilio)
    params = call.params(Direction="outbound-api", AnsweredBy="human")
    assert call.post(call.created["Url"], params, signature="forged").status_code == 403
    assert (
        call.post(
            call.created["StatusCallback"], call.params(CallStatus="no-answer"), signature=""
        ).status_code
        == 403
    )
    assert callback_row(app).status == "calling"
    with app.app_context():
        assert db.session.scalars(sa.select(CallSession)).all() == []


def test_a_call_to_another_number_is_not_put_through(app, client, make_account, clock, fake_twilio):
    _, call = requested_callback(app, client, make_account, fake_twilio)
    call.to = "+12025550199"
    answer(call)
    assert call.root.xpath("./Gather") == [] and len(call.root.findall("Hangup")) == 1
    with app.app_context():
        assert db.session.scalars(sa.select(CallSession)).all() == []


def test_status_callback_closes_the_calls_session(app, client, make_account, clock, fake_twilio):
    _, call = requested_callback(app, client, make_account, fake_twilio)
    answer(call)
    status(call, "completed")
    with app.app_context():
        session = db.session.scalars(sa.select(CallSession)).one()
        assert session.call_status == "completed" and session.ended_at is not None
        assert session.channel == "callback"


def test_every_url_given_to_twilio_is_under_the_public_base(
    app, client, make_account, clock, fake_twilio
):
    _, call = requested_callback(app, client, make_account, fake_twilio)
    assert call.created["Url"].startswith(BASE + "/twilio/")
    assert call.created["StatusCallback"].startswith(BASE + "/twilio/")
    answer(call)
    urls = call.root.xpath("//@action | //Redirect/text()")
    assert urls and all(u.startswith(BASE + "/twilio/") for u in urls)
