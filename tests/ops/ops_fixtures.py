"""Staff of each role, signed in through the /agent sign-in, and one made-up day of the co-op's line."""

import re
from datetime import UTC, date, datetime, timedelta

import lxml.html

from ivr.agents.keys import create_agent
from ivr.extensions import db
from ivr.models import Account, CallSession, Payment
from ivr.money.models import MoneyMovement
from ivr.outbox.models import OutboxMessage

DAY = date(2026, 12, 2)  # a Wednesday; New York is UTC-5
AT = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)  # 10:00 AM in New York


def staff(app, client, role: str, name: str | None = None):
    """Create a staff member of ``role`` and sign them in on ``client``; returns the client."""
    name = name or role.title()
    with app.app_context():
        _agent, key = create_agent(name, role)
        db.session.commit()
    page = client.get("/ops").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    signed = client.post("/agent/login", data={"csrf_token": token, "name": name, "key": key, "next": "/ops"})
    assert signed.status_code == 303, signed.status_code
    return client


def token_of(client, path: str) -> str:
    """The CSRF token on a page the signed-in client opens."""
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def cells(html: str, table_id: str) -> list[list[str]]:
    """The text of each row's cells in the table with ``table_id``."""
    table = lxml.html.fromstring(html).get_element_by_id(table_id)
    return [[c.text_content().strip() for c in row.xpath("./td|./th")] for row in table.xpath(".//tbody/tr")]


def _payment(account, **fields):
    values = {"attempt_key": f"k{fields.get('confirmation_number') or id(fields)}:{fields.get('status')}",
              "account_id": account.id, "channel": "ivr", "created_at": AT, "language": "en"}
    values.update(fields)
    if values.get("status") in ("succeeded", "refunded", "disputed") and "paid_at" not in values:
        values["paid_at"] = values["created_at"] + timedelta(seconds=20)
    payment = Payment(**values)
    db.session.add(payment)
    return payment


def _call(sid, state, furthest, path, *, account=None, minutes=0, channel="ivr"):
    start = AT - timedelta(minutes=5) + timedelta(minutes=minutes)
    db.session.add(CallSession(
        call_sid=sid, from_number="+12025550143", to_number="+15005550006", channel=channel, state=state,
        account_id=account.id if account else None, furthest=furthest, path=path, created_at=start,
        ended_at=start + timedelta(seconds=95), call_status="completed",
    ))


def seed_day(app):
    """Payments, declines, calls and receipts of DAY (and one payment the day before)."""
    with app.app_context():
        a = Account(account_number="12345001", name="Pat Member", phone="+12025550143", balance_cents=0)
        b = Account(account_number="12349876", name="Lee Member", phone="+12025550188", balance_cents=0)
        db.session.add_all([a, b])
        db.session.flush()
        _payment(a, status="declined", decline_code="card_declined", amount_cents=10000, call_sid="CA1",
                 attempt_key="CA1:1", created_at=AT - timedelta(minutes=1))
        p1 = _payment(a, status="succeeded", amount_cents=10000, call_sid="CA1", attempt_key="CA1:2",
                      confirmation_number="AB12CD34", stripe_payment_intent="pi_one", card_brand="visa",
                      card_last4="4242", receipt_to="+12025550143")
        p2 = _payment(b, status="succeeded", amount_cents=4875, channel="callback", call_sid="CA9",
                      attempt_key="CA9:1", confirmation_number="ZX98YW76", stripe_payment_intent="pi_two")
        _payment(b, status="declined", decline_code="insufficient_funds", amount_cents=3000, call_sid="CA2",
                 attempt_key="CA2:1")
        p4 = _payment(a, status="succeeded", amount_cents=104875, channel="agent", attempt_key="ap_1",
                      confirmation_number="QQ11RR22", refunded_cents=2500, stripe_payment_intent="pi_four",
                      created_at=AT + timedelta(hours=3))
        _payment(a, status="succeeded", amount_cents=777, attempt_key="old", confirmation_number="OLD00001",
                 created_at=AT - timedelta(days=1))
        db.session.flush()
        # Reversals count on the day they happen: one today ($25.00 of QQ11RR22), one the next day.
        db.session.add_all([
            MoneyMovement(entry_id="re_today", type="refund", amount_cents=-2500, payment_id=p4.id,
                          occurred_at=AT + timedelta(hours=4)),
            MoneyMovement(entry_id="dp_tomorrow", type="dispute", amount_cents=-10000, payment_id=p1.id,
                          occurred_at=AT + timedelta(days=1)),
        ])
        _call("CA1", "AFTER_PAYMENT", "paid", ["ENTER_ACCOUNT", "SUMMARY", "CARD_ENTRY", "CARD_DECLINED",
                                               "CARD_ENTRY", "CONFIRMATION", "AFTER_PAYMENT"], account=a)
        _call("CA2", "HUNG_UP", "card_entry", ["ENTER_ACCOUNT", "SUMMARY", "CARD_ENTRY", "HUNG_UP"], account=b,
              minutes=1)
        _call("CA3", "GOODBYE", "heard_balance", ["ENTER_ACCOUNT", "SUMMARY", "GOODBYE"], account=a, minutes=2)
        _call("CA4", "AGENT", "identified", ["ENTER_ACCOUNT", "AGENT"], account=b, minutes=3)
        _call("CA5", "ENTER_ACCOUNT", None, ["ENTER_ACCOUNT"], minutes=4)
        for payment, status, error in ((p1, "sent", None), (p2, "failed", 30006), (p4, "queued", None)):
            db.session.add(OutboxMessage(
                dedupe_key=f"receipt:{payment.id}", kind="receipt", to_number="+12025550143", account_id=a.id,
                payment_id=payment.id, body="Receipt", status=status, error_code=error, created_at=AT,
            ))
        db.session.add(OutboxMessage(dedupe_key="reminder:1", kind="reminder", to_number="+12025550188",
                                     account_id=b.id, body="Your bill", status="failed", error_code=21610,
                                     created_at=AT))
        db.session.commit()
