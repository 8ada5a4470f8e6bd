"""Autopay: each new bill is noticed two days before and charged on its due date, once; failures are texted."""

import io
from datetime import date, timedelta
from urllib.parse import parse_qs

import pytest
from later_fixtures import (  # noqa: F401
    DUE,
    NOW,
    account_id,
    balance,
    bills,
    clock,
    payments,
    save_card,
    saved_card,
    texts,
)

from ivr.billing.accounts_csv import import_accounts
from ivr.extensions import db
from ivr.later import autopay, worker
from ivr.models import Account
from ivr.outbox import texts as outbox_texts
from ivr.outbox.sms import SandboxSmsSender

NOTICE_AT = NOW.replace(day=8)  # two days before DUE, 10:00 in New York
CHARGE_AT = NOW.replace(day=10, hour=14)  # DUE at 9:00 in New York
CSV = "account_number,name,phone,balance,due_date,email,language\n12345001,Pat Member,(202) 555-0143,{balance},{due},,{lang}\n"


@pytest.fixture(autouse=True)
def _stripe(stripe_api):
    return stripe_api


def enrol(app, account_id, lang="en", at=NOW):
    with app.app_context():
        autopay.enrol(db.session.get(Account, account_id), words="the terms as heard", language=lang, call_sid="CA1", now=at)
        db.session.commit()


def run(app, now):
    with app.app_context():
        try:
            return worker.run_pass(now)
        finally:
            db.session.remove()


def reimport(app, balance="123.45", due=DUE, lang="en"):
    with app.app_context():
        import_accounts(db.session, io.StringIO(CSV.format(balance=balance, due=due.isoformat(), lang=lang)))


def form(request):
    return {k: v[0] for k, v in parse_qs(request.body if isinstance(request.body, str) else request.body.decode()).items()}


@pytest.mark.parametrize(("lang", "expected"), [
    ("en", ("Riverbend Electric Cooperative: autopay will charge $123.45 to your Visa ending in 4242 on Dec 10 for "
            "account ending 5001. To stop it, call (500) 555-0006 and press 5.")),
    ("es", ("Riverbend Electric Cooperative: el pago automatico cobrara $123.45 a su tarjeta Visa que termina en 4242 el 10 dic "
            "por la cuenta que termina en 5001. Para suspenderlo, llame al (500) 555-0006 y oprima 5.")),
])
def test_the_notice_names_the_amount_and_how_to_stop_two_days_before(app, saved_card, lang, expected):
    enrol(app, saved_card, lang)

    assert run(app, NOTICE_AT - timedelta(days=1)).noticed == 0
    assert run(app, NOTICE_AT).noticed == 1
    assert run(app, NOTICE_AT + timedelta(hours=5)).noticed == 0

    (notice,) = texts(app, "autopay_notice")
    assert notice.body == expected
    assert (notice.to_number, notice.respect_quiet_hours) == ("+12025550143", True)
    (bill,) = bills(app)
    assert (bill.due_date, bill.amount_cents, bill.status, bill.charge_at) == (DUE, 12345, "noticed", CHARGE_AT)


def test_the_notice_waits_for_quiet_hours_to_end(app, saved_card):
    enrol(app, saved_card)
    night = NOTICE_AT.replace(hour=5)  # midnight in New York: the bill's notice day has begun
    run(app, night)
    sender = SandboxSmsSender()

    with app.app_context():
        report = outbox_texts.run_once(db.session, sender, now=night)
    assert (report.held, sender.sent) == (1, [])
    with app.app_context():
        report = outbox_texts.run_once(db.session, sender, now=night.replace(hour=13))  # 8 AM in New York
    assert report.sent == 1


def test_the_bill_is_charged_on_its_due_date_once_and_a_reimport_changes_nothing(app, stripe_api, saved_card):
    enrol(app, saved_card)
    run(app, NOTICE_AT)
    assert run(app, CHARGE_AT - timedelta(minutes=1)).paid == 0
    assert run(app, CHARGE_AT).paid == 1
    reimport(app)  # the billing system has not posted the payment yet: the same balance and due date again
    assert balance(app, saved_card) == 12345
    for later in (CHARGE_AT + timedelta(hours=2), CHARGE_AT + timedelta(days=1)):
        assert run(app, later).total == 0

    (request,) = stripe_api.requests
    sent = form(request)
    assert request.headers["Idempotency-Key"] == f"autopay:{saved_card}:2026-12-10"
    assert (sent["amount"], sent["off_session"], sent["customer"]) == ("12345", "true", "cus_member")
    (payment,) = payments(app)
    assert (payment.channel, payment.status) == ("autopay", "succeeded")
    assert [(b.status, b.payment_id) for b in bills(app)] == [("paid", payment.id)]
    (receipt,) = texts(app, "receipt")
    assert payment.confirmation_number in receipt.body


def test_the_next_bill_is_a_new_bill(app, stripe_api, saved_card):
    enrol(app, saved_card)
    run(app, NOTICE_AT)
    run(app, CHARGE_AT)
    reimport(app, balance="80.00", due=date(2027, 1, 10))

    run(app, NOTICE_AT.replace(year=2027, month=1))
    run(app, CHARGE_AT.replace(year=2027, month=1))

    assert [form(r)["amount"] for r in stripe_api.requests] == ["12345", "8000"]
    assert [(b.due_date.isoformat(), b.status) for b in bills(app)] == [("2026-12-10", "paid"), ("2027-01-10", "paid")]
    assert len(texts(app, "autopay_notice")) == 2


def test_posting_file_shows_autopay_payments_by_channel(app, saved_card):
    from ivr.billing.payments_csv import export_payments

    enrol(app, saved_card)
    run(app, NOTICE_AT)
    run(app, CHARGE_AT)
    out = io.StringIO()
    with app.app_context():
        export_payments(db.session, out)
    header, row = out.getvalue().splitlines()
    assert dict(zip(header.split(","), row.split(","), strict=True))["channel"] == "autopay"


@pytest.mark.parametrize(("payment_method", "code", "reason"), [
    ("pm_card_chargeCustomerFail", "card_declined", "your card was declined."),  # 4000000000000341
    ("pm_card_authenticationRequired", "authentication_required",  # 4000002500003155
     "your bank wants to approve it, which can't be done automatically."),
])
def test_a_failed_autopay_charge_texts_the_member_and_is_not_retried(app, stripe_api, account_id, payment_method, code, reason):
    save_card(app, account_id, payment_method=payment_method)
    enrol(app, account_id)
    run(app, NOTICE_AT)

    run(app, CHARGE_AT)
    for later in (CHARGE_AT + timedelta(hours=1), CHARGE_AT + timedelta(days=1)):
        run(app, later)
    reimport(app)
    run(app, CHARGE_AT + timedelta(days=2))

    assert len(stripe_api.requests) == 1
    assert [(b.status, b.failure_code) for b in bills(app)] == [("failed", code)]
    (text,) = texts(app, "autopay_failed")
    assert text.body == (
        f"Riverbend Electric Cooperative: autopay could not pay $123.45 for account ending 5001: {reason} "
        "Nothing was charged and we won't try again. To pay, call (500) 555-0006."
    )
    assert balance(app, account_id) == 12345


def test_a_failed_autopay_charge_is_texted_in_spanish_to_a_spanish_member(app, account_id):
    save_card(app, account_id, payment_method="pm_card_chargeCustomerFail")
    enrol(app, account_id, lang="es")
    run(app, NOTICE_AT)
    run(app, CHARGE_AT)
    (text,) = texts(app, "autopay_failed")
    assert text.body == (
        "Riverbend Electric Cooperative: el pago automatico no pudo pagar $123.45 de la cuenta que termina en 5001: "
        "su tarjeta fue rechazada. No se cobro nada y no lo intentaremos de nuevo. Para pagar, llame al (500) 555-0006."
    )


def test_a_bill_arriving_less_than_two_days_before_it_is_due_is_not_charged(app, stripe_api, saved_card):
    enrol(app, saved_card)
    reimport(app, due=date(2026, 12, 9))  # imported on the 8th, due the 9th
    run(app, NOTICE_AT)
    run(app, NOTICE_AT.replace(day=9, hour=14))

    assert stripe_api.requests == []
    assert [(b.status, b.failure_code) for b in bills(app)] == [("skipped", "late_bill")]
    (text,) = texts(app, "autopay_late")
    assert text.body == (
        "Riverbend Electric Cooperative: the bill of $123.45 due Dec 9 for account ending 5001 reached us less than "
        "2 days before it is due, so autopay won't pay it. To pay, call (500) 555-0006."
    )
    assert texts(app, "autopay_notice") == []


def test_autopay_stopped_after_the_notice_charges_nothing(app, stripe_api, saved_card):
    enrol(app, saved_card)
    run(app, NOTICE_AT)
    with app.app_context():
        assert autopay.stop(saved_card, by="member", now=NOTICE_AT + timedelta(hours=1)) is True
        db.session.commit()

    run(app, CHARGE_AT)

    assert stripe_api.requests == []
    assert [(b.status, b.failure_code) for b in bills(app)] == [("cancelled", "autopay_stopped")]


def test_a_bill_due_before_autopay_could_give_notice_is_left_alone(app, stripe_api, saved_card):
    enrol(app, saved_card, at=NOW.replace(day=9))  # enrolled the day before the bill is due
    run(app, NOW.replace(day=9, hour=16))
    run(app, CHARGE_AT)
    assert (bills(app), texts(app), stripe_api.requests) == ([], [], [])


def test_never_more_than_the_notice_said_nor_more_than_is_owed(app, stripe_api, saved_card, make_account):
    enrol(app, saved_card)
    run(app, NOTICE_AT)
    reimport(app, balance="150.00")  # a correction after the notice: more than the member was told
    run(app, CHARGE_AT)
    assert form(stripe_api.requests[0])["amount"] == "12345"

    other = make_account(account_number="12345002", balance_cents=9000, due_date=DUE)
    save_card(app, other)
    enrol(app, other)
    run(app, NOTICE_AT)
    with app.app_context():
        db.session.get(Account, other).balance_cents = 2500  # paid part of it by phone after the notice
        db.session.commit()
    run(app, CHARGE_AT)
    assert form(stripe_api.requests[1])["amount"] == "2500"


def test_a_notice_whose_bill_is_paid_before_it_goes_is_dropped(app, saved_card):
    enrol(app, saved_card)
    run(app, NOTICE_AT)
    with app.app_context():
        db.session.get(Account, saved_card).balance_cents = 0
        db.session.commit()
        report = outbox_texts.run_once(db.session, SandboxSmsSender(), now=NOTICE_AT)
    assert report.dropped == 1
    run(app, CHARGE_AT)
    assert [(b.status, b.failure_code) for b in bills(app)] == [("skipped", "nothing_owed")]


def test_without_a_card_on_file_at_notice_time_the_member_is_told_at_once(app, stripe_api, saved_card):
    from ivr.money import saved_cards

    enrol(app, saved_card)
    with app.app_context():
        saved_cards.forget(db.session.get(Account, saved_card), by="member")
    run(app, NOTICE_AT)
    run(app, CHARGE_AT)

    assert [r for r in stripe_api.requests if "payment_intents" in r.url] == []
    assert [(b.status, b.failure_code) for b in bills(app)] == [("failed", "no_card")]
    (text,) = texts(app, "autopay_failed")
    assert "autopay could not pay $123.45 for account ending 5001: there is no card on file." in text.body


def test_two_workers_at_once_queue_one_notice_and_make_one_charge(app, stripe_api, saved_card):
    import threading

    enrol(app, saved_card)

    def together(now):
        start, reports = threading.Barrier(3), []

        def one():
            start.wait()
            reports.append(run(app, now))

        threads = [threading.Thread(target=one) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        return reports

    assert sum(r.noticed for r in together(NOTICE_AT)) == 1
    assert sum(r.paid for r in together(CHARGE_AT)) == 1
    assert len(texts(app, "autopay_notice")) == 1
    assert len(stripe_api.requests) == 1 and len(payments(app)) == 1


def test_notices_are_taken_batch_by_batch_each_bill_once(app, stripe_api, make_account):
    members = [make_account(account_number=f"1234510{n}", balance_cents=5000 + n, due_date=DUE) for n in range(5)]
    for member in members:
        save_card(app, member)
        enrol(app, member)

    with app.app_context():
        assert worker.queue_autopay_notices(NOTICE_AT, batch=2) == 5  # three batches: 2, 2 and 1
        assert worker.queue_autopay_notices(NOTICE_AT, batch=2) == 0
        db.session.remove()

    assert sorted((bill.account_id, bill.amount_cents) for bill in bills(app)) == [
        (member, 5000 + n) for n, member in enumerate(members)]
    assert len(texts(app, "autopay_notice")) == 5
