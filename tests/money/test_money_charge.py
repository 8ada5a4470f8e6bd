"""The one charge step (``ivr.money.charge``), called directly as every channel calls it."""

import pytest
import sqlalchemy as sa

from ivr.extensions import db
from ivr.models import Account, Payment
from ivr.money.charge import APPROVED, DECLINED, UNAVAILABLE, charge_token
from ivr.outbox.models import OutboxMessage
from payments.sandbox import SandboxGateway

CALL_SID = "CA" + "0" * 32


class RecordingGateway(SandboxGateway):
    """The sandbox, noting each charge and what another connection sees of the attempt meanwhile."""

    def __init__(self, database_url):
        super().__init__(webhook_secret="whsec_test_secret")
        self.database_url = database_url
        self.charges = []
        self.seen_by_others = []

    def charge(self, **kwargs):
        engine = sa.create_engine(self.database_url)
        with engine.connect() as conn:
            row = conn.execute(
                sa.select(Payment.status, Account.name)
                .join(Account, Account.id == Payment.account_id)
                .where(Payment.attempt_key == kwargs["idempotency_key"])
            ).one()
            self.seen_by_others.append(tuple(row))
        engine.dispose()
        self.charges.append(kwargs)
        return super().charge(**kwargs)


@pytest.fixture
def gateway(app_config, database_url):
    gateway = RecordingGateway(database_url)
    app_config.update(PAYMENT_GATEWAY="sandbox", GATEWAY=gateway)
    return gateway


@pytest.fixture
def account(gateway, app, make_account):
    account_id = make_account(balance_cents=12345, past_due_cents=5000)
    with app.app_context():
        yield db.session.get(Account, account_id)


def charge(account, token, key="CA1:3", **kwargs):
    args = {
        "channel": "ivr",
        "call_sid": CALL_SID,
        "language": "en",
        "caller": "+12025550143",
    }
    args.update(kwargs)
    return charge_token(account, 2500, key, token, **args)


def test_charge_commits_the_attempt_before_the_processor_is_called(gateway, account):
    charge(account, "pm_card_visa")

    assert gateway.seen_by_others == [("pending", "Pat Member")]


def test_charge_sends_the_attempt_key_metadata_and_description(gateway, account):
    outcome = charge(account, "pm_card_visa", customer="cus_123")

    (sent,) = gateway.charges
    assert sent["idempotency_key"] == "CA1:3"
    assert (sent["amount_cents"], sent["currency"], sent["customer"]) == (2500, "usd", "cus_123")
    assert sent["metadata"] == {
        "payment_id": str(outcome.payment_id),
        "account_number": "12345001",
        "call_sid": CALL_SID,
        "channel": "ivr",
    }
    assert sent["description"] == "Riverbend Electric Cooperative account ending 5001"


def test_charge_approved_settles_the_payment_and_queues_the_receipt(account):
    outcome = charge(account, "pm_card_visa")
    db.session.commit()

    assert outcome.status == APPROVED and outcome.decline_code is None
    payment = db.session.get(Payment, outcome.payment_id)
    assert outcome.payment is payment
    assert (payment.status, payment.amount_cents, payment.card_last4) == ("succeeded", 2500, "4242")
    assert payment.confirmation_number and len(payment.confirmation_number) == 8
    db.session.refresh(account)
    assert (account.balance_cents, account.past_due_cents) == (12345 - 2500, 5000 - 2500)
    receipts = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "receipt")).all()
    assert [r.payment_id for r in receipts] == [payment.id]


def test_charge_declined_keeps_the_balance_and_gives_the_decline_code(account):
    outcome = charge(account, "pm_card_visa_chargeDeclinedInsufficientFunds")
    db.session.commit()

    assert (outcome.status, outcome.decline_code) == (DECLINED, "insufficient_funds")
    assert db.session.get(Payment, outcome.payment_id).status == "declined"
    db.session.refresh(account)
    assert account.balance_cents == 12345
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0


def test_a_declined_attempt_is_logged_with_its_reason_and_the_account_masked(account, caplog):
    caplog.set_level("INFO", logger="ivr.money.ledger")
    outcome = charge(account, "pm_card_visa_chargeDeclinedInsufficientFunds")
    db.session.commit()

    lines = [r.getMessage() for r in caplog.records if r.name == "ivr.money.ledger"]
    assert lines == [f"payment {outcome.payment_id} declined (insufficient_funds) "
                     f"for account …{account.account_number[-4:]}"]
    assert account.account_number not in caplog.text


def test_charge_unavailable_keeps_the_attempt_for_stripes_webhook(account):
    outcome = charge(account, "pm_sandbox_unavailable")
    db.session.commit()

    assert (outcome.status, outcome.payment) == (UNAVAILABLE, None)
    assert db.session.get(Payment, outcome.payment_id).status == "error"
    db.session.refresh(account)
    assert account.balance_cents == 12345


def test_charge_of_the_same_attempt_again_reuses_its_key_and_counts_once(gateway, account):
    first = charge(account, "pm_card_visa")
    db.session.commit()
    again = charge(account, "pm_card_visa")  # a redelivery after the first one's answer was lost
    db.session.commit()

    assert again.payment_id == first.payment_id
    assert [c["idempotency_key"] for c in gateway.charges] == ["CA1:3", "CA1:3"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 1
    db.session.refresh(account)
    assert account.balance_cents == 12345 - 2500


def test_charge_before_commit_writes_in_the_attempts_commit(gateway, account):
    # What a channel marks (a call "charging", a session "processing") is on record with the attempt.
    def mark(payment):
        account.name = f"charging {payment.id}"

    outcome = charge(account, "pm_card_visa", before_commit=mark)

    assert gateway.seen_by_others == [("pending", f"charging {outcome.payment_id}")]


def test_charge_without_a_call_needs_no_call_sid_and_adds_the_channels_metadata(gateway, account):
    # A charge no call started (scheduled or autopay): no CallSid to send, extra keys allowed.
    outcome = charge(
        account, "pm_card_visa", key="autopay:7", channel="agent", call_sid=None, caller=None,
        extra_metadata={"agent": "Dana"},
    )

    assert outcome.status == APPROVED
    assert gateway.charges[0]["metadata"] == {
        "payment_id": str(outcome.payment_id),
        "account_number": "12345001",
        "channel": "agent",
        "agent": "Dana",
    }
    assert db.session.get(Payment, outcome.payment_id).receipt_to == "+12025550143"


def test_queueing_a_payments_receipt_again_leaves_one_receipt_and_the_transaction_usable(account):
    from ivr.money import ledger

    outcome = charge(account, "pm_card_visa")
    db.session.commit()
    payment = db.session.get(Payment, outcome.payment_id)
    ledger.queue_receipt(payment)  # a second settle of the same payment, say
    db.session.commit()
    receipts = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "receipt")).all()
    assert [(r.payment_id, r.status) for r in receipts] == [(payment.id, "queued")]
    assert payment.confirmation_number in receipts[0].body
