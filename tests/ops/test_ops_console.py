"""/ops as staff use it: who may open it, Today's figures, payment search, a payment's story, CSV, actions."""

import csv
import io
import re

import pytest
import sqlalchemy as sa
from ops_fixtures import DAY, cells, seed_day, staff, token_of

from ivr.agents.models import AuditEntry
from ivr.extensions import db
from ivr.models import Account
from ivr.money.charge import charge_token
from ivr.outbox.models import OutboxMessage


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def day(app):
    seed_day(app)
    return DAY.isoformat()


# --- roles ------------------------------------------------------------------------------------------


def test_signed_out_visitor_gets_the_sign_in_form(client):
    page = client.get("/ops")
    assert page.status_code == 200 and "Sign in" in text(page) and 'value="/ops"' in text(page)


def test_an_agent_is_refused_every_ops_page(app, client, day):
    staff(app, client, "agent")
    for path in ("/ops", "/ops/payments", "/ops/payments/AB12CD34", "/ops/calls", "/ops/messages"):
        assert client.get(path).status_code == 403, path
    assert client.get("/agent").status_code == 200  # their own console still works


def test_a_supervisor_reads_but_cannot_refund_or_resend(app, client, day):
    staff(app, client, "supervisor")
    assert client.get(f"/ops?date={day}").status_code == 200
    token = token_of(client, "/ops/payments/AB12CD34")
    page = text(client.get("/ops/payments/AB12CD34"))
    assert 'id="refund"' not in page and 'id="resend"' not in page
    assert client.post("/ops/payments/AB12CD34/refund", data={"csrf_token": token}).status_code == 403
    assert client.post("/ops/payments/AB12CD34/resend-receipt", data={"csrf_token": token}).status_code == 403
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 4


def test_an_admin_resends_a_receipt_and_it_is_audited(app, client, day):
    staff(app, client, "admin", "Morgan")
    token = token_of(client, "/ops/payments/AB12CD34")
    done = client.post("/ops/payments/AB12CD34/resend-receipt", data={"csrf_token": token})
    assert done.status_code == 303
    assert "The receipt is queued to go again." in text(client.get(done.headers["Location"]))
    with app.app_context():
        copies = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "receipt")
                                    .order_by(OutboxMessage.id)).all()
        assert [m.status for m in copies] == ["sent", "failed", "queued", "queued"]
        assert copies[-1].dedupe_key != copies[0].dedupe_key and copies[-1].payment_id == copies[0].payment_id
        entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "ops.resend_receipt")).one()
        assert (entry.agent_name, entry.account, entry.subject) == ("Morgan", "…5001", "AB12CD34")


def test_an_admin_refunds_part_of_a_payment_once_however_often_the_form_is_sent(app, client, stripe_api,
                                                                               make_account):
    account_id = make_account()
    with app.app_context():
        paid = charge_token(db.session.get(Account, account_id), 5000, "CAops:1", "pm_card_visa", channel="ivr",
                            call_sid=None, language="en", caller="+12025550143")
        db.session.commit()
        confirmation = paid.payment.confirmation_number
    staff(app, client, "admin", "Morgan")
    page = text(client.get(f"/ops/payments/{confirmation}"))
    token = token_of(client, f"/ops/payments/{confirmation}")
    number = re.search(r'name="request_number" value="(\d+)"', page).group(1)
    form = {"csrf_token": token, "amount": "20.00", "request_number": number}
    first = client.post(f"/ops/payments/{confirmation}/refund", data=form)
    again = client.post(f"/ops/payments/{confirmation}/refund", data=form)  # a double click
    assert first.status_code == again.status_code == 303
    assert "Refunded: Stripe accepted the refund." in text(client.get(first.headers["Location"]))
    assert [r["amount"] for r in stripe_api.refunds] == [2000]
    shown = text(client.get(f"/ops/payments/{confirmation}"))
    assert "$20.00 refunded; $30.00 remains." in shown
    with app.app_context():
        entries = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "ops.refund")).all()
        assert [(e.agent_name, e.outcome, e.subject) for e in entries] == [("Morgan", "refunded", confirmation)] * 2


def test_a_payment_with_a_convenience_fee_shows_it_and_an_admin_refunds_all_that_was_charged(app, client, stripe_api,
                                                                                              make_account):
    account_id = make_account()
    with app.app_context():
        paid = charge_token(db.session.get(Account, account_id), 5000, "CAops:1", "pm_card_visa", channel="ivr",
                            call_sid=None, language="en", caller="+12025550143", fee_cents=250)
        db.session.commit()
        confirmation = paid.payment.confirmation_number
    staff(app, client, "admin", "Morgan")
    page = text(client.get(f"/ops/payments/{confirmation}"))
    assert "$2.50 ($52.50 charged)" in page and "$0.00 refunded; $52.50 remains." in page
    token = token_of(client, f"/ops/payments/{confirmation}")
    too_much = client.post(f"/ops/payments/{confirmation}/refund", data={"csrf_token": token, "amount": "52.51"})
    assert too_much.status_code == 400
    number = re.search(r'name="request_number" value="(\d+)"', page).group(1)
    done = client.post(f"/ops/payments/{confirmation}/refund",
                       data={"csrf_token": token, "amount": "52.50", "request_number": number})
    assert done.status_code == 303 and [r["amount"] for r in stripe_api.refunds] == [5250]
    assert "$52.50 refunded; $0.00 remains." in text(client.get(f"/ops/payments/{confirmation}"))
    with app.app_context():
        assert db.session.get(Account, account_id).balance_cents == 12345  # the bill's 50.00 is owed again


def test_a_refund_of_more_than_remains_is_refused_in_words(app, client, day):
    staff(app, client, "admin")
    token = token_of(client, "/ops/payments/AB12CD34")
    response = client.post("/ops/payments/AB12CD34/refund", data={"csrf_token": token, "amount": "99999.00"})
    assert response.status_code == 400
    assert text(response) == "amount: more than zero and no more than what remains"


def test_a_supervisor_retries_a_failed_message_and_it_is_audited(app, client, day):
    staff(app, client, "supervisor", "Sam")
    with app.app_context():
        failed = db.session.scalar(sa.select(OutboxMessage.id).where(OutboxMessage.kind == "reminder"))
    token = token_of(client, "/ops/messages")
    assert client.post(f"/ops/messages/{failed}/retry", data={"csrf_token": token}).status_code == 303
    with app.app_context():
        assert db.session.get(OutboxMessage, failed).status == "queued"
        entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "ops.retry_message")).one()
        assert (entry.agent_name, entry.account) == ("Sam", "…9876")
    assert client.post(f"/ops/messages/{failed}/retry", data={"csrf_token": token}).status_code == 409


# --- CSRF ---------------------------------------------------------------------------------------------


def test_ops_and_agent_posts_without_the_token_are_refused(app, client, day):
    staff(app, client, "admin")
    with app.app_context():
        failed = db.session.scalar(sa.select(OutboxMessage.id).where(OutboxMessage.kind == "reminder"))
    assert client.post(f"/ops/messages/{failed}/retry").status_code == 403
    assert client.post("/ops/payments/AB12CD34/resend-receipt", data={"csrf_token": "forged"}).status_code == 403
    assert client.post("/agent/logout").status_code == 403
    with app.app_context():
        assert db.session.get(OutboxMessage, failed).status == "failed"


# --- Today ----------------------------------------------------------------------------------------------


def test_today_shows_the_days_money_declines_receipts_and_funnel(app, client, day):
    staff(app, client, "supervisor")
    html = text(client.get(f"/ops?date={day}"))
    assert cells(html, "by-channel") == [["agent", "1", "$1,048.75"], ["callback", "1", "$48.75"],
                                         ["ivr", "1", "$100.00"]]
    assert "$1,197.50" in html  # dollars taken that day; the day before's $7.77 is not in it
    assert sorted(cells(html, "declines")) == [["card_declined", "1"], ["insufficient_funds", "1"]]
    assert cells(html, "reversals") == [["Refunded", "1", "$25.00"], ["Disputed", "0", "$0.00"]]
    assert cells(html, "receipts") == [["Sent", "1"], ["Failed", "1"], ["Held", "1"]]
    assert cells(html, "funnel") == [["Calls", "5"], ["Identified", "4"], ["Heard the balance", "3"],
                                     ["Reached card entry", "2"], ["Paid", "1"],
                                     ["Ended paid or informed without an agent", "3"]]
    assert sorted(cells(html, "hang-ups")) == [["Entering the account number", "1"], ["Hung up entering the card", "1"]]
    assert 'id="containment">60%<' in html
    assert html.count("<svg") == 4


def test_a_reversal_counts_on_the_day_it_happened_not_the_payments_day(app, client, day):
    staff(app, client, "supervisor")
    next_day = text(client.get("/ops?date=2026-12-03"))
    assert cells(next_day, "reversals") == [["Refunded", "0", "$0.00"], ["Disputed", "1", "$100.00"]]


# --- Payments -------------------------------------------------------------------------------------------


def confirmations(response) -> list[str]:
    return [row[1] for row in cells(text(response), "payments") if len(row) > 1]


@pytest.mark.parametrize(
    "query, expected",
    [
        (f"date={DAY}", ["QQ11RR22", "–", "ZX98YW76", "AB12CD34", "–"]),  # newest first
        (f"date={DAY}&status=declined", ["–", "–"]),
        (f"date={DAY}&channel=callback", ["ZX98YW76"]),
        (f"date={DAY}&last4=9876", ["–", "ZX98YW76"]),
        ("confirmation=old00001", ["OLD00001"]),
        (f"from=2026-12-01&to={DAY}&status=succeeded&channel=ivr", ["AB12CD34", "OLD00001"]),
    ],
)
def test_payment_search_filters(app, client, day, query, expected):
    staff(app, client, "supervisor")
    assert confirmations(client.get(f"/ops/payments?{query}")) == expected


def test_payments_by_text_show_under_their_own_channel(app, client, stripe_api, make_account):
    from ivr.ops import figures

    with app.app_context():
        account = db.session.get(Account, make_account())
        paid = charge_token(account, 5000, "sms:1", "pm_card_visa", channel="sms", call_sid=None, language="en",
                            caller="+12025550143").payment
        db.session.commit()
        confirmation, today = paid.confirmation_number, figures.today().isoformat()
    staff(app, client, "supervisor")

    assert cells(text(client.get(f"/ops?date={today}")), "by-channel") == [["sms", "1", "$50.00"]]
    found = client.get(f"/ops/payments?date={today}&channel=sms")
    assert "<option selected>sms</option>" in text(found) and confirmations(found) == [confirmation]
    assert [row[3] for row in cells(text(found), "payments")] == ["sms"]
    assert confirmations(client.get(f"/ops/payments?date={today}&channel=ivr")) == []


def test_a_payments_page_tells_its_whole_story(app, client, day):
    staff(app, client, "supervisor")
    html = text(client.get("/ops/payments/AB12CD34"))
    assert [row[1:3] for row in cells(html, "attempts")] == [["declined", "card_declined"], ["succeeded", ""]]
    assert "pi_one" in html and "…5001" in html and "12345001" not in html
    assert "Entering the account number" in html
    assert "Dec 2, 2026, 10:00 AM" in html and "2026-12-02" not in html  # local time, for people
    assert html.index("Card declined") < html.index("Heard the confirmation") and "CARD_DECLINED" not in html
    assert cells(html, "deliveries")[0][1:3] == ["…0143", "sent"]
    assert client.get("/ops/payments/NOPE0000").status_code == 404


def test_every_list_downloads_as_csv(app, client, day):
    staff(app, client, "supervisor")
    by_accept = client.get(f"/ops/payments?date={day}", headers={"Accept": "text/csv"})
    assert by_accept.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(text(by_accept))))
    assert [r["confirmation_number"] for r in rows if r["status"] == "succeeded"] == ["QQ11RR22", "ZX98YW76",
                                                                                        "AB12CD34"]
    assert {r["account"] for r in rows} == {"…5001", "…9876"} and rows[0]["amount"] == "1048.75"
    calls = list(csv.DictReader(io.StringIO(text(client.get(f"/ops/calls?date={day}&format=csv")))))
    assert len(calls) == 5 and calls[-1]["path"].startswith("ENTER_ACCOUNT > SUMMARY > CARD_ENTRY")
    assert {c["outcome"] for c in calls} >= {"paid", "to an agent"}
    messages = list(csv.DictReader(io.StringIO(text(client.get("/ops/messages?format=csv")))))
    assert sorted(m["error_code"] for m in messages if m["status"] == "failed") == ["21610", "30006"]
