"""The vocabulary of the flow table: what a step says, what it expects and where answers go."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class State(StrEnum):
    """Every place a call can be. Values equal names so logs, database and table read the same."""

    WELCOME = "WELCOME"
    IDENTIFY = "IDENTIFY"
    OFFER_CALLER_ID = "OFFER_CALLER_ID"
    CHOOSE_ACCOUNT = "CHOOSE_ACCOUNT"
    ENTER_ACCOUNT = "ENTER_ACCOUNT"
    ENTER_LAST4 = "ENTER_LAST4"
    # The caller-ID path's second factor: something a spoofed caller ID does not give away.
    CALLER_ID_CHECK = "CALLER_ID_CHECK"
    ENTER_ZIP = "ENTER_ZIP"
    ENTER_FULL_ACCOUNT = "ENTER_FULL_ACCOUNT"
    ACCOUNT_CHECK = "ACCOUNT_CHECK"
    SUMMARY = "SUMMARY"
    HISTORY = "HISTORY"
    ENTER_AMOUNT = "ENTER_AMOUNT"
    CONFIRM_AMOUNT = "CONFIRM_AMOUNT"
    FEE_CHECK = "FEE_CHECK"
    FEE_CONFIRM = "FEE_CONFIRM"
    CARD_ENTRY = "CARD_ENTRY"
    CARD_DECLINED = "CARD_DECLINED"
    CARD_UNREADABLE = "CARD_UNREADABLE"
    PROCESSOR_DOWN = "PROCESSOR_DOWN"
    CARD_BACK_OUT = "CARD_BACK_OUT"
    # The card on file: chosen before <Pay>, charged without it, forgotten; offered after a keyed payment.
    CARD_CHOICE = "CARD_CHOICE"
    SAVED_CARD = "SAVED_CARD"
    SAVED_CARD_CHARGE = "SAVED_CARD_CHARGE"
    SAVED_CARD_DECLINED = "SAVED_CARD_DECLINED"
    FORGET_CARD = "FORGET_CARD"
    CARD_FORGOTTEN = "CARD_FORGOTTEN"
    SAVE_CARD_OFFER = "SAVE_CARD_OFFER"
    SAVE_CARD = "SAVE_CARD"
    CARD_SAVED = "CARD_SAVED"
    CONFIRMATION = "CONFIRMATION"
    ANOTHER_ACCOUNT = "ANOTHER_ACCOUNT"
    AFTER_PAYMENT = "AFTER_PAYMENT"
    NOTHING_DUE = "NOTHING_DUE"
    OFFICE_ONLY = "OFFICE_ONLY"
    NO_MATCH = "NO_MATCH"
    TOO_MANY_ATTEMPTS = "TOO_MANY_ATTEMPTS"
    NO_INPUT = "NO_INPUT"
    AGENT = "AGENT"
    RETURN_TO_AGENT = "RETURN_TO_AGENT"
    GOODBYE = "GOODBYE"
    HUNG_UP = "HUNG_UP"
    # Where calls that start already identified begin (agent transfer, reminder callback).
    TRANSFER_CONFIRM = "TRANSFER_CONFIRM"
    CALLBACK_START = "CALLBACK_START"
    CALLBACK_WELCOME = "CALLBACK_WELCOME"
    # Paying later (SUMMARY key 5): scheduled payments and autopay.
    LATER_MENU = "LATER_MENU"
    SCHEDULE_AMOUNT = "SCHEDULE_AMOUNT"
    SCHEDULE_ENTER_AMOUNT = "SCHEDULE_ENTER_AMOUNT"
    SCHEDULE_DATE = "SCHEDULE_DATE"
    SCHEDULE_CONFIRM = "SCHEDULE_CONFIRM"
    SCHEDULE_CARD = "SCHEDULE_CARD"
    SCHEDULE_CARD_PROBLEM = "SCHEDULE_CARD_PROBLEM"
    SCHEDULED_DONE = "SCHEDULED_DONE"
    SCHEDULED_LIST = "SCHEDULED_LIST"
    SCHEDULED_CANCEL = "SCHEDULED_CANCEL"
    AUTOPAY_TERMS = "AUTOPAY_TERMS"
    AUTOPAY_STOP = "AUTOPAY_STOP"


class Entry(StrEnum):
    """The ways a call enters the flow; ``flows.ENTRY_POINTS`` names the state each begins in."""

    SELF_SERVICE = "self_service"  # the member calls us (POST /twilio/voice)
    TRANSFER = "transfer"  # an agent sends the caller on to secure card entry
    CALLBACK = "callback"  # we call the member back from a reminder link, already identified


@dataclass(frozen=True)
class Prompt:
    """A prompt key from ``prompts/<lang>.toml`` with its parameters; ``lang`` forces a language."""

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)
    lang: str | None = None


class Money(int):
    """An amount in cents that the prompt renderer speaks as words."""


@dataclass(frozen=True)
class Day:
    """A date the prompt renderer speaks as a weekday and date."""

    value: Any  # datetime.date


class Digits(str):
    """A digit string the renderer spaces out so it is read one digit at a time."""


class Word(str):
    """A catalogue key the renderer says in the call's language where a prompt has a blank (a card's brand)."""


@dataclass(frozen=True)
class Keys:
    """Expect keypad input or speech (TwiML ``<Gather input="dtmf speech">``).

    ``hear`` is what speech is read as: "menu" (a meaning or a key's number), "digits" (a number
    said digit by digit) or "amount" (dollars and cents). ``words`` maps the meanings a menu
    accepts ("yes", "pay": ``flows.speech.INTENT_WORDS``) to its keys, or is a named function of
    the call giving that map (a menu whose keys depend on the account).
    """

    num_digits: int | None = 1
    finish_on_key: str = ""
    timeout: int = 6
    hear: str = "menu"
    words: "Mapping[str, str] | Callable[[CallContext], Mapping[str, str]]" = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Pay:
    """Expect card entry (TwiML ``<Pay>``); the web layer charges the token and reports an outcome."""


@dataclass(frozen=True)
class Act:
    """Expect nothing from the caller: the web layer does ``action`` at once and reports an outcome label.

    For a key that moves money or changes what is kept (charge the card on file, save or forget
    it): the engine stays pure, and the web layer acts under the call's lock, as for ``<Pay>``.
    """

    action: str  # CHARGE_SAVED_CARD, SAVE_CARD or FORGET_CARD


@dataclass(frozen=True)
class Decision:
    """What a named decision made of the caller's input: an outcome label, data to save, words to add."""

    label: str
    updates: Mapping[str, Any] = field(default_factory=dict)
    say: tuple[Prompt, ...] = ()


@dataclass(frozen=True)
class AccountView:
    """The read-only facts about an account the flow may speak."""

    account_number: str
    balance_cents: int
    past_due_cents: int
    due_date: Any  # datetime.date | None
    language: str
    status: str
    zip: str | None = None  # the service ZIP code: a second factor, never spoken

    @property
    def last4(self) -> str:
        return self.account_number[-4:]


@dataclass(frozen=True)
class CardOnFile:
    """The account's saved card as the caller hears of it: brand and last four, nothing else."""

    brand: str | None  # lower case, as Stripe reports it: visa, mastercard, amex, discover
    last4: str | None


@dataclass(frozen=True)
class ScheduledView:
    """One upcoming scheduled payment as the caller hears it."""

    id: int
    amount_cents: int
    pay_on: Any  # datetime.date, a day in the co-op's time zone
    cancellable: bool  # more than 24 hours before it is charged


@dataclass(frozen=True)
class LaterView:
    """What the paying-later menus may speak of: today, autopay, scheduled payments (the card is ``card_on_file``)."""

    today: Any  # datetime.date in the co-op's time zone
    autopay: bool  # autopay is on for the account
    autopay_first_due: Any  # datetime.date: the first due date autopay would pay if turned on now
    scheduled: tuple[ScheduledView, ...] = ()  # upcoming, soonest first


class LaterDesk(Protocol):
    """Scheduled payments and autopay for the identified account; ``ivr.later.desk`` implements it.

    Its writes join the step's transaction: they are kept only if the step's answer is.
    """

    def view(self) -> LaterView:
        """Today, autopay and the upcoming scheduled payments."""
        ...

    def schedule(self, amount_cents: int, pay_on: Any) -> ScheduledView | None:
        """Schedule a payment with the card on file; None when the rules refuse it now."""
        ...

    def cancel_scheduled(self, scheduled_id: int) -> str:
        """Cancel one: ``cancelled``, ``too_late`` (within 24 hours) or ``gone`` (not upcoming)."""
        ...

    def enrol_autopay(self, terms: tuple["Prompt", ...]) -> bool:
        """Turn autopay on, keeping ``terms`` as the words agreed to; False without a card on file."""
        ...

    def stop_autopay(self) -> bool:
        """Turn autopay off; False when it was not on."""
        ...


@dataclass(frozen=True)
class PaidView:
    """One past payment of the account as the caller hears it: the member's local day, amount, channel."""

    day: Any  # datetime.date, in the member's time zone
    amount_cents: int  # what went to the bill (a convenience fee is not part of it)
    channel: str  # ivr | agent | callback | ...


class CallContext(Protocol):
    """What the flow may ask about the call; ``ivr.voice.context`` implements it over the database."""

    data: Mapping[str, Any]
    agent_available: bool
    min_payment_cents: int
    max_payment_cents: int | None
    convenience_fee_cents: int  # 0: the co-op charges no fee and none is mentioned
    longer_key_waits: bool  # LONGER_KEY_WAITS: every wait for a key is longer from the first prompt

    def caller_accounts(self) -> list[AccountView]:
        """Payable accounts whose phone on file is the caller ID (empty when withheld or odd)."""
        ...

    def account(self) -> AccountView | None:
        """The identified account, or the caller-ID candidate before verification."""
        ...

    def card_on_file(self) -> CardOnFile | None:
        """The identified account's saved card, or None."""
        ...

    def verify(self, account_number: str, answer: str, factor: str = "last4") -> bool:
        """Check the account and its ``factor`` (last4, zip, account), record a failure, honour the
        lockout; False says nothing about which part was wrong."""
        ...

    @property
    def later(self) -> LaterDesk:
        """Scheduled payments and autopay of the identified account."""
        ...

    def recent_payments(self, limit: int) -> list[PaidView]:
        """The identified account's last ``limit`` succeeded payments, newest first."""
        ...


Say = Callable[[CallContext], tuple[Prompt, ...]]
Decide = Callable[[str, CallContext], Decision]


@dataclass(frozen=True)
class Step:
    """One row of the flow table.

    ``say``: prompt keys (or a named function building prompts) spoken on arrival and on repeat.
    ``expect``: ``Keys``, ``Pay``, ``Act`` (the web layer acts at once) or None (a routing or final step).
    ``decide``: a named function turning the input into an outcome label; without it the key
    pressed is the label. ``on``: label -> next state.
    ``route``: for steps without input, a named function choosing the label at once.
    """

    say: tuple[str, ...] | Say = ()
    expect: Keys | Pay | Act | None = None
    on: Mapping[str, State] = field(default_factory=dict)
    decide: Decide | None = None
    route: Decide | None = None
    on_silence: State | None = None  # None: re-prompt, then NO_INPUT after the silence limit
    final: bool = False
    dial: str | None = None  # final steps that connect the caller somewhere: "agent" | "return_to"
    allow_agent: bool = True  # "0" reaches the agent from this step when one is configured
    repeatable: bool = True  # "*" repeats this step's prompts
    # What a re-prompt (after silence or a wrong key) says after its apology: the choices only, for
    # steps that first tell something (a balance, a decline); None says the step's prompts again.
    # "*" still repeats everything.
    reprompt: Say | None = None


# Labels the web layer reports for a <Pay> result.
APPROVED, DECLINED, UNAVAILABLE, UNREADABLE, STAR, CALLER_HUNG_UP = (
    "approved",
    "declined",
    "unavailable",
    "unreadable",
    "star",
    "hung_up",
)
# What the web layer does for an ``Act`` step; each reports labels of its own.
CHARGE_SAVED_CARD, SAVE_CARD, FORGET_CARD = "charge_saved_card", "save_card", "forget_card"
SAVED, NOT_SAVED, FORGOTTEN = "saved", "not_saved", "forgotten"
SILENCE_LIMIT = 2  # re-prompts after silence before saying goodbye
INVALID_LIMIT = 3  # wrong entries in one step before the caller is let go
