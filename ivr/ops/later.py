"""/ops pages for paying later: scheduled payments and autopay (enrolments and the bills it took on).

Routes of the ops blueprint (same sign-in, role check, CSRF and headers as every /ops page); every
list also answers ``Accept: text/csv``. Supervisors may cancel a scheduled payment (until 24 hours
before, as members may) and stop an account's autopay; each action is audited.
"""

import sqlalchemy as sa
from flask import Response, abort, redirect, request, url_for

from prompts import amounts

from ..agents import audit
from ..extensions import db
from ..later import autopay, scheduling
from ..later.models import CALL_CARD, AutopayBill, AutopayEnrollment, ScheduledPayment
from ..masking import mask
from ..models import Account, Payment, row_id
from ..reminders import clock
from .access import staff, staff_only
from .pages import PAGE_ROWS, _csv, _page, _wants_csv, _when, bp

SCHEDULED_STATUSES = ("scheduled", "charging", "paid", "failed", "skipped", "cancelled")
BILL_STATUSES = ("noticed", "charging", "paid", "failed", "skipped", "cancelled")


def _card(row: ScheduledPayment) -> str:
    shown = f"{row.card_brand or ''} …{row.card_last4 or ''}".strip()
    return f"{shown} ({'card from the call' if row.card_source == CALL_CARD else 'card on file'})"


@bp.get("/ops/scheduled")
@staff_only("supervisor")
def scheduled():
    """Scheduled payments, soonest day first; a status filter; the list downloads as CSV."""
    query = (
        sa.select(ScheduledPayment, Account.account_number, Payment.confirmation_number)
        .join(Account, Account.id == ScheduledPayment.account_id)
        .outerjoin(Payment, Payment.id == ScheduledPayment.payment_id)
        .order_by(ScheduledPayment.pay_on.desc(), ScheduledPayment.id.desc())
    )
    if status := request.args.get("status", "").strip():
        query = query.where(ScheduledPayment.status == status)
    if _wants_csv():
        return _csv(
            "scheduled_payments",
            ["pay_on", "account", "amount", "status", "failure", "card", "scheduled_at", "call_sid",
             "confirmation_number", "cancelled_at", "cancelled_by"],
            lambda: (
                [row.pay_on.isoformat(), mask(number), amounts.decimal(row.amount_cents), row.status,
                 row.failure_code or "", _card(row), _when(row.created_at), row.created_call_sid or "",
                 confirmation or "", _when(row.cancelled_at), row.cancelled_by or ""]
                for row, number, confirmation in db.session.execute(query.execution_options(yield_per=1000))
            ),
        )
    now = clock.now()
    found = db.session.execute(query.limit(PAGE_ROWS)).all()
    return _page(
        "ops_scheduled.html",
        found=[(row, number, confirmation, _card(row), scheduling.cancellable(row, now))
               for row, number, confirmation in found],
        args=request.args, statuses=SCHEDULED_STATUSES, notice=request.args.get("done"),
        csv_url=url_for("ops.scheduled", **request.args, format="csv"),
    )


@bp.post("/ops/scheduled/<scheduled_id>/cancel")
@staff_only("supervisor")
def cancel_scheduled(scheduled_id: str):
    """Cancel a scheduled payment for the member (until 24 hours before its charge), audited."""
    number = row_id(scheduled_id)
    row = db.session.get(ScheduledPayment, number) if number is not None else None
    if row is None:
        abort(404)
    me = staff()
    outcome = scheduling.cancel(row.id, by=f"staff:{me.name}", now=clock.now())
    audit.record(me, "ops.cancel_scheduled", outcome, account_number=row.account.account_number,
                 subject=f"scheduled payment {row.id}",
                 detail=f"{amounts.dollars(row.amount_cents)} on {row.pay_on.isoformat()}")
    db.session.commit()
    if outcome != "cancelled":
        message = ("less than 24 hours before its charge: it can no longer be cancelled" if outcome == "too_late"
                   else "it is no longer scheduled")
        return Response(f"Not cancelled: {message}.", 409)
    return redirect(url_for("ops.scheduled", done="cancelled"), 303)


@bp.get("/ops/autopay")
@staff_only("supervisor")
def autopay_page():
    """Autopay enrolments (on first) and the bills autopay took on, newest first; the enrolments as CSV."""
    enrolled = (
        sa.select(AutopayEnrollment, Account.account_number)
        .join(Account, Account.id == AutopayEnrollment.account_id)
        .order_by(AutopayEnrollment.active.desc(), AutopayEnrollment.enrolled_at.desc(), AutopayEnrollment.id.desc())
    )
    if _wants_csv():
        return _csv(
            "autopay_enrollments",
            ["account", "active", "enrolled_at", "channel", "call_sid", "language", "consent_words", "cancelled_at",
             "cancelled_by"],
            lambda: (
                [mask(number), "yes" if row.active else "no", _when(row.enrolled_at), row.consent_channel,
                 row.consent_call_sid or "", row.consent_language, row.consent_words, _when(row.cancelled_at),
                 row.cancelled_by or ""]
                for row, number in db.session.execute(enrolled.execution_options(yield_per=1000))
            ),
        )
    enrollments = db.session.execute(enrolled.limit(PAGE_ROWS)).all()
    bills = db.session.execute(_bills_query().limit(PAGE_ROWS)).all()
    return _page(
        "ops_autopay.html", enrollments=enrollments, bills=bills, args=request.args, statuses=BILL_STATUSES,
        notice=request.args.get("done"), csv_url=url_for("ops.autopay_page", format="csv"),
        bills_csv_url=url_for("ops.autopay_bills", **request.args, format="csv"),
    )


def _bills_query() -> sa.Select:
    query = (
        sa.select(AutopayBill, Account.account_number, Payment.confirmation_number)
        .join(Account, Account.id == AutopayBill.account_id)
        .outerjoin(Payment, Payment.id == AutopayBill.payment_id)
        .order_by(AutopayBill.due_date.desc(), AutopayBill.id.desc())
    )
    if status := request.args.get("status", "").strip():
        query = query.where(AutopayBill.status == status)
    return query


@bp.get("/ops/autopay/bills")
@staff_only("supervisor")
def autopay_bills():
    """The bills autopay took on (notice, charge, outcome), as CSV; the page shows them under the enrolments."""
    if not _wants_csv():
        return redirect(url_for("ops.autopay_page", **request.args), 303)
    return _csv(
        "autopay_bills",
        ["due_date", "account", "amount", "status", "failure", "noticed_at", "charge_at", "confirmation_number"],
        lambda: (
            [bill.due_date.isoformat(), mask(number), amounts.decimal(bill.amount_cents), bill.status,
             bill.failure_code or "", _when(bill.created_at), _when(bill.charge_at), confirmation or ""]
            for bill, number, confirmation in db.session.execute(_bills_query().execution_options(yield_per=1000))
        ),
    )


@bp.post("/ops/autopay/<enrollment_id>/stop")
@staff_only("supervisor")
def stop_autopay(enrollment_id: str):
    """Stop an account's autopay for the member, audited; a bill already noticed is then not charged."""
    number = row_id(enrollment_id)
    row = db.session.get(AutopayEnrollment, number) if number is not None else None
    if row is None:
        abort(404)
    me = staff()
    stopped = autopay.stop(row.account_id, by=f"staff:{me.name}", now=clock.now())
    audit.record(me, "ops.stop_autopay", "stopped" if stopped else "was_off",
                 account_number=row.account.account_number, subject=f"autopay {row.id}")
    db.session.commit()
    return redirect(url_for("ops.autopay_page", done="stopped" if stopped else "was-off"), 303)
