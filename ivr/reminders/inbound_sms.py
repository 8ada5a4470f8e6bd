"""Incoming texts: ``POST /twilio/sms`` answers keywords with a TwiML ``<Message>``.

``PAY``/``PAGAR`` offers to charge the card on file when the account has one ("Reply YES within
10 minutes…", ``pay_by_text``), else asks for the same callback as the reminder page (phone on
file, same limits); ``YES``/``SI`` pays that offer. ``BAL``/``SALDO`` replies with the balance, the
STOP family and START record reminder consent per phone number, ``HELP`` says who we are. A
number with no account gets a generic reply.

Opt-out and opt-in get an empty answer: Twilio itself confirms STOP and START on the number, and
refuses any other message to a number that just sent STOP (error 21610).
"""

import logging

import sqlalchemy as sa
from flask import Blueprint, current_app, request

import prompts
from prompts import amounts, dates

from ..extensions import db
from ..masking import mask
from ..models import Account
from ..money import saved_cards
from ..phones import national, to_e164
from ..twilio import adapter as twilio_adapter
from ..twilio.signatures import twilio_signed
from ..voice.twiml import xml_response
from . import callbacks, optouts, pay_by_text
from .settings import settings
from .web import wait_text

logger = logging.getLogger(__name__)
bp = Blueprint("inbound_sms", __name__)

# Twilio's own opt-out and opt-in words on long codes, so our records match what it enforces.
OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN = frozenset({"START", "UNSTOP", "YES"})
HELP = {"HELP": None, "INFO": None, "AYUDA": "es"}
PAY = {"PAY": None, "PAGAR": "es"}
# The answer to a pay-by-text offer. YES is also one of Twilio's opt-in words, and still opts in.
CONFIRM = {"YES": None, "SI": "es", "SÍ": "es"}
BALANCE = {"BAL": None, "BALANCE": None, "SALDO": "es"}
MAX_LISTED = 5


def _reply(body: str | None):
    response = twilio_adapter.messaging_response()
    if body:
        response.message(body)
    return xml_response(str(response))


def _accounts(phone: str | None) -> list[Account]:
    if phone is None:
        return []
    return list(
        db.session.scalars(
            sa.select(Account)
            .where(Account.phone == phone, Account.status != "closed")
            .order_by(Account.account_number)
        )
    )


def _suffixes(accounts: list[Account]) -> list[str]:
    """The shortest tails (at least four digits) that tell these accounts apart."""
    longest = max(len(a.account_number) for a in accounts)
    for size in range(4, longest + 1):
        tails = [a.account_number[-size:] for a in accounts]
        if len(set(tails)) == len(tails):
            return tails
    return [a.account_number for a in accounts]


def apology_reply():
    """Sorry, by text, when a text cannot be answered (the database is out of reach, say).

    The member's language is on their account, which cannot be read: a Spanish keyword gets
    Spanish, anything else both languages.
    """
    try:
        words = (request.form.get("Body") or "").strip().split()
    except Exception:  # a body that cannot be read at all still gets the apology
        words = []
    keyword = words[0].upper().strip(".!?¡¿,") if words else ""
    forced = {**HELP, **PAY, **BALANCE, **CONFIRM}.get(keyword)
    cfg = settings()
    langs = [forced] if forced else list(prompts.LANGUAGES)
    return _reply("\n".join(
        prompts.text("sms.unavailable", lang, org=cfg.org, phone=national(cfg.office_phone)) for lang in langs
    ))


@bp.post("/twilio/sms")
@twilio_signed
def incoming_sms():
    """Answer a keyword texted to our number."""
    form = request.form
    phone = to_e164(form.get("From"))
    words = (form.get("Body") or "").strip().split()
    keyword = words[0].upper().strip(".!?¡¿,") if words else ""
    accounts = _accounts(phone)
    forced = {**HELP, **PAY, **BALANCE, **CONFIRM}.get(keyword)
    lang = prompts.language(forced or (accounts[0].language if accounts else "en"))
    cfg = settings()

    def text(key: str, **params) -> str:
        return prompts.text(f"sms.{key}", lang, org=cfg.org, phone=national(cfg.office_phone), **params)

    # Money moves only on the word alone: "si no pago hoy…" is a question, not a yes.
    if len(words) == 1 and keyword in CONFIRM:
        return _confirm(phone, keyword, forced, bool(accounts), text)
    # As with Twilio, only the keyword alone opts out or in ("stop by later" does not).
    if len(words) == 1 and (keyword in OPT_OUT or keyword in OPT_IN):
        if phone is not None:
            optouts.set_opted_out(phone, keyword in OPT_OUT, keyword)
            db.session.commit()
            logger.info(
                "%s %s reminders (%s)",
                mask(phone),
                "opted out of" if keyword in OPT_OUT else "opted back in to",
                keyword,
            )
        return _reply(None)
    if keyword in HELP:
        return _reply(text("help_saved_card" if _any_saved_card(accounts) else "help"))
    if not accounts:
        logger.info("text from %s, which is not on file", mask(form.get("From")))
        return _reply(text("unknown_number"))
    if keyword in BALANCE:
        return _reply(_balance(accounts, lang, text))
    if keyword in PAY:
        return _pay(accounts, words[1:], phone, lang, text)
    if keyword.isdigit() and len(keyword) >= 4:  # "5002" in answer to "which account?"
        return _pay(accounts, words, phone, lang, text)
    return _reply(text("menu_saved_card" if _any_saved_card(accounts) else "menu"))


def _any_saved_card(accounts: list[Account]) -> bool:
    """Whether PAY from this number can pay by text (for one of its accounts at least)."""
    return any(saved_cards.saved_card_of(a.id) is not None for a in accounts)


def _balance(accounts: list[Account], lang: str, text) -> str:
    def due(account: Account) -> str:
        if account.due_date is None or account.balance_cents <= 0:
            return ""
        return prompts.text("sms.balance_due", lang, due=dates.short_date(account.due_date, lang))

    if len(accounts) == 1:
        (account,) = accounts
        return text(
            "balance_one",
            last4=account.last4,
            amount=amounts.dollars(account.balance_cents),
            due=due(account),
        )
    tails = _suffixes(accounts)
    lines = [
        prompts.text("sms.balance_line", lang, last4=tail, amount=amounts.dollars(a.balance_cents), due=due(a))
        for a, tail in list(zip(accounts, tails, strict=True))[:MAX_LISTED]
    ]
    return text("balance_many", lines="; ".join(lines))


def _confirm(phone: str | None, keyword: str, forced: str | None, on_file: bool, text):
    """``YES``/``SI``: pay the number's pay-by-text offer, or say why nothing was charged."""
    was_opted_out = phone is not None and optouts.is_opted_out(phone)
    if phone is not None and keyword in OPT_IN:
        optouts.set_opted_out(phone, False, keyword)  # Twilio opted the number back in
        db.session.commit()
    answer = pay_by_text.confirm(phone, forced) if phone is not None else None
    if answer is not None:
        return _reply(answer)
    if keyword in OPT_IN and (was_opted_out or not on_file):
        return _reply(None)  # an opt-in, as before pay by text: Twilio confirms it
    if not on_file:
        logger.info("text from %s, which is not on file", mask(phone))
        return _reply(text("unknown_number"))
    return _reply(text("pay_no_offer"))


def _pay(accounts: list[Account], rest: list[str], phone: str | None, lang: str, text):
    """Pick the account (asking which when several), then offer its saved card or request the callback."""
    digits = "".join(ch for ch in "".join(rest) if ch.isdigit())
    chosen: Account | None = None
    if digits:
        matches = [a for a in accounts if len(digits) >= 4 and a.account_number.endswith(digits)]
        chosen = matches[0] if len(matches) == 1 else None
    elif len(accounts) == 1:
        chosen = accounts[0]
    else:
        payable = [a for a in accounts if a.status == "active" and a.balance_cents > 0]
        chosen = payable[0] if len(payable) == 1 else None
    if chosen is None:
        listed = accounts[:MAX_LISTED]
        choices = prompts.text("sms.pay_choice_separator", lang).join(
            prompts.text("sms.pay_choice", lang, last4=tail) for tail in _suffixes(listed)
        )
        return _reply(text("pay_which", choices=choices))

    if chosen.status != "active":
        return _reply(text("pay_office_only", last4=chosen.last4))
    if chosen.balance_cents <= 0:
        return _reply(text("pay_nothing_due", last4=chosen.last4))
    card = saved_cards.saved_card_of(chosen.id)
    if card is not None and phone is not None:
        return _reply(pay_by_text.offer(chosen, card, phone, lang))
    outcome = callbacks.request(chosen, source="sms")
    db.session.commit()
    if isinstance(outcome, callbacks.Wait):
        return _reply(wait_text(outcome, chosen, lang, section="sms"))
    response = _reply(text("pay_calling", last4=chosen.last4))
    # Twilio gets its answer first; the call is placed once the reply has gone (no network
    # inside a webhook's time budget). A row left queued by a crash expires after two minutes.
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    callback_id = outcome.id

    def place_after_reply() -> None:
        with app.app_context():
            try:
                callbacks.place(callback_id)
            except Exception:
                logger.exception("callback %s could not be placed", callback_id)

    response.call_on_close(place_after_reply)
    return response
