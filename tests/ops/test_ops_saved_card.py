"""/ops shows a payment's account's card on file with its consent; an admin forgets it (detached, audited)."""

from datetime import UTC, datetime

import lxml.html
import pytest
import sqlalchemy as sa
from ops_fixtures import seed_day, staff, token_of

from ivr.agents.models import AuditEntry
from ivr.extensions import db
from ivr.models import Account, Payment
from ivr.money.models import SavedCard

WORDS = "¿Quiere pagar más rápido la próxima vez? Para guardar esta tarjeta para la próxima vez, oprima 1."


@pytest.fixture
def day(app):
    seed_day(app)
    with app.app_context():
        account = db.session.scalar(sa.select(Account).where(Account.account_number == "12345001"))
        paid = db.session.scalar(sa.select(Payment).where(Payment.confirmation_number == "AB12CD34"))
        db.session.add(SavedCard(account_id=account.id, stripe_customer="cus_NffrFeUfNV2Hib",
                                 stripe_payment_method="pm_1Q0PsIJvEtkwdCNYMSaVuRz6", card_brand="visa",
                                 card_last4="4242", saved_at=datetime(2026, 12, 2, 15, 1, tzinfo=UTC),
                                 consent_channel="ivr", consent_call_sid="CA1", consent_payment_id=paid.id,
                                 consent_language="es", consent_words=WORDS))
        db.session.commit()


def page(client, confirmation="AB12CD34"):
    return lxml.html.fromstring(client.get(f"/ops/payments/{confirmation}").get_data(as_text=True))


def cards(app):
    with app.app_context():
        return db.session.scalars(sa.select(SavedCard)).all()


def test_a_supervisor_sees_the_card_on_file_and_what_the_member_agreed_to_but_cannot_forget_it(app, client, day,
                                                                                             stripe_api):
    staff(app, client, "supervisor")
    html = page(client)

    shown = html.get_element_by_id("card-on-file").text_content()
    assert shown == "Visa ending 4242, saved Dec 2, 2026, 10:01 AM (ivr, after this payment)."  # New York time
    consent = html.get_element_by_id("consent")
    assert (consent.text_content(), consent.get("lang")) == (WORDS, "es")
    assert html.xpath('//*[@id="forget-card"]') == []
    token = token_of(client, "/ops/payments/AB12CD34")
    assert client.post("/ops/payments/AB12CD34/forget-card", data={"csrf_token": token}).status_code == 403
    assert len(cards(app)) == 1 and stripe_api.detached == []


def test_another_payment_of_the_account_shows_the_same_card_and_other_accounts_none(app, client, day):
    staff(app, client, "supervisor")
    assert page(client, "QQ11RR22").get_element_by_id("card-on-file").text_content().startswith("Visa ending 4242")
    assert page(client, "ZX98YW76").get_element_by_id("card-on-file").text_content() == "None."


def test_an_admin_forgets_the_card_once_it_is_detached_at_stripe_and_audited(app, client, day, stripe_api):
    staff(app, client, "admin", "Morgan")
    token = token_of(client, "/ops/payments/AB12CD34")

    done = client.post("/ops/payments/AB12CD34/forget-card", data={"csrf_token": token})
    again = client.post("/ops/payments/AB12CD34/forget-card", data={"csrf_token": token})  # a double click

    assert done.status_code == 303
    after = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "The card on file is forgotten and detached at Stripe" in after
    assert "There was no card on file to forget." in client.get(again.headers["Location"]).get_data(as_text=True)
    assert cards(app) == []
    assert stripe_api.detached == ["pm_1Q0PsIJvEtkwdCNYMSaVuRz6"]
    with app.app_context():
        entries = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "ops.forget_card")
                                     .order_by(AuditEntry.id)).all()
    assert [(e.agent_name, e.outcome, e.account, e.subject) for e in entries] == [
        ("Morgan", "forgotten", "…5001", "AB12CD34"), ("Morgan", "none", "…5001", "AB12CD34")]
    assert entries[0].detail == "visa ending 4242"
    trail = page(client).get_element_by_id("trail").text_content()
    assert "Morgan · ops.forget_card · forgotten" in trail
    assert page(client).get_element_by_id("card-on-file").text_content() == "None."


def test_forgetting_without_the_pages_token_is_refused_and_keeps_the_card(app, client, day, stripe_api):
    staff(app, client, "admin")

    assert client.post("/ops/payments/AB12CD34/forget-card", data={"csrf_token": "forged"}).status_code == 403
    assert client.post("/ops/payments/NOSUCH00/forget-card",
                       data={"csrf_token": token_of(client, "/ops/payments/AB12CD34")}).status_code == 404
    assert len(cards(app)) == 1 and stripe_api.detached == []
