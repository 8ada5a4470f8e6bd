"""/ops shows scheduled payments and autopay (pages and CSV); supervisors cancel and stop for a member, audited."""

import csv
import io
import re
from datetime import date, timedelta

import sqlalchemy as sa
from later_fixtures import NOW, account_id, bills, clock, enrollments, saved_card, scheduled  # noqa: F401

from ivr.agents.keys import create_agent
from ivr.agents.models import AuditEntry
from ivr.extensions import db
from ivr.later import autopay, scheduling
from ivr.later.models import AutopayBill
from ivr.models import Account


def sign_in(app, client, role):
    with app.app_context():
        _agent, key = create_agent(role.title(), role)
        db.session.commit()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/ops").get_data(as_text=True)).group(1)
    assert client.post("/agent/login", data={"csrf_token": token, "name": role.title(), "key": key,
                                             "next": "/ops"}).status_code == 303
    return client


def token_of(client, path):
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def seed(app, account_id):
    """Two scheduled payments (one cancellable, one not) and an enrolment with a noticed bill."""
    with app.app_context():
        account = db.session.get(Account, account_id)
        soon = scheduling.schedule(account, amount_cents=2000, pay_on=date(2026, 12, 2), created_key="CA1:5",
                                   call_sid="CA1", language="en", now=NOW)
        later = scheduling.schedule(account, amount_cents=5000, pay_on=date(2026, 12, 9), created_key="CA1:9",
                                    call_sid="CA1", language="es", now=NOW)
        enrollment = autopay.enrol(account, words="With autopay, we charge your Visa ending in 4 2 4 2 ...",
                                   language="en", call_sid="CA2", now=NOW)
        db.session.add(AutopayBill(account_id=account_id, due_date=date(2026, 12, 10), enrollment_id=enrollment.id,
                                   amount_cents=12345, status="noticed", charge_at=NOW + timedelta(days=9),
                                   next_attempt_at=NOW + timedelta(days=9), created_at=NOW))
        db.session.commit()
        return soon.id, later.id, enrollment.id


def test_supervisors_see_scheduled_payments_and_cancel_one_for_the_member(app, client, clock, saved_card):
    soon, later, _ = seed(app, saved_card)
    sign_in(app, client, "supervisor")

    page = client.get("/ops/scheduled").get_data(as_text=True)
    assert "$50.00" in page and "$20.00" in page and "visa …4242 (card on file)" in page
    assert page.count('class="status scheduled"') == 2
    assert f'/ops/scheduled/{later}/cancel' in page and f'/ops/scheduled/{soon}/cancel' not in page  # within 24 hours

    token = token_of(client, "/ops/scheduled")
    assert client.post(f"/ops/scheduled/{later}/cancel", data={"csrf_token": token}).status_code == 303
    refused = client.post(f"/ops/scheduled/{soon}/cancel", data={"csrf_token": token})
    assert refused.status_code == 409 and "less than 24 hours" in refused.get_data(as_text=True)

    assert [(r.id, r.status, r.cancelled_by) for r in scheduled(app)] == [
        (soon, "scheduled", None), (later, "cancelled", "staff:Supervisor")]
    with app.app_context():
        trail = db.session.scalars(sa.select(AuditEntry.outcome).where(AuditEntry.action == "ops.cancel_scheduled")
                                   .order_by(AuditEntry.id)).all()
    assert trail == ["cancelled", "too_late"]


def test_the_scheduled_list_downloads_as_csv_with_masked_accounts(app, client, clock, saved_card):
    seed(app, saved_card)
    sign_in(app, client, "supervisor")

    response = client.get("/ops/scheduled", headers={"Accept": "text/csv"})

    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["pay_on"], r["account"], r["amount"], r["status"]) for r in rows] == [
        ("2026-12-09", "…5001", "50.00", "scheduled"), ("2026-12-02", "…5001", "20.00", "scheduled")]
    assert "12345001" not in response.get_data(as_text=True)


def test_autopay_enrolments_and_bills_are_shown_and_autopay_is_stopped_for_a_member(app, client, clock, saved_card):
    _, _, enrollment = seed(app, saved_card)
    sign_in(app, client, "supervisor")

    page = client.get("/ops/autopay").get_data(as_text=True)
    assert "2026-12-10" in page and "$123.45" in page and 'class="status noticed"' in page
    consent = list(csv.DictReader(io.StringIO(client.get("/ops/autopay?format=csv").get_data(as_text=True))))
    assert [(r["account"], r["active"], r["consent_words"]) for r in consent] == [
        ("…5001", "yes", "With autopay, we charge your Visa ending in 4 2 4 2 ...")]
    bill_rows = list(csv.DictReader(io.StringIO(client.get("/ops/autopay/bills?format=csv").get_data(as_text=True))))
    assert [(r["due_date"], r["amount"], r["status"]) for r in bill_rows] == [("2026-12-10", "123.45", "noticed")]

    token = token_of(client, "/ops/autopay")
    assert client.post(f"/ops/autopay/{enrollment}/stop", data={"csrf_token": token}).status_code == 303
    assert [(e.active, e.cancelled_by) for e in enrollments(app)] == [(False, "staff:Supervisor")]


def test_agents_cannot_open_these_pages_and_a_forged_post_changes_nothing(app, client, clock, saved_card):
    _, later, enrollment = seed(app, saved_card)
    agent = app.test_client()
    sign_in(app, agent, "agent")
    for path in ("/ops/scheduled", "/ops/autopay", "/ops/autopay/bills?format=csv"):
        assert agent.get(path).status_code == 403
    token = token_of(agent, "/agent")
    assert agent.post(f"/ops/scheduled/{later}/cancel", data={"csrf_token": token}).status_code == 403
    sign_in(app, client, "supervisor")
    assert client.post(f"/ops/scheduled/{later}/cancel", data={"csrf_token": "forged"}).status_code == 403
    assert client.post(f"/ops/autopay/{enrollment}/stop").status_code == 403
    token = token_of(client, "/ops/scheduled")
    for nonsense in ("99999", "9" * 30, "-1", "x"):  # never a row: 404, never an error
        assert client.post(f"/ops/scheduled/{nonsense}/cancel", data={"csrf_token": token}).status_code == 404
        assert client.post(f"/ops/autopay/{nonsense}/stop", data={"csrf_token": token}).status_code == 404
    assert [r.status for r in scheduled(app)] == ["scheduled", "scheduled"]
    assert [e.active for e in enrollments(app)] == [True]
    assert [b.status for b in bills(app)] == ["noticed"]


def test_payments_made_later_are_found_by_channel(app, client, clock, saved_card):
    sign_in(app, client, "supervisor")
    page = client.get("/ops/payments").get_data(as_text=True)
    assert "<option>scheduled</option>" in page and "<option>autopay</option>" in page
