"""The flow's ``LaterDesk`` over the database for one call: what the paying-later menus read and do.

Its writes (a payment scheduled or cancelled, autopay on or off) join the step's transaction, so
they are kept exactly when the step's answer is (``voice.call_rows.commit_answer``).
"""

import logging
from datetime import date

from flask import current_app

import prompts
from flows import PayOutcome, Prompt
from flows.steps import APPROVED, DECLINED, LaterView, ScheduledView

from ..extensions import db
from ..masking import mask
from ..models import Account
from ..reminders import clock
from ..voice.call_rows import CallRow
from ..voice.spoken import say
from . import autopay, rules, scheduling

logger = logging.getLogger(__name__)


class CallDesk:
    """``flows.steps.LaterDesk`` for one call: the identified account's scheduled payments and autopay."""

    def __init__(self, call: CallRow) -> None:
        self.call = call
        self._view: LaterView | None = None

    def account(self) -> Account:
        """The identified account."""
        account = db.session.get(Account, self.call.account_id) if self.call.account_id else None
        assert account is not None, "the paying-later menus are reached only once identified"
        return account

    def language(self) -> str:
        """The call's language now."""
        return prompts.language(str((self.call.data or {}).get("language", self.call.language)))

    def view(self) -> LaterView:
        """Today, autopay and the upcoming scheduled payments (read once per step)."""
        if self._view is None:
            now = clock.now()
            account = self.account()
            self._view = LaterView(
                today=rules.local_day(now),
                autopay=autopay.is_on(account.id),
                autopay_first_due=rules.first_autopay_due(now),
                scheduled=tuple(
                    ScheduledView(row.id, row.amount_cents, row.pay_on, scheduling.cancellable(row, now))
                    for row in scheduling.upcoming(account.id)
                ),
            )
        return self._view

    def schedule(self, amount_cents: int, pay_on: date) -> ScheduledView | None:
        """Schedule with the card on file, once per answer of the call; None when refused."""
        now = clock.now()
        try:
            row = scheduling.schedule(
                self.account(), amount_cents=amount_cents, pay_on=pay_on, created_key=self.answer_key(),
                call_sid=self.call.call_sid, language=self.language(), now=now,
            )
        except scheduling.Refused:
            return None
        self._view = None
        return ScheduledView(row.id, row.amount_cents, row.pay_on, scheduling.cancellable(row, now))

    def cancel_scheduled(self, scheduled_id: int) -> str:
        """Cancel one of this account's scheduled payments (until 24 hours before)."""
        self._view = None
        return scheduling.cancel(scheduled_id, by="member", now=clock.now(), account_id=self.account().id)

    def enrol_autopay(self, terms: tuple[Prompt, ...]) -> bool:
        """Turn autopay on; the consent kept is ``terms`` in the words the caller heard."""
        lang = self.language()
        org = current_app.config["ORG_NAME"]
        words = " ".join(say(prompt, lang, org)[1] for prompt in terms)
        self._view = None
        try:
            autopay.enrol(self.account(), words=words, language=lang, call_sid=self.call.call_sid, now=clock.now())
        except autopay.NoCardOnFile:
            return False
        return True

    def stop_autopay(self) -> bool:
        """Turn autopay off."""
        self._view = None
        return autopay.stop(self.account().id, by="member", now=clock.now())

    def answer_key(self) -> str:
        """The answer being given (call and seq): a confirmation Twilio delivers twice carries the same one."""
        return f"{self.call.call_sid}:{self.call.seq}"


def keep_card_for_later(call: CallRow, token: str, form) -> PayOutcome:  # type: ignore[no-untyped-def]
    """A ``<Pay>`` that tokenized a card for a scheduled payment: schedule it with that card, charge nothing now.

    Stripe's connector gives the customer (``ProfileId``) the PaymentMethod is attached to; without
    it the card could not be charged later, so nothing is scheduled. Runs under the call's row lock,
    and commits with the call's answer.
    """
    data = dict(call.data or {})
    attempts = int(data.get("schedule_card_attempts", 0)) + 1
    customer = (form.get("ProfileId") or "").strip()
    if not customer or not token.startswith("pm_"):
        logger.warning("call %s: a card for a scheduled payment came without a Stripe customer", call.call_sid)
        return PayOutcome(DECLINED, {"schedule_card_attempts": attempts})
    last4 = "".join(ch for ch in form.get("PaymentCardNumber", "") if ch.isdigit())[-4:] or None
    kept = scheduling.KeptCard(customer, token, (form.get("PaymentCardType") or "").lower() or None, last4)
    desk = CallDesk(call)
    now = clock.now()
    try:
        row = scheduling.schedule(
            desk.account(), amount_cents=int(data.get("amount_cents", 0)),
            pay_on=date.fromisoformat(str(data.get("pay_on"))), created_key=desk.answer_key(),
            call_sid=call.call_sid, language=desk.language(), now=now, kept=kept,
        )
    except scheduling.Refused as refused:
        logger.info("call %s: scheduling refused (%s) for account %s", call.call_sid, refused.reason,
                    mask(desk.account().account_number))
        return PayOutcome(DECLINED, {"schedule_card_attempts": attempts})
    return PayOutcome(APPROVED, {
        "schedule_card_attempts": attempts,
        "scheduled_id": row.id,
        "scheduled_cancellable": scheduling.cancellable(row, now),
    })
