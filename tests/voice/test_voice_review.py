"""What a security and fault review of the call found (issue 14): each case as the caller or the
co-op would notice it, through the real webhooks signed like Twilio."""

import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from helpers import BASE, ZIP, CallActions

from ivr.extensions import db
from ivr.models import Account, CallSession, Payment, VerificationFailure
from ivr.outbox.models import OutboxMessage
from ivr.softphone.interpreter import spoken_text

pytestmark = pytest.mark.usefixtures("stripe_api")


def identify_by_caller_id(call):
    call.start()
    call.silence()
    call.press("1")
    return call.press(ZIP)


def paid_state(app):
    with app.app_context():
        payments = db.session.scalars(sa.select(Payment).order_by(Payment.id)).all()
        balance = db.session.scalar(sa.select(Account.balance_cents))
        receipts = db.session.scalar(
            sa.select(sa.func.count()).select_from(OutboxMessage).where(OutboxMessage.kind == "receipt")
        )
        return payments, balance, receipts


def seq_of(url):
    return int(parse_qs(urlsplit(url).query)["seq"][0])


# --- a second charge --------------------------------------------------------------------------


def test_a_pay_result_posted_after_the_approval_with_the_current_seq_charges_nothing(app, client, make_account, stripe_api):
    make_account()
    call = CallActions(client)
    identify_by_caller_id(call)
    call.press("1")
    call.pay("pm_card_visa")
    approved = call.said()
    assert "Approved:" in approved
    current = seq_of(call.gather_action())  # the confirmation's own seq: not a replay

    call.post(f"{BASE}/twilio/voice/pay?seq={current}", call.last_pay_params)
    assert call.last_status == 200
    assert call.said() == approved  # the saved answer: the confirmation again
    payments, balance, receipts = paid_state(app)
    assert len(stripe_api.intents) == 1 and [p.status for p in payments] == ["succeeded"]
    assert balance == 0 and receipts == 1
    call.press("1")  # the call goes on as before: 1 repeats the confirmation number
    assert "Confirmation number" in call.said()


def test_a_pay_result_before_card_entry_is_answered_with_the_saved_prompt_and_charges_nothing(
    app, client, make_account, stripe_api
):
    make_account()
    call = CallActions(client)
    identify_by_caller_id(call)
    summary = call.said()
    current = seq_of(call.gather_action())
    call.post(f"{BASE}/twilio/voice/pay?seq={current}", call.params(Result="success", PaymentToken="pm_card_visa"))
    assert call.said() == summary
    assert stripe_api.intents == [] and paid_state(app)[0] == []
    call.press("1")  # the summary's menu still works
    assert call.root.xpath("./Pay")


# --- keys are ASCII 0-9 * # only -----------------------------------------------------------------

ARABIC_0143 = "\u0660\u0661\u0664\u0663"  # ٠١٤٣
FULL_WIDTH_0143 = "\uff10\uff11\uff14\uff13"  # ０１４３


@pytest.mark.parametrize("keyed", [ARABIC_0143, FULL_WIDTH_0143, "0\u00b9" + "43"])
def test_non_ascii_digits_for_the_last_four_are_a_wrong_key_for_known_and_unknown_accounts_alike(
    app, client, make_account, keyed
):
    make_account()
    answers = []
    for number in ("12345001", "99999999"):  # an account that exists, and one that does not
        call = CallActions(client, from_="+12025550199")  # a caller ID with no account
        call.start()
        call.silence()
        call.press(number)
        call.press(keyed)
        assert call.last_status == 200 and call.root.xpath("./Hangup") == []
        assert call.root.xpath("./Gather")  # asked again, not hung up on
        answers.append(call.said())
    assert answers[0] == answers[1]
    assert answers[0].startswith("Sorry, that isn't a choice.")
    with app.app_context():  # no identification was attempted, so none failed
        assert db.session.scalar(sa.select(sa.func.count()).select_from(VerificationFailure)) == 0


def test_non_ascii_digits_are_neither_an_account_number_nor_an_amount(app, client, make_account, stripe_api):
    make_account()
    call = CallActions(client, from_="+12025550199")
    call.start()
    call.silence()
    call.press("\u0661\u0662\u0663\u0664\u0665\u0660\u0660\u0661")  # 12345001 in Arabic-Indic digits
    assert "Sorry, that isn't a choice." in call.said()
    assert "Enter the account number" in call.said()

    call = CallActions(client)
    identify_by_caller_id(call)
    call.press("2")
    call.press("\uff15\uff10")  # 50 in full-width digits
    assert "Sorry, that isn't a choice." in call.said()
    assert "Enter the amount in dollars" in call.said()
    call.press("50")
    assert "You entered fifty dollars" in call.said()


# --- malformed signed requests ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/twilio/voice", "/twilio/voice/step?seq=1", "/twilio/voice/pay?seq=1",
                                  "/twilio/voice/status", "/twilio/voice/pay-status",
                                  "/twilio/voice/transfer?t=tr_x", "/twilio/voice/callback?c=1",
                                  "/twilio/voice/callback/status?c=1"])
@pytest.mark.parametrize("call_sid", [None, "", "   ", "CA" + "x" * 400])
def test_signed_voice_requests_without_a_proper_call_sid_are_refused_and_change_nothing(app, client, path, call_sid):
    call = CallActions(client)
    params = call.params(Digits="1")
    if call_sid is None:
        del params["CallSid"]
    else:
        params["CallSid"] = call_sid
    for _ in range(2):
        response = call.post(f"{BASE}{path}", params)
        assert response.status_code == 400
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CallSession)) == 0


@pytest.mark.parametrize("path", ["/twilio/voice/callback", "/twilio/voice/callback/status"])
@pytest.mark.parametrize("callback_id", ["9" * 30, "-1", "1e3", "%D9%A1", ""])
def test_a_malformed_callback_id_is_refused_with_400(app, client, path, callback_id):
    call = CallActions(client)
    response = call.post(f"{BASE}{path}?c={callback_id}", call.params(CallStatus="completed"))
    assert response.status_code == 400
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CallSession)) == 0


# --- a redelivered <Pay> result after the process died --------------------------------------------


def _to_card_entry(client):
    call = CallActions(client)
    identify_by_caller_id(call)
    call.press("1")
    return call, call.pay_action()


def test_redelivery_after_a_crash_once_stripe_had_charged_answers_at_once_with_one_charge(
    app, client, make_account, stripe_api, monkeypatch
):
    from ivr.money import ledger

    make_account()
    call, pay_url = _to_card_entry(client)
    real_settle = ledger.settle
    monkeypatch.setattr(ledger, "settle", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("process died")))
    call.pay("pm_card_visa")  # Stripe charged; the process died before recording it
    assert len(stripe_api.successful_charges) == 1
    monkeypatch.setattr(ledger, "settle", real_settle)

    started = time.monotonic()
    call.post(pay_url, call.last_pay_params)  # Twilio delivers the result again
    elapsed = time.monotonic() - started
    assert "Approved:" in call.said()
    assert elapsed < 3, f"the redelivery took {elapsed:.1f} s; Twilio gives up after 15"
    payments, balance, receipts = paid_state(app)
    assert len(stripe_api.successful_charges) == 1 and [p.status for p in payments] == ["succeeded"]
    assert balance == 0 and receipts == 1


def test_redelivery_after_a_crash_before_stripe_was_reached_charges_once_at_once(
    app, client, make_account, stripe_api, monkeypatch
):
    make_account()
    call, pay_url = _to_card_entry(client)
    gateway = app.extensions["ivr.gateway"]
    real_charge = gateway.charge
    monkeypatch.setattr(gateway, "charge", lambda **k: (_ for _ in ()).throw(RuntimeError("process died")))
    call.pay("pm_card_visa")  # the attempt is on record, Stripe never heard of it
    assert stripe_api.intents == []
    monkeypatch.setattr(gateway, "charge", real_charge)

    started = time.monotonic()
    call.post(pay_url, call.last_pay_params)
    elapsed = time.monotonic() - started
    assert "Approved:" in call.said()
    assert elapsed < 3, f"the redelivery took {elapsed:.1f} s; Twilio gives up after 15"
    payments, balance, receipts = paid_state(app)
    assert len(stripe_api.intents) == 1 and [p.status for p in payments] == ["succeeded"]
    assert balance == 0 and receipts == 1


def test_redelivery_while_stripe_still_runs_the_dead_requests_charge_waits_for_it_briefly(
    app, client, make_account, stripe_api, monkeypatch
):
    """Stripe answers 409 ``idempotency_key_in_use`` while the first request is still running there."""
    from ivr.money import ledger
    from ivr.voice import webhooks as voice

    make_account()
    call, pay_url = _to_card_entry(client)
    real_settle = ledger.settle
    monkeypatch.setattr(ledger, "settle", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("process died")))
    call.pay("pm_card_visa")
    monkeypatch.setattr(ledger, "settle", real_settle)
    key = stripe_api.requests[-1].headers["Idempotency-Key"]
    stripe_api.in_use[key] = 2  # the next two asks find that request still running
    monkeypatch.setattr(voice, "IN_PROGRESS_POLL_SECONDS", 0.2)

    started = time.monotonic()
    call.post(pay_url, call.last_pay_params)
    elapsed = time.monotonic() - started
    assert "Approved:" in call.said()
    assert elapsed < 3
    asked = [r for r in stripe_api.requests if r.headers.get("Idempotency-Key") == key]
    assert len(asked) == 4  # the dead request, two answered "in use", the one that found its result
    payments, balance, receipts = paid_state(app)
    assert len(stripe_api.successful_charges) == 1 and balance == 0 and receipts == 1


def test_a_result_stripe_keeps_reporting_in_use_ends_in_words_within_twilios_limit(
    app, client, make_account, stripe_api, monkeypatch
):
    from ivr.voice import webhooks as voice

    make_account()
    call, pay_url = _to_card_entry(client)
    stripe_api.in_use_always = True
    monkeypatch.setattr(voice, "IN_PROGRESS_WAIT_SECONDS", 1.0)
    monkeypatch.setattr(voice, "IN_PROGRESS_POLL_SECONDS", 0.2)
    started = time.monotonic()
    call.pay("pm_card_visa")
    assert time.monotonic() - started < 3
    assert "can't reach the card processor" in call.said()
    assert re.search(r"press 1", call.said())
    payments, balance, receipts = paid_state(app)
    # Left pending for Stripe's webhook to settle, whatever that request's result turns out to be.
    assert balance == 12345 and receipts == 0 and [p.status for p in payments] == ["pending"]


# --- an unknown account and a wrong last four cost the same ---------------------------------------


def _at_last_four(client, number):
    call = CallActions(client, from_="+12025550199")
    call.start()
    call.silence()
    call.press(number)
    return call


def _statements_of(app, monkeypatch, action):
    """Every statement ``action`` sends to the database, as (verb, table), commits included."""
    from ivr.voice import call_rows

    seen = []

    def note(sql):
        words = re.findall(r"[A-Za-z_]+", sql)
        verb = words[0].upper()
        tables = [w for w in words if w in db.metadata.tables]
        seen.append((verb, tables[0] if tables else None))

    real_execute = call_rows.DriverStatement._execute

    def driver_execute(self, conn, params):
        note(self._for(conn.dialect)[0])
        return real_execute(self, conn, params)

    def on_execute(conn, cursor, statement, parameters, context, executemany):
        note(statement)

    def on_commit(conn):
        seen.append(("COMMIT", None))

    monkeypatch.setattr(call_rows.DriverStatement, "_execute", driver_execute)
    with app.app_context():
        engines = list(db.engines.values())
    for engine in engines:
        sa.event.listen(engine, "before_cursor_execute", on_execute)
        sa.event.listen(engine, "commit", on_commit)
    try:
        action()
    finally:
        for engine in engines:
            sa.event.remove(engine, "before_cursor_execute", on_execute)
            sa.event.remove(engine, "commit", on_commit)
    return [s for s in seen if s[0] not in ("SAVEPOINT", "RELEASE")]


def test_an_unknown_account_costs_the_database_what_a_wrong_last_four_costs(app, client, make_account, monkeypatch):
    make_account()
    unknown = _at_last_four(client, "99999999")
    known = _at_last_four(client, "12345001")
    unknown_work = _statements_of(app, monkeypatch, lambda: unknown.press("1234"))
    wrong_work = _statements_of(app, monkeypatch, lambda: known.press("1234"))
    assert unknown.said() == known.said()
    assert unknown_work == wrong_work
    assert ("INSERT", "verification_failures") in unknown_work  # both paths write
    with app.app_context():
        failures = db.session.execute(sa.select(VerificationFailure.account_id, VerificationFailure.call_sid)).all()
    assert sorted(failures, key=str) == sorted([(None, unknown.call_sid), (1, known.call_sid)], key=str)



def test_two_deliveries_of_one_result_at_once_charge_once_and_say_the_same(app, client, make_account, stripe_api, monkeypatch):
    """The first is still at Stripe when the second arrives: Stripe says 409 to the second, which
    waits for the first's answer instead of charging again or saying "not charged"."""
    import threading

    from ivr.voice import webhooks as voice

    make_account()
    call, pay_url = _to_card_entry(client)
    monkeypatch.setattr(voice, "IN_PROGRESS_POLL_SECONDS", 0.1)
    params = call.params(Result="success", PaymentToken="pm_card_visa", PaymentMethod="credit-card")
    release = threading.Event()
    stripe_api.hold = release
    answers = {}

    def deliver(name):
        answers[name] = CallActions(app.test_client(), call_sid=call.call_sid).post(pay_url, params)

    first = threading.Thread(target=deliver, args=("first",))
    first.start()
    while not stripe_api.in_flight:  # the first delivery is waiting at Stripe
        time.sleep(0.01)
    second = threading.Thread(target=deliver, args=("second",))
    second.start()
    while len(stripe_api.requests) < 1:  # ... and the second has been told "in use"
        time.sleep(0.01)
    release.set()
    first.join(20)
    second.join(20)
    said = [" ".join(spoken_text(say) for say in answers[name].xpath("//Say")) for name in ("first", "second")]
    assert "Approved:" in said[0] and said[0] == said[1]
    payments, balance, receipts = paid_state(app)
    assert len(stripe_api.intents) == 1 and [p.status for p in payments] == ["succeeded"]
    assert balance == 0 and receipts == 1
