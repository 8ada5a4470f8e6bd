"""The operations console's pages: Today, Payments (search, one payment's story), Calls, Messages.

Supervisors read everything and retry a failed message; admins also refund and resend a receipt.
Every list also answers ``Accept: text/csv`` (or ``?format=csv``). Every action is audited.
"""

import csv
import io
import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_wtf.csrf import CSRFError, generate_csrf

from prompts import amounts

from ..agents import audit
from ..agents.models import AuditEntry
from ..extensions import db
from ..masking import mask
from ..models import Account, CallSession, Payment, row_id, utcnow
from ..money import refunds, saved_cards
from ..outbox.models import OutboxMessage
from . import charts, figures
from .access import staff, staff_only
from .labels import step_label

logger = logging.getLogger(__name__)
bp = Blueprint("ops", __name__)
PAGE_ROWS = 200  # rows on a page; the CSV has them all
STATE_NAMES = {
    "identified": "Identified",
    "heard_balance": "Heard the balance",
    "card_entry": "Reached card entry",
    "paid": "Paid",
    "calls": "Calls",
}


@bp.before_request
def _plan_for_the_values_given() -> None:
    """On PostgreSQL, plan each of this request's queries for the values it is given.

    psycopg prepares a statement the fifth time it runs, and PostgreSQL may then keep one generic
    plan for any values. For the console's searches over skewed data (a rare status, one account in
    thousands, two years of days) that plan reads most of a million-row table (docs/speed.md).
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))


@bp.after_request
def _security_headers(response: Response) -> Response:
    """No framing, no script, nothing cached: the pages show members' payments."""
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(CSRFError)
def _stale_form(_error):  # type: ignore[no-untyped-def]
    """A post without the page's token (a forged form, or a page open too long)."""
    return Response("The form's security token is missing or stale; reload the page.", 403)


@bp.app_template_filter("money")
def _money(cents: int | None) -> str:
    return amounts.dollars(cents or 0)


@bp.app_template_filter("brand")
def _brand(brand: str | None) -> str:
    """A card brand as people write it: "Visa", "American Express"; "Card" when unknown."""
    return {"visa": "Visa", "mastercard": "Mastercard", "amex": "American Express", "discover": "Discover"}.get(
        brand or "", "Card")


@bp.app_template_filter("when")
def _when(moment: datetime | None) -> str:
    """A stored UTC moment as the co-op's local date and time, for people: "Dec 3, 2026, 2:05 PM"."""
    shown = figures.local(moment)
    return shown.strftime("%b %-d, %Y, %-I:%M %p") if shown else ""


@bp.app_template_filter("step")
def _step(state: str | None) -> str:
    return step_label(state)


def _page(template: str, **context: object) -> str:
    """Render a page from the rows just read, then end the request's transaction.

    Rendering comes first: a commit expires every row the session holds, and the template would
    then read each listed row again, one query per row (docs/speed.md).
    """
    html = render_template(
        template, org=current_app.config["ORG_NAME"], me=staff(), csrf=generate_csrf(), names=STATE_NAMES, **context
    )
    db.session.commit()
    return html


def _wants_csv() -> bool:
    if request.args.get("format") == "csv":
        return True
    best = request.accept_mimetypes.best_match(["text/html", "text/csv"])
    return best == "text/csv" and request.accept_mimetypes["text/csv"] > request.accept_mimetypes["text/html"]


def _csv(name: str, header: list[str], rows: Callable[[], Iterable[list[object]]]) -> Response:
    """Stream a CSV download (constant memory however many rows); ``rows`` runs as the body is sent."""

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        yield buffer.getvalue()
        for row in rows():
            buffer.seek(0)
            buffer.truncate()
            writer.writerow(row)
            yield buffer.getvalue()

    # The request (and its database session) stays open while the rows stream.
    response = Response(stream_with_context(lines()), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


def _day_arg(name: str, default: date | None = None) -> date | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        abort(400, f"{name}: a date as YYYY-MM-DD")


# --- Today ----------------------------------------------------------------------------------------


@bp.get("/ops")
@staff_only("supervisor")
def today():
    """Today at a glance: money, declines, receipts, the calls' funnel and where callers hang up."""
    day = _day_arg("date", figures.today())
    assert day is not None
    now = figures.today_figures(day)
    trend = figures.trend(day, last=now.counted)
    hours = [f"{h}" for h in range(24)]
    days = [d.strftime("%b %-d") for d in trend.days]
    return _page(
        "ops_today.html",
        day=day,
        t=now,
        hour_chart=charts.bars("Payments by hour", hours, now.by_hour, every=3),
        funnel_chart=charts.funnel("The calls' funnel", [(STATE_NAMES[k], v) for k, v in now.funnel]),
        money_chart=charts.bars(
            "Payments, last 30 days", days, trend.paid_cents, fmt=lambda c: amounts.dollars(int(c)), every=5
        ),
        containment_chart=charts.line(
            "Containment, last 30 days", days, trend.containment, fmt=lambda v: f"{v:.0%}", every=5
        ),
        previous=day - timedelta(days=1),
        following=day + timedelta(days=1) if day < figures.today() else None,
    )


# --- Payments -------------------------------------------------------------------------------------


def _payment_query() -> sa.Select:
    """Payments matching the search form: date or from/to (local days), confirmation, last4, channel, status."""
    query = sa.select(Payment, Account.account_number).join(Account, Account.id == Payment.account_id)
    one_day = _day_arg("date")
    first = _day_arg("from", one_day)
    last = _day_arg("to", one_day)
    if first is None and last is None and not request.args.get("confirmation"):
        first = last = figures.today()
    if first is not None:
        query = query.where(Payment.created_at >= figures.day_bounds(first)[0])
    if last is not None:
        query = query.where(Payment.created_at < figures.day_bounds(last)[1])
    if confirmation := request.args.get("confirmation", "").strip().upper():
        query = query.where(Payment.confirmation_number == confirmation)
    if last4 := request.args.get("last4", "").strip():
        # The account number's last four. Accounts are few next to payments, so their ids are found
        # first and the payments read by account: as a join, a plan made once for any last four
        # (PostgreSQL's generic plan of a prepared statement) walked every payment of the range.
        accounts = sa.select(Account.id).where(Account.account_number.like(f"%{last4[-4:]}"))
        query = query.where(Payment.account_id.in_(db.session.scalars(accounts).all()))
    if channel := request.args.get("channel", "").strip():
        query = query.where(Payment.channel == channel)
    if status := request.args.get("status", "").strip():
        query = query.where(Payment.status == status)
    return query.order_by(Payment.created_at.desc(), Payment.id.desc())


@bp.get("/ops/payments")
@staff_only("supervisor")
def payments():
    """Search payments; the list downloads as CSV."""
    query = _payment_query()
    if _wants_csv():
        return _csv(
            "payments",
            ["created_at", "confirmation_number", "account", "channel", "status", "amount", "refunded",
             "decline_code"],
            lambda: (
                [_when(p.created_at), p.confirmation_number or "", mask(number), p.channel, p.status,
                 amounts.decimal(p.amount_cents), amounts.decimal(p.refunded_cents), p.decline_code or ""]
                for p, number in db.session.execute(query.execution_options(yield_per=1000))
            ),
        )
    found = db.session.execute(query.limit(PAGE_ROWS + 1)).all()
    return _page(
        "ops_payments.html",
        found=found[:PAGE_ROWS],
        more=len(found) > PAGE_ROWS,
        args=request.args,
        csv_url=url_for("ops.payments", **request.args, format="csv"),
        statuses=("succeeded", "declined", "error", "pending", "refunded", "disputed"),
        channels=("ivr", "callback", "agent", "sms", "scheduled", "autopay"),
    )


def _payment_or_404(confirmation: str) -> Payment:
    payment = db.session.scalar(sa.select(Payment).where(Payment.confirmation_number == confirmation.upper()))
    if payment is None:
        abort(404)
    return payment


@bp.get("/ops/payments/<confirmation>")
@staff_only("supervisor")
def payment(confirmation: str):
    """One payment's whole story: the call's steps, every attempt, Stripe ids, receipts, refunds."""
    paid = _payment_or_404(confirmation)
    attempts = (
        db.session.scalars(sa.select(Payment).where(Payment.call_sid == paid.call_sid).order_by(Payment.id)).all()
        if paid.call_sid
        else [paid]
    )
    call = db.session.scalar(sa.select(CallSession).where(CallSession.call_sid == paid.call_sid)) if paid.call_sid else None
    messages = db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.payment_id == paid.id).order_by(OutboxMessage.id)
    ).all()
    trail = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.subject == paid.confirmation_number).order_by(AuditEntry.id)
    ).all()
    return _page(
        "ops_payment.html",
        p=paid,
        account=mask(paid.account.account_number),
        attempts=attempts,
        call=call,
        messages=messages,
        trail=trail,
        remaining=refunds.remaining_cents(paid),
        request_number=refunds.next_request_number(paid),
        card=saved_cards.saved_card_of(paid.account_id),
        notice=request.args.get("done"),
        reason=request.args.get("reason"),
    )


@bp.post("/ops/payments/<confirmation>/refund")
@staff_only("admin")
def refund(confirmation: str):
    """Refund all or part of a payment (form field ``amount`` in dollars; empty = what remains)."""
    paid = _payment_or_404(confirmation)
    raw = request.form.get("amount", "").strip().lstrip("$").replace(",", "")
    cents = None
    if raw:
        try:
            cents = int(Decimal(raw) * 100)
        except InvalidOperation:
            return Response("amount: dollars and cents, e.g. 12.50", 400)
        if cents <= 0 or cents > paid.charged_cents - paid.refunded_cents:
            return Response("amount: more than zero and no more than what remains", 400)
    # None for a form from before request numbers (or a mangled one): the next number is taken.
    number = row_id(request.form.get("request_number"))
    me = staff()
    outcome = refunds.refund(paid, cents, me.name, request_number=number)
    audit.record(me, "ops.refund", outcome.status, account_number=paid.account.account_number,
                 subject=paid.confirmation_number,
                 detail=f"{amounts.dollars(outcome.amount_cents)} request {outcome.request_number}"
                        + (f" ({outcome.reason})" if outcome.reason else ""))
    db.session.commit()
    done = {refunds.REFUNDED: "refund", refunds.PENDING: "refund-pending"}.get(outcome.status, "refund-refused")
    return redirect(url_for("ops.payment", confirmation=paid.confirmation_number, done=done,
                            reason=outcome.reason or None), 303)


@bp.post("/ops/payments/<confirmation>/resend-receipt")
@staff_only("admin")
def resend_receipt(confirmation: str):
    """Queue the payment's receipt again as a new message (its own dedupe key), audited."""
    paid = _payment_or_404(confirmation)
    first = db.session.scalar(
        sa.select(OutboxMessage)
        .where(OutboxMessage.payment_id == paid.id, OutboxMessage.kind == "receipt")
        .order_by(OutboxMessage.id)
    )
    if first is None:
        return Response("this payment has no receipt to send again", 409)
    copies = db.session.scalar(sa.select(sa.func.count()).where(OutboxMessage.payment_id == paid.id))
    db.session.add(
        OutboxMessage(
            dedupe_key=f"receipt:{paid.id}:resend:{copies}",
            kind="receipt",
            to_number=first.to_number,
            account_id=first.account_id,
            payment_id=paid.id,
            body=first.body,
            next_attempt_at=utcnow(),
        )
    )
    audit.record(staff(), "ops.resend_receipt", "queued", account_number=paid.account.account_number,
                 subject=paid.confirmation_number, detail=f"to {mask(first.to_number)}")
    db.session.commit()
    return redirect(url_for("ops.payment", confirmation=paid.confirmation_number, done="resent"), 303)


@bp.post("/ops/payments/<confirmation>/forget-card")
@staff_only("admin")
def forget_card(confirmation: str):
    """Forget the card on file of the payment's account and detach it at Stripe (audited)."""
    paid = _payment_or_404(confirmation)
    me = staff()

    def audited(card) -> None:  # type: ignore[no-untyped-def]
        # In the deletion's commit: a card is never gone without the staff action on record.
        audit.record(me, "ops.forget_card", "forgotten", account_number=paid.account.account_number,
                     subject=paid.confirmation_number, detail=f"{card.card_brand or 'card'} ending {card.card_last4}")

    forgotten = saved_cards.forget(paid.account, by=f"staff:{me.name}", before_commit=audited)
    if not forgotten:  # a second click, or someone else was quicker
        audit.record(me, "ops.forget_card", "none", account_number=paid.account.account_number,
                     subject=paid.confirmation_number)
        db.session.commit()
    return redirect(url_for("ops.payment", confirmation=paid.confirmation_number,
                            done="card-forgotten" if forgotten else "no-card"), 303)


# --- Calls and messages ---------------------------------------------------------------------------


def _outcome(call: CallSession) -> str:
    if call.state in figures.AGENT_STATES:
        return "to an agent"
    if call.furthest == "paid":
        return "paid"
    if call.ended_at is None:
        return "in progress"
    return STATE_NAMES.get(call.furthest or "", "not identified").lower()


@bp.get("/ops/calls")
@staff_only("supervisor")
def calls():
    """Recent calls with their path through the flow, duration and outcome."""
    day = _day_arg("date", figures.today())
    assert day is not None
    start, end = figures.day_bounds(day)
    query = (
        sa.select(CallSession)
        .where(CallSession.created_at >= start, CallSession.created_at < end)
        .order_by(CallSession.created_at.desc(), CallSession.id.desc())
    )

    def seconds(call: CallSession) -> int | None:
        return int((call.ended_at - call.created_at).total_seconds()) if call.ended_at else None

    if _wants_csv():
        return _csv(
            "calls",
            ["started", "call_sid", "channel", "caller", "seconds", "outcome", "path"],
            lambda: (
                [_when(c.created_at), c.call_sid, c.channel, mask(c.from_number), seconds(c) or "", _outcome(c),
                 " > ".join(c.path or [])]
                for c in db.session.scalars(query.execution_options(yield_per=1000))
            ),
        )
    found = db.session.scalars(query.limit(PAGE_ROWS)).all()
    return _page(
        "ops_calls.html", day=day, found=[(c, seconds(c), _outcome(c)) for c in found],
        csv_url=url_for("ops.calls", date=day.isoformat(), format="csv"),
    )


@bp.get("/ops/messages")
@staff_only("supervisor")
def messages():
    """Receipts and reminders with their status and Twilio's error; a failed one can be retried."""
    query = sa.select(OutboxMessage).order_by(OutboxMessage.id.desc())
    if status := request.args.get("status", "").strip():
        query = query.where(OutboxMessage.status == status)
    if kind := request.args.get("kind", "").strip():
        query = query.where(OutboxMessage.kind == kind)
    if _wants_csv():
        return _csv(
            "messages",
            ["created_at", "id", "kind", "to", "status", "attempts", "error_code", "last_error", "sent_at"],
            lambda: (
                [_when(m.created_at), m.id, m.kind, mask(m.to_number), m.status, m.attempts, m.error_code or "",
                 m.last_error or "", _when(m.sent_at)]
                for m in db.session.scalars(query.execution_options(yield_per=1000))
            ),
        )
    found = db.session.scalars(query.limit(PAGE_ROWS)).all()
    return _page(
        "ops_messages.html", found=found, args=request.args, notice=request.args.get("done"),
        csv_url=url_for("ops.messages", **request.args, format="csv"),
    )


@bp.post("/ops/messages/<int:message_id>/retry")
@staff_only("supervisor")
def retry_message(message_id: int):
    """Queue a failed message again, due now (audited)."""
    message = db.session.get(OutboxMessage, message_id)
    if message is None:
        abort(404)
    if message.status != "failed":
        return Response("only a failed message can be retried", 409)
    message.status = "queued"
    message.next_attempt_at = utcnow()
    message.claimed_until = None
    account = db.session.get(Account, message.account_id) if message.account_id else None
    audit.record(staff(), "ops.retry_message", "queued", account_number=account.account_number if account else None,
                 subject=f"message {message.id}", detail=f"{message.kind} to {mask(message.to_number)}")
    db.session.commit()
    return redirect(url_for("ops.messages", done="retried"), 303)
