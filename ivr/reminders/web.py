"""The reminder link page (``/r/<token>``) and the callback's Twilio webhooks.

``GET /r/<token>`` shows the bill and a "Call me now" button; ``POST /r/<token>`` (CSRF-checked
by Flask-WTF, the app's one mechanism, with a key bound to the link)
asks for the callback and places it at once, because the member is waiting on the page and
should see straight away if Twilio refused it. When the member answers, Twilio requests
``/twilio/voice/callback?c=<id>`` and the call enters the flow already identified.
"""

import hashlib
import hmac
import logging
import math
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, abort, make_response, redirect, render_template, request
from flask_wtf.csrf import generate_csrf, validate_csrf
from wtforms import ValidationError

import prompts
from flows import ENTRY_POINTS, Entry
from prompts import amounts, dates

from ..extensions import csrf, db
from ..masking import mask
from ..models import Account, row_id
from ..outbox.quiet_hours import local_zones
from ..phones import national, to_e164
from ..twilio.signatures import call_sid as signed_call_sid
from ..twilio.signatures import twilio_signed
from ..voice import call_rows
from ..voice.twiml import say_and_hang_up, xml_response
from ..voice.webhooks import record_status, start_call
from . import callbacks, clock, tokens
from .settings import Settings, settings

logger = logging.getLogger(__name__)
bp = Blueprint("reminders", __name__)

CSRF_FIELD = "csrf_token"
REFRESH_SECONDS = 5


# --- the link page ------------------------------------------------------------------------------


class LinkProblem(Exception):
    """The link cannot be used; ``kind`` is ``invalid`` or ``expired``."""

    def __init__(self, kind: str, lang: str | None = None) -> None:
        super().__init__(kind)
        self.kind = kind
        self.lang = lang


def resolve(token: str, cfg: Settings, now: datetime) -> Account:
    """The account a genuine, unexpired token was issued for, with the same phone still on file.

    :raises LinkProblem: tampered, foreign, expired, unknown account, or phone changed.
    """
    try:
        claims = tokens.peek(token)
    except tokens.BadToken:
        raise LinkProblem("invalid") from None
    account = db.session.get(Account, claims.account_id)
    if account is None or not account.phone:
        raise LinkProblem("invalid")
    try:
        tokens.verify(cfg.secret_key, token, account.phone, now, cfg.link_lifetime)
    except tokens.ExpiredToken:
        raise LinkProblem("expired", account.language) from None
    except tokens.BadToken:
        raise LinkProblem("invalid") from None
    return account


def _link_key(cfg: Settings, token: str) -> str:
    # The form's value is signed with a key of this link: a value read from one member's page is
    # no use on another's.
    message = f"reminder-csrf:{token}".encode()
    return hmac.new(cfg.secret_key.encode(), message, hashlib.sha256).hexdigest()


def _csrf_ok(cfg: Settings, token: str) -> bool:
    try:
        validate_csrf(request.form.get(CSRF_FIELD, ""), secret_key=_link_key(cfg, token))
    except ValidationError:
        return False
    return True


def _secure_headers(response: Response) -> Response:
    # The token in the URL is a credential: never cached, never sent on as a Referer.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return response


def _problem_page(problem: LinkProblem, cfg: Settings) -> Response:
    langs = [prompts.language(problem.lang)] if problem.lang else list(prompts.LANGUAGES)
    hours = int(cfg.link_lifetime.total_seconds() // 3600)
    blocks = [
        {
            "lang": lang,
            "title": prompts.text(f"page.{problem.kind}_title", lang),
            "body": prompts.text(
                f"page.{problem.kind}_body", lang, hours=hours, pay_line=national(cfg.pay_line)
            ),
        }
        for lang in langs
    ]
    html = render_template("reminder_problem.html", org=cfg.org, blocks=blocks, lang=langs[0])
    return _secure_headers(make_response(html, 410 if problem.kind == "expired" else 404))


def unavailable_page(status: int) -> Response:
    """Sorry, the bill cannot be shown now (the database is out of reach): in the member's language
    first as the browser states it, then the other, since the account's own cannot be read."""
    cfg = settings()
    preferred = request.accept_languages.best_match(prompts.LANGUAGES) or prompts.DEFAULT_LANGUAGE
    langs = [preferred, *(lang for lang in prompts.LANGUAGES if lang != preferred)]
    blocks = [
        {
            "lang": lang,
            "title": prompts.text("page.unavailable_title", lang),
            "body": prompts.text("page.unavailable_body", lang, pay_line=national(cfg.pay_line)),
        }
        for lang in langs
    ]
    html = render_template("reminder_problem.html", org=cfg.org, blocks=blocks, lang=langs[0])
    return _secure_headers(make_response(html, status))


def _wait_text(
    wait: callbacks.Wait | None,
    account: Account,
    cfg: Settings,
    now: datetime,
    lang: str,
    section: str = "page",
) -> str | None:
    """Say when to try again: "in 7 minutes", or "after 3:15 PM" in the member's own time."""
    if wait is None:
        return None
    seconds = (wait.until - now).total_seconds()
    if wait.reason == "gap" and seconds <= 3600:
        key = "wait_minutes" if section == "page" else "pay_wait_minutes"
        return prompts.text(
            f"{section}.{key}", lang, minutes=max(1, math.ceil(seconds / 60)), org=cfg.org
        )
    zone = local_zones(account.phone, cfg.org_timezone)[0]
    local = wait.until.astimezone(zone)
    when = dates.moment(local, lang, now.astimezone(zone).date())
    key = "wait_until" if section == "page" else "pay_wait_until"
    return prompts.text(f"{section}.{key}", lang, when=when, org=cfg.org)


def wait_text(
    wait: callbacks.Wait | None, account: Account, lang: str, section: str = "page"
) -> str | None:
    """The "when to try again" sentence for the page (``page``) or an SMS reply (``sms``)."""
    return _wait_text(wait, account, settings(), clock.now(), lang, section)


def _page(
    token: str,
    account: Account,
    cfg: Settings,
    now: datetime,
    *,
    status: int = 200,
    notice: str | None = None,
) -> Response:
    lang = prompts.language(account.language)
    payable = account.status == "active" and account.balance_cents > 0
    latest = callbacks.latest(account.id, now)
    shown = callbacks.shown_status(latest, now)
    wait = callbacks.wait_for(account.id, now) if payable else None
    today = clock.today(cfg.org_timezone)
    phone_last4 = account.phone[-4:]

    def t(key: str, **params: Any) -> str:
        return prompts.text(f"page.{key}", lang, org=cfg.org, **params)

    status_line = None
    if shown is not None:
        status_line = t(f"status_{shown}", phone_last4=phone_last4)
    context = {
        "lang": lang,
        "t": t,
        "org": cfg.org,
        "title": t("title"),
        "account_line": t("account", last4=account.last4),
        "amount": amounts.dollars(account.balance_cents),
        "due": dates.long_date(account.due_date, lang) if account.due_date else None,
        "past_due": bool(
            account.due_date and account.due_date < today and account.balance_cents > 0
        ),
        "payable": payable,
        "office_only": account.status != "active",
        "status_key": shown,
        "status_line": status_line,
        "wait_line": _wait_text(wait, account, cfg, now, lang),
        "can_call": payable and wait is None and shown not in ("calling", "answered"),
        "refresh": REFRESH_SECONDS if shown in ("calling", "answered") else None,
        "notice": notice,
        "phone_last4": phone_last4,
        "pay_line": national(cfg.pay_line),
        "office_phone": national(cfg.office_phone),
        "csrf": generate_csrf(secret_key=_link_key(cfg, token)),
        "action": f"/r/{token}",
    }
    return _secure_headers(make_response(render_template("reminder_page.html", **context), status))


@bp.get("/r/<token>")
def link_page(token: str):
    """Show the member's bill and the "Call me now" button."""
    cfg = settings()
    now = clock.now()
    try:
        account = resolve(token, cfg, now)
    except LinkProblem as problem:
        return _problem_page(problem, cfg)
    response = _page(token, account, cfg, now)
    db.session.commit()
    return response


@bp.post("/r/<token>")
@csrf.exempt  # checked below with the link's key, so a refusal shows the page, not an error
def call_me_now(token: str):
    """Place the callback to the phone on file, within the limits; then show the page again."""
    cfg = settings()
    now = clock.now()
    try:
        account = resolve(token, cfg, now)
    except LinkProblem as problem:
        return _problem_page(problem, cfg)
    lang = prompts.language(account.language)
    if not _csrf_ok(cfg, token):
        logger.warning(
            "reminder page: POST without a valid CSRF value for account %s",
            mask(account.account_number),
        )
        return _page(
            token, account, cfg, now, status=400, notice=prompts.text("page.form_expired", lang)
        )
    if account.status != "active" or account.balance_cents <= 0:
        return _secure_headers(redirect(f"/r/{token}", 303))
    outcome = callbacks.request(account, source="link")
    if isinstance(outcome, callbacks.Wait):
        db.session.commit()
        return _page(token, account, cfg, now, status=429)
    db.session.commit()
    callbacks.place(outcome.id)
    return _secure_headers(redirect(f"/r/{token}", 303))


# --- the callback's voice webhooks ------------------------------------------------------------


def _callback_id() -> int:
    """The callback a webhook's ``c`` names; a malformed one is refused (400, nothing changed)."""
    callback_id = row_id(request.args.get("c"))
    if callback_id is None:
        logger.warning("refused a callback webhook with a malformed callback id")
        abort(400)
    return callback_id


@bp.post("/twilio/voice/callback")
@csrf.exempt  # signed by Twilio
@twilio_signed
def callback_answered():
    """The member's phone answered our callback: voicemail gets a goodbye, a person the flow."""
    form = request.form
    call_sid = signed_call_sid()
    callback = callbacks.lock(_callback_id())
    member = to_e164(form.get("To"))
    if (
        callback is None
        or member != callback.to_number
        or (callback.call_sid and callback.call_sid != call_sid)
    ):
        logger.warning(
            "callback webhook for unknown or mismatched callback %s (call %s)",
            request.args.get("c"),
            call_sid,
        )
        call_rows.release()
        return xml_response(say_and_hang_up("callback_not_available", "en"))
    lang = prompts.language(callback.language)
    existing = call_rows.lock(call_sid)
    if existing is not None and existing.last_twiml:  # Twilio asked twice: same answer
        call_rows.release()
        return xml_response(existing.last_twiml)
    if not callbacks.record_answer(callback, call_sid, form.get("AnsweredBy")):
        logger.info(
            "callback %s reached %s, not a person: hanging up", callback.id, form.get("AnsweredBy")
        )
        call_rows.release()
        return xml_response(say_and_hang_up("callback_voicemail", lang))
    account = db.session.get(Account, callback.account_id)
    if account is None or account.phone != callback.to_number:
        call_rows.release()
        return xml_response(say_and_hang_up("callback_not_available", lang))
    # On our outbound call the member is "To"; the call's from_number is the member's side, so
    # the receipt and everything else keyed on the caller goes to them, not to our own number.
    call = call_rows.enter_identified(
        call_sid,
        state=ENTRY_POINTS[Entry.CALLBACK],
        channel="callback",
        account=account,
        data={"callback_id": callback.id},
        from_number=callback.to_number,
        to_number=form.get("From"),
    )
    logger.info(
        "callback %s answered by account %s's phone %s",
        callback.id,
        mask(account.account_number),
        mask(callback.to_number),
    )
    twiml = start_call(call, Entry.CALLBACK)  # commits the callback's answer with the call
    assert twiml is not None, "a locked call row cannot move"
    return xml_response(twiml)


@bp.post("/twilio/voice/callback/status")
@csrf.exempt  # signed by Twilio
@twilio_signed
def callback_status():
    """Status callback of the outbound call: follow the callback, close the call's session."""
    form = request.form
    call_sid = signed_call_sid()
    status = form.get("CallStatus", "")
    callback = callbacks.lock(_callback_id())
    if callback is not None and (not callback.call_sid or callback.call_sid == call_sid):
        callbacks.record_status(callback, call_sid, status, form.get("AnsweredBy"))
    record_status(call_sid, form)
    call_rows.release()
    return ("", 204)
