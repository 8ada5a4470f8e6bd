"""The agents' JSON API: transfers, account look-ups, live calls and assisted payments.

Every route authenticates first (bearer API key, or the console's session cookie plus its CSRF
token for changes), then counts against the key's rate limit, then checks the request.
"""

import functools
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify, request

from prompts.amounts import decimal, dollars
from prompts.dates import long_date

from ..billing.accounts_csv import normalise_account_number
from ..extensions import db
from ..masking import mask
from ..models import Account, CallSession, utcnow
from ..money import saved_cards
from ..voice.call_rows import ENDED_CALL_STATUSES
from . import assisted, audit, limits, progress, transfers
from .auth import Caller, authenticate, csrf_ok
from .checks import Problem
from .models import AssistedPayment, Transfer
from .validation import Invalid, json_body, parse_pay_request

logger = logging.getLogger(__name__)
bp = Blueprint("agent_api", __name__)

def problem_response(problem: Problem):
    """The JSON answer for a ``Problem``."""
    body = {"error": problem.code, "message": problem.message}
    extra = dict(problem.extra)
    retry_after = extra.pop("retry_after", None)
    body.update(extra)
    response = jsonify(body)
    response.status_code = problem.status
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    if problem.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="agents"'
    response.headers["Cache-Control"] = "no-store"
    return response


def agent_route(limit: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Authenticate (401), check CSRF for cookie sessions (403), count the rate limit (429)."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any):
            caller = authenticate()
            if caller is None:
                db.session.rollback()
                # The endpoint's name, not the path: a path may carry an id worth keeping out of logs.
                logger.warning(
                    "agent API: missing or wrong key on %s %s", request.method, request.endpoint
                )
                return problem_response(
                    Problem(
                        401,
                        "unauthorized",
                        "Send a valid agent API key as 'Authorization: Bearer <key>'.",
                    )
                )
            if request.method != "GET" and not csrf_ok(caller):
                db.session.rollback()
                return problem_response(
                    Problem(
                        403,
                        "csrf",
                        "The form's security token is missing or stale; reload the page.",
                    )
                )
            verdict = limits.hit(limit, f"agent:{caller.agent.id}")
            if not verdict.allowed:
                if limit != "read":
                    audit.record(caller.agent, f"rate_limited.{limit}", "429", detail=request.path)
                    db.session.commit()
                return problem_response(
                    Problem(
                        429,
                        "rate_limited",
                        f"Too many requests; try again in {verdict.retry_after} seconds.",
                        retry_after=verdict.retry_after,
                    )
                )
            try:
                response = view(caller, *args, **kwargs)
            except Problem as problem:
                db.session.rollback()
                return problem_response(problem)
            except Invalid as invalid:
                db.session.rollback()
                return problem_response(
                    Problem(422, "invalid_request", str(invalid), errors=invalid.errors)
                )
            response.headers["Cache-Control"] = "no-store"
            return response

        return wrapped

    return decorate


def _invalid(caller: Caller, action: str, invalid: Invalid) -> Problem:
    audit.record(
        caller.agent, action, "422", detail="invalid: " + ", ".join(sorted(invalid.errors))
    )
    db.session.commit()
    return Problem(422, "invalid_request", str(invalid), errors=invalid.errors)


# --- transfers ----------------------------------------------------------------------------------


@bp.post("/api/agent/transfers")
@agent_route("pay")
def create_transfer(caller: Caller):
    """Send a live caller into secure pay for an account; answers 201 with the transfer."""
    try:
        req = parse_pay_request(json_body(), transfer=True)
    except Invalid as invalid:
        raise _invalid(caller, "transfer.create", invalid) from None
    transfer = transfers.start(caller.agent, req)
    response = jsonify(transfers.representation(transfer))
    response.status_code = 201
    response.headers["Location"] = f"/api/agent/transfers/{transfer.id}"
    return response


@bp.get("/api/agent/transfers/<transfer_id>")
@agent_route("read")
def get_transfer(caller: Caller, transfer_id: str):
    """A transfer's progress (any agent of the co-op may read any transfer)."""
    transfer = db.session.get(Transfer, transfer_id)
    if transfer is None:
        raise Problem(404, "unknown_transfer", f"No transfer {transfer_id}.")
    body = transfers.representation(transfer)
    db.session.commit()
    return jsonify(body)


# --- look-ups -----------------------------------------------------------------------------------


@bp.post("/api/agent/accounts/lookup")
@agent_route("lookup")
def lookup_account(caller: Caller):
    """What an agent needs to take a payment: masked phone, balance and due date.

    The number comes in the JSON body (``{"account_number": "12345-001"}``), never in the URL:
    request lines end up in access logs, and full account numbers must not.
    """
    try:
        number = _lookup_number(json_body())
    except Invalid as invalid:
        raise _invalid(caller, "account.lookup", invalid) from None
    account = db.session.scalar(sa.select(Account).where(Account.account_number == number))
    audit.record(
        caller.agent, "account.lookup", "found" if account else "404", account_number=number
    )
    db.session.commit()
    if account is None:
        raise Problem(404, "unknown_account", f"No account {mask(number)} was found.")
    cfg = current_app.config
    limit = (
        cfg["MAX_PAYMENT_CENTS"]
        if cfg.get("MAX_PAYMENT_CENTS") is not None
        else account.balance_cents
    )
    return jsonify(
        account=mask(account.account_number),
        name=account.name,
        phone=mask(account.phone),
        balance=decimal(account.balance_cents),
        balance_cents=account.balance_cents,
        past_due=decimal(account.past_due_cents),
        due_date=account.due_date.isoformat() if account.due_date else None,
        status=account.status,
        language=account.language,
        payable=account.status == "active" and account.balance_cents > 0,
        max_amount=decimal(max(limit, 0)),
        # Display strings beside the raw values, so the console shows what people read.
        balance_text=dollars(account.balance_cents),
        past_due_text=dollars(account.past_due_cents),
        due_date_text=long_date(account.due_date, "en") if account.due_date else None,
        max_amount_text=dollars(max(limit, 0)),
        saved_card=card_on_file(account),
    )


def card_on_file(account: Account) -> dict[str, Any] | None:
    """The account's saved card as staff may see it: brand, last four, when and how it was saved."""
    card = saved_cards.saved_card_of(account.id)
    if card is None:
        return None
    return {
        "brand": card.card_brand,
        "last4": card.card_last4,
        "saved_at": card.saved_at.isoformat(),
        "channel": card.consent_channel,
    }


@bp.post("/api/agent/accounts/saved-card/forget")
@agent_route("action")
def forget_saved_card(caller: Caller):
    """Forget the account's card on file (``{"account_number": …}`` in the body) and detach it at Stripe.

    Answers ``forgotten: false`` when no card was on file (a second click); audited either way.
    """
    try:
        number = _lookup_number(json_body())
    except Invalid as invalid:
        raise _invalid(caller, "saved_card.forget", invalid) from None
    account = db.session.scalar(sa.select(Account).where(Account.account_number == number))
    if account is None:
        audit.record(caller.agent, "saved_card.forget", "404", account_number=number)
        db.session.commit()
        raise Problem(404, "unknown_account", f"No account {mask(number)} was found.")

    def audited(card) -> None:
        # In the deletion's commit: a card is never gone without the staff action on record.
        audit.record(caller.agent, "saved_card.forget", "forgotten", account_number=number,
                     detail=f"{card.card_brand or 'card'} ending {card.card_last4}")

    forgotten = saved_cards.forget(account, by=f"agent:{caller.agent.name}", before_commit=audited)
    if not forgotten:
        audit.record(caller.agent, "saved_card.forget", "none", account_number=number)
        db.session.commit()
    return jsonify(account=mask(number), forgotten=forgotten, saved_card=None)


def _lookup_number(data: dict[str, Any]) -> str:
    errors = {name: "is not a known field" for name in sorted(set(data) - {"account_number"})}
    raw = data.get("account_number")
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    number = ""
    if not isinstance(raw, str) or not raw.strip():
        errors["account_number"] = "is required"
    else:
        try:
            number = normalise_account_number(raw)
        except ValueError as exc:
            errors["account_number"] = str(exc)
    if errors:
        raise Invalid(errors)
    return number


@bp.get("/api/agent/calls")
@agent_route("lookup")
def calls_with_agents(caller: Caller):
    """Calls the IVR connected to an agent in the last hours and not known to have ended."""
    since = utcnow() - timedelta(hours=4)
    rows = db.session.scalars(
        sa.select(CallSession)
        .where(
            CallSession.state.in_(progress.AGENT_STATES),
            CallSession.updated_at >= since,
            sa.or_(
                CallSession.call_status.is_(None),
                CallSession.call_status.notin_(list(ENDED_CALL_STATUSES)),
            ),
        )
        .order_by(CallSession.updated_at.desc())
        .limit(20)
    ).all()
    out = []
    for row in rows:
        account = db.session.get(Account, row.account_id) if row.account_id else None
        out.append(
            {
                "call_sid": row.call_sid,
                "from": mask(row.from_number),
                "account": mask(account.account_number) if account else None,
                "since": row.updated_at.isoformat(),
            }
        )
    db.session.commit()
    return jsonify(calls=out)


# --- assisted payments --------------------------------------------------------------------------


@bp.post("/api/agent/assisted")
@agent_route("pay")
def start_assisted(caller: Caller):
    """Open an agent-assisted Payments session on a live call; answers 201."""
    try:
        req = parse_pay_request(json_body(), transfer=False)
    except Invalid as invalid:
        raise _invalid(caller, "assisted.start", invalid) from None
    row = assisted.start(caller.agent, req)
    response = jsonify(assisted.representation(row))
    response.status_code = 201
    response.headers["Location"] = f"/api/agent/assisted/{row.id}"
    return response


@bp.get("/api/agent/assisted/<assisted_id>")
@agent_route("read")
def get_assisted(caller: Caller, assisted_id: str):
    """An assisted session's progress: which field, masked facts, what is still needed."""
    row = db.session.get(AssistedPayment, assisted_id)
    if row is None:
        raise Problem(404, "unknown_payment", f"No assisted payment {assisted_id}.")
    row = assisted.follow_payment(row)  # e.g. settled by Stripe's webhook after a crash mid-charge
    body = assisted.representation(row)
    db.session.commit()
    return jsonify(body)


@bp.post("/api/agent/assisted/<assisted_id>/capture")
@agent_route("action")
def capture_field(caller: Caller, assisted_id: str):
    """Ask the caller for one field (``{"field": "payment-card-number"}``), or for it again."""
    data = json_body()
    field = data.get("field")
    if not isinstance(field, str):
        raise Invalid({"field": "must be one of " + ", ".join(assisted.FIELDS)})
    row = assisted.capture(caller.agent, assisted_id, field)
    return jsonify(assisted.representation(row))


@bp.post("/api/agent/assisted/<assisted_id>/complete")
@agent_route("action")
def complete_assisted(caller: Caller, assisted_id: str):
    """Submit the captured card; the outcome follows in the session's status."""
    row = assisted.complete(caller.agent, assisted_id)
    return jsonify(assisted.representation(row))


@bp.post("/api/agent/assisted/<assisted_id>/cancel")
@agent_route("action")
def cancel_assisted(caller: Caller, assisted_id: str):
    """End the session without charging."""
    row = assisted.cancel(caller.agent, assisted_id)
    return jsonify(assisted.representation(row))
