"""Named decisions and spoken summaries used by the flow table. Pure: they only read ``CallContext``."""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from .steps import AccountView, CallContext, CardOnFile, Day, Decision, Digits, Money, Prompt, ScheduledView, Word

MAX_LISTED_ACCOUNTS = 8  # keys 1-8; 9 is "enter another account number"
PAY_ATTEMPT_LIMIT = 3  # cards a caller may try in one call
IDENTIFY_ATTEMPT_LIMIT = 3
HISTORY_LENGTH = 3  # past payments said when the caller asks for them
# [0-9], not \d: only a keypad's ASCII digits are keys (\d and isdigit() take any script's digits).
_AMOUNT = re.compile(r"([0-9]{1,7})(?:\*([0-9]{1,2}))?")
_DIGITS = re.compile(r"[0-9]+")


# --- language and identification -------------------------------------------------------------

def choose_language(digits: str, ctx: CallContext) -> Decision:
    """"2" picks Spanish for the rest of the call; anything else, or silence, continues in English."""
    if digits == "2":
        return Decision("chosen", {"language": "es", "language_chosen": True})
    return Decision("chosen", {"language": "en", "language_chosen": digits == "1"})


def route_by_caller_id(_: str, ctx: CallContext) -> Decision:
    """Offer the account on file for this caller ID, list several, or ask for the number.

    Accounts already paid on this call are left out: a caller paying another one is not offered
    the one they just paid.
    """
    paid = set(ctx.data.get("paid_accounts") or ())
    accounts = [a for a in ctx.caller_accounts() if a.account_number not in paid]
    if len(accounts) == 1:
        return Decision("one", {"candidate": accounts[0].account_number})
    if len(accounts) > 1:
        listed = [a.account_number for a in accounts[:MAX_LISTED_ACCOUNTS]]
        return Decision("several", {"choices": listed})
    return Decision("none")


def pick_listed_account(digits: str, ctx: CallContext) -> Decision:
    """A key 1..n picks that listed account; 9 asks for the number instead."""
    choices = list(ctx.data.get("choices", []))
    if digits == "9":
        return Decision("other")
    if _DIGITS.fullmatch(digits) and 1 <= int(digits) <= len(choices):
        return Decision("picked", {"candidate": choices[int(digits) - 1]})
    return Decision("invalid")


def take_account_number(digits: str, ctx: CallContext) -> Decision:
    """Keep whatever number was keyed; whether it exists is only revealed together with the last four."""
    if not _DIGITS.fullmatch(digits) or not 4 <= len(digits) <= 20:
        return Decision("invalid", say=(Prompt("account_number_invalid"),))
    return Decision("taken", {"candidate": digits})


def verify_caller(digits: str, ctx: CallContext) -> Decision:
    """Check account + last four of the phone on file; unknown, wrong and locked all get the same words."""
    if not (len(digits) == 4 and _DIGITS.fullmatch(digits)):
        return Decision("invalid", say=(Prompt("enter_four_digits"),))
    return _check_factor(digits, "last4", ctx, Prompt("no_match"))


def caller_id_factor(_: str, ctx: CallContext) -> Decision:
    """The caller ID picked the account, so ask for what it does not reveal: the service ZIP code
    when the accounts file has one, else the full account number (never the phone's last four)."""
    candidate = str(ctx.data.get("candidate", ""))
    view = next((a for a in ctx.caller_accounts() if a.account_number == candidate), None)
    return Decision("zip" if view is not None and view.zip else "account")


def verify_zip(digits: str, ctx: CallContext) -> Decision:
    """Check the caller-ID account's service ZIP code; wrong and locked get the same words."""
    if not (len(digits) == 5 and _DIGITS.fullmatch(digits)):
        return Decision("invalid", say=(Prompt("enter_five_digits"),))
    return _check_factor(digits, "zip", ctx, Prompt("second_factor_no_match"))


def verify_full_account(digits: str, ctx: CallContext) -> Decision:
    """Check the caller-ID account's full account number; wrong and locked get the same words."""
    if not _DIGITS.fullmatch(digits) or not 4 <= len(digits) <= 20:
        return Decision("invalid", say=(Prompt("account_number_invalid"),))
    return _check_factor(digits, "account", ctx, Prompt("second_factor_no_match"))


def _check_factor(answer: str, factor: str, ctx: CallContext, miss: Prompt) -> Decision:
    """Verify the candidate account with ``factor``; a miss counts toward the call's limit and
    starts again from the account number (the lockout itself is counted by ``ctx.verify``)."""
    if ctx.verify(str(ctx.data.get("candidate", "")), answer, factor):
        return Decision("verified", {"identified": True, "id_failures": 0})
    failures = int(ctx.data.get("id_failures", 0)) + 1
    if failures >= IDENTIFY_ATTEMPT_LIMIT:
        return Decision("exhausted", {"id_failures": failures, "candidate": None})
    return Decision("retry", {"id_failures": failures, "candidate": None}, say=(miss,))


def route_account(_: str, ctx: CallContext) -> Decision:
    """Once identified: office-only accounts, nothing due, or the balance. Adopt the member's language."""
    account = ctx.account()
    assert account is not None, "ACCOUNT_CHECK and CALLBACK_START are only reached once identified"
    updates: dict[str, object] = {}
    if account.language == "es" and not ctx.data.get("language_chosen"):
        updates["language"] = "es"
    if account.status != "active":
        return Decision("office_only", updates)
    if account.balance_cents <= 0:
        return Decision("nothing_due", updates)
    return Decision("owes", updates)


def agent_or_goodbye(_: str, ctx: CallContext) -> Decision:
    """Hand a caller who could not get through to the agent when there is one."""
    return Decision("agent" if ctx.agent_available else "goodbye")


def back_to_agent_or_goodbye(_: str, ctx: CallContext) -> Decision:
    """After the payment step: back to the agent who transferred the caller, else goodbye."""
    return Decision("return" if ctx.data.get("return_to") else "goodbye")


# --- amount ----------------------------------------------------------------------------------

def max_payment(ctx: CallContext) -> int:
    """The largest amount a caller may pay: the balance unless the co-op set a limit."""
    account = ctx.account()
    balance = account.balance_cents if account else 0
    return ctx.max_payment_cents if ctx.max_payment_cents is not None else balance


def pay_full_balance(digits: str, ctx: CallContext) -> Decision:
    """"1" pays the whole balance, "2" asks for another amount (the reminder callback's menu)."""
    account = ctx.account()
    if digits == "1" and account is not None:
        return Decision("full", {"amount_cents": account.balance_cents})
    if digits == "2":
        return Decision("other")
    return Decision("invalid")


def parse_amount(digits: str, ctx: CallContext) -> Decision:
    """Dollars keyed with ``*`` as the decimal point: "50*25" is $50.25; checked against the limits."""
    match = _AMOUNT.fullmatch(digits)
    if not match:
        return Decision("invalid", say=(Prompt("amount_malformed"),))
    cents = int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))
    low, high = ctx.min_payment_cents, max_payment(ctx)
    if cents < low or cents > high:
        return Decision(
            "invalid",
            say=(Prompt("amount_out_of_range", {"minimum": Money(low), "maximum": Money(high)}),),
        )
    return Decision("ok", {"amount_cents": cents})


# --- the summary menu ------------------------------------------------------------------------
# Declared once, in the order it is said. Full balance first; the past-due amount beside it when
# there is one to offer; 3 always hears the last payments; "a different amount" takes the key
# left over (2, or 4 when 2 is the past-due amount). Each option names its outcome label (the
# table's SUMMARY row routes it), its key, its words and when it is offered.


def offers_past_due(ctx: CallContext) -> bool:
    """A past-due amount worth its own option: part of the balance, and within the payment limits."""
    account = ctx.account()
    if account is None or not 0 < account.past_due_cents < account.balance_cents:
        return False
    return ctx.min_payment_cents <= account.past_due_cents <= max_payment(ctx)


def _always(ctx: CallContext) -> bool:
    return True


def _without_past_due(ctx: CallContext) -> bool:
    return not offers_past_due(ctx)


@dataclass(frozen=True)
class MenuOption:
    """One option of a spoken menu: its outcome label, its key, its prompt, and when it is offered."""

    label: str
    key: str
    prompt: str
    offered: Callable[[CallContext], bool] = _always


SUMMARY_MENU: tuple[MenuOption, ...] = (
    MenuOption("full", "1", "menu_full_balance"),
    MenuOption("past_due", "2", "menu_past_due", offered=offers_past_due),
    MenuOption("other", "2", "menu_other_amount", offered=_without_past_due),
    MenuOption("history", "3", "menu_history"),
    MenuOption("other", "4", "menu_other_amount", offered=offers_past_due),
    MenuOption("later", "5", "menu_later"),  # scheduled payments and autopay
)


def summary_menu(ctx: CallContext) -> list[MenuOption]:
    """The summary menu's options this caller is offered, in the order they are said."""
    return [option for option in SUMMARY_MENU if option.offered(ctx)]


# What a caller may say for each summary option (flows/speech.py INTENT_WORDS).
_SUMMARY_INTENTS = {"full": ("pay", "balance"), "past_due": ("past_due",), "other": ("other",), "history": ("history",), "later": ("later",)}


def summary_words(ctx: CallContext) -> dict[str, str]:
    """The summary menu's spoken choices and the keys they stand for (the keys move with a past-due option)."""
    return {intent: option.key for option in summary_menu(ctx) for intent in _SUMMARY_INTENTS[option.label]}


def _menu_amount(label: str, account: AccountView) -> int | None:
    """The amount an option pays, when it pays a set amount."""
    return {"full": account.balance_cents, "past_due": account.past_due_cents}.get(label)


def choose_from_summary(digits: str, ctx: CallContext) -> Decision:
    """The option whose key was pressed; one that pays a set amount keeps it for the card step."""
    account = ctx.account()
    assert account is not None, "SUMMARY is only reached once identified"
    for option in summary_menu(ctx):
        if option.key == digits:
            amount = _menu_amount(option.label, account)
            return Decision(option.label, {} if amount is None else {"amount_cents": amount})
    return Decision("invalid")


# --- payment history -------------------------------------------------------------------------

# How each channel's payment is said; a channel without words of its own is "by card".
_PAID_BY = {"ivr": "paid_by_phone", "agent": "paid_with_agent", "callback": "paid_on_our_call", "sms": "paid_by_text",
            "scheduled": "paid_scheduled", "autopay": "paid_autopay"}


def payment_history(ctx: CallContext) -> tuple[Prompt, ...]:
    """The account's last payments, newest first: local day, amount and how; then the way back."""
    paid = ctx.recent_payments(HISTORY_LENGTH)
    if not paid:
        said = [Prompt("history_none")]
    elif len(paid) == 1:
        said = [Prompt("history_intro_one")]
    else:
        said = [Prompt("history_intro", {"count": len(paid)})]
    for payment in paid:
        params = {"amount": Money(payment.amount_cents), "day": Day(payment.day)}
        said.append(Prompt(_PAID_BY.get(payment.channel, "paid_other"), params))
    return tuple(said) + history_options(ctx)


def history_options(ctx: CallContext) -> tuple[Prompt, ...]:
    """Back to the menu, or the payments again (the history's re-prompt)."""
    return (Prompt("history_options"),)


# --- convenience fee -------------------------------------------------------------------------

def fee_or_card(_: str, ctx: CallContext) -> Decision:
    """Before card entry: offer the co-op's convenience fee when it charges one, else go straight on.

    Either way nothing is accepted yet (``fee_cents`` 0): only the caller's key accepts a fee, and
    it accepts the fee it was offered (``fee_offered_cents``), should the setting change meanwhile.
    """
    fee = ctx.convenience_fee_cents
    if fee > 0:
        return Decision("fee", {"fee_cents": 0, "fee_offered_cents": fee})
    return Decision("no_fee", {"fee_cents": 0})


def fee_offer(ctx: CallContext) -> tuple[Prompt, ...]:
    """The fee, what goes to the bill and the total the card will be charged; then the choices."""
    amount, fee = int(ctx.data.get("amount_cents", 0)), int(ctx.data.get("fee_offered_cents", 0))
    return (
        Prompt("fee_offer", {"fee": Money(fee), "amount": Money(amount), "total": Money(amount + fee)}),
        Prompt("fee_options"),
    )


def accept_fee(digits: str, ctx: CallContext) -> Decision:
    """"1" accepts the fee said and goes on to the card; "2" goes back to the menu; "9" ends the call."""
    if digits == "1":
        return Decision("accepted", {"fee_cents": int(ctx.data.get("fee_offered_cents", 0))})
    if digits == "2":
        return Decision("back")
    if digits == "9":
        return Decision("end")
    return Decision("invalid")


# --- card ------------------------------------------------------------------------------------

def retry_card(digits: str, ctx: CallContext) -> Decision:
    """"1" tries another card while attempts remain; "9" ends the call."""
    if digits == "1":
        if int(ctx.data.get("pay_attempts", 0)) >= PAY_ATTEMPT_LIMIT:
            return Decision("no_more", say=(Prompt("card_attempts_exhausted"),))
        return Decision("again")
    if digits == "9":
        return Decision("done")
    return Decision("invalid")


def back_out_of_card(_: str, ctx: CallContext) -> Decision:
    """"*" during card entry: transferred callers hear the agent's amount again, others the menu."""
    return Decision("transfer" if ctx.data.get("transfer_id") else "menu")


# --- after a payment -------------------------------------------------------------------------

def offers_another_account(ctx: CallContext) -> bool:
    """Another account may be paid on the same call, unless an agent sent the caller here."""
    return not ctx.data.get("transfer_id")


def after_approval(digits: str, ctx: CallContext) -> Decision:
    """"1" hears the confirmation number again; "2" pays another account (when offered)."""
    if digits == "1":
        return Decision("again")
    if digits == "2" and offers_another_account(ctx):
        return Decision("another")
    return Decision("invalid")


def start_another_account(_: str, ctx: CallContext) -> Decision:
    """Forget the account just paid and identify the next one from the start.

    ``identified`` False tells the web layer to drop the call's account, so the next one needs its
    own account number and last four (the lockout counts as for any identification). The card
    attempts start again: they are counted per account paid.
    """
    paid = list(ctx.data.get("paid_accounts") or [])
    account = ctx.account()
    if account is not None and account.account_number not in paid:
        paid.append(account.account_number)
    return Decision(
        "identify",
        {
            "identified": False,
            "paid_accounts": paid,
            "candidate": None,
            "choices": [],
            "id_failures": 0,
            "amount_cents": 0,
            "fee_cents": 0,
            "pay_attempts": 0,
            "decline_code": None,
            "paid_cents": 0,
            "paid_fee_cents": 0,
            "confirmation_number": None,
            "payment_id": None,
            # The card on file is the next account's own: none offered, failed or to be saved yet.
            "on_file_brand": None,
            "on_file_last4": None,
            "saved_card_failed": False,
            "card_savable": False,
        },
    )


# --- what is said ----------------------------------------------------------------------------

def welcome(ctx: CallContext) -> tuple[Prompt, ...]:
    """The bilingual greeting: English, then the Spanish option in a Spanish voice."""
    return (Prompt("welcome", lang="en"), Prompt("spanish_option", lang="es"))


def how_keys_work(ctx: CallContext) -> tuple[Prompt, ...]:
    """Said once, before identification: star repeats, and 0 reaches a person when there is one.

    Not again when the caller pays another account: they have heard it.
    """
    if ctx.data.get("paid_accounts"):
        return ()
    return (Prompt("keys_help_agent" if ctx.agent_available else "keys_help"),)


def offer_caller_id(ctx: CallContext) -> tuple[Prompt, ...]:
    """Offer the one account linked to the caller ID, without its digits.

    Its last four would tell a spoofed caller ID half of what the full-account second factor asks;
    only a caller paying another account on this call hears them, to tell the two apart.
    """
    if ctx.data.get("paid_accounts"):
        return (Prompt("offer_caller_id_other", {"last4": Digits(str(ctx.data.get("candidate", ""))[-4:])}),)
    return (Prompt("offer_caller_id"),)


def list_accounts(ctx: CallContext) -> tuple[Prompt, ...]:
    """Say how many accounts are on this phone and the key for each."""
    choices = list(ctx.data.get("choices", []))
    return (Prompt("several_accounts", {"count": len(choices)}),) + account_options(ctx)


def account_options(ctx: CallContext) -> tuple[Prompt, ...]:
    """The key for each listed account and for another one (the list's re-prompt)."""
    choices = list(ctx.data.get("choices", []))
    prompts = [Prompt("account_option", {"last4": Digits(number[-4:]), "choice": Digits(str(index))})
               for index, number in enumerate(choices, start=1)]
    prompts.append(Prompt("account_other_option"))
    return tuple(prompts)


def account_summary(ctx: CallContext) -> tuple[Prompt, ...]:
    """Balance, due date and any past-due amount, in words; then the summary menu."""
    account = ctx.account()
    assert account is not None
    # No "press star to hear this again" here: the caller was told once, before identification.
    return _balance(account) + summary_options(ctx)


def summary_options(ctx: CallContext) -> tuple[Prompt, ...]:
    """The summary menu's choices alone (its re-prompt: the balance is a "*" away)."""
    account = ctx.account()
    assert account is not None
    options = []
    for option in summary_menu(ctx):
        params: dict[str, object] = {"choice": Digits(option.key)}
        amount = _menu_amount(option.label, account)
        if amount is not None:
            params["amount"] = Money(amount)
        options.append(Prompt(option.prompt, params))
    return tuple(options)


def nothing_due(ctx: CallContext) -> tuple[Prompt, ...]:
    """A zero or credit balance, said as such, with no payment offered."""
    account = ctx.account()
    assert account is not None
    if account.balance_cents < 0:
        return (Prompt("credit_balance", {"amount": Money(-account.balance_cents)}), Prompt("goodbye"))
    return (Prompt("zero_balance"), Prompt("goodbye"))


def _balance(account: AccountView) -> tuple[Prompt, ...]:
    if account.due_date is not None:
        said = [Prompt("balance_due", {"amount": Money(account.balance_cents), "due": Day(account.due_date)})]
    else:
        said = [Prompt("balance", {"amount": Money(account.balance_cents)})]
    if account.past_due_cents > 0:
        said.append(Prompt("past_due", {"amount": Money(account.past_due_cents)}))
    return tuple(said)


def enter_amount(ctx: CallContext) -> tuple[Prompt, ...]:
    """How to key an amount, with the allowed range."""
    return (
        Prompt(
            "enter_amount",
            {"minimum": Money(ctx.min_payment_cents), "maximum": Money(max_payment(ctx))},
        ),
    )


def enter_amount_again(ctx: CallContext) -> tuple[Prompt, ...]:
    """How to key an amount, without the example and the range (the amount's re-prompt)."""
    return (Prompt("enter_amount_again"),)


def confirm_amount(ctx: CallContext) -> tuple[Prompt, ...]:
    """Read the keyed amount back."""
    return (Prompt("confirm_amount", {"amount": Money(int(ctx.data.get("amount_cents", 0)))}),)


def card_intro(ctx: CallContext) -> tuple[Prompt, ...]:
    """Say what is being paid (with an accepted fee and the total) before the card prompts start."""
    amount, fee = int(ctx.data.get("amount_cents", 0)), int(ctx.data.get("fee_cents") or 0)
    if fee:
        return (Prompt("card_intro_fee", {"amount": Money(amount), "fee": Money(fee), "total": Money(amount + fee)}),)
    return (Prompt("card_intro", {"amount": Money(amount)}),)


def card_declined(ctx: CallContext) -> tuple[Prompt, ...]:
    """The decline in plain words, then what the caller can do."""
    reason = {
        "insufficient_funds": "declined_insufficient_funds",
        "expired_card": "declined_expired_card",
        "incorrect_cvc": "declined_incorrect_cvc",
        "invalid_cvc": "declined_incorrect_cvc",
    }.get(str(ctx.data.get("decline_code")), "declined_generic")
    return (Prompt(reason),) + card_options(ctx)


def card_unreadable(ctx: CallContext) -> tuple[Prompt, ...]:
    """<Pay> gave up on the card details."""
    return (Prompt("card_unreadable"),) + card_options(ctx)


def processor_down(ctx: CallContext) -> tuple[Prompt, ...]:
    """The processor could not be reached; nothing was charged."""
    return (Prompt("processor_down"),) + card_options(ctx)


def card_options(ctx: CallContext) -> tuple[Prompt, ...]:
    """Try another card, reach an agent (when there is one), or end the call."""
    options = [Prompt("try_another_card")]
    if ctx.agent_available:
        options.append(Prompt("agent_option"))
    options.append(Prompt("end_call_option"))
    return tuple(options)


def payment_approved(ctx: CallContext) -> tuple[Prompt, ...]:
    """The approval (with its fee), the confirmation number digit by digit, and what comes next."""
    params: dict[str, object] = {
        "amount": Money(int(ctx.data.get("paid_cents", 0))),
        "confirmation": Digits(str(ctx.data.get("confirmation_number", ""))),
    }
    fee = int(ctx.data.get("paid_fee_cents") or 0)
    if fee:
        params["fee"] = Money(fee)
    said = (Prompt("payment_approved_fee" if fee else "payment_approved", params), Prompt("receipt_coming"))
    # "1 to hear it again" waits for the re-prompt: the caller was told early that * repeats.
    return said + _another_account_option(ctx)


def _another_account_option(ctx: CallContext) -> tuple[Prompt, ...]:
    return (Prompt("another_account_option"),) if offers_another_account(ctx) else ()


def approval_options(ctx: CallContext) -> tuple[Prompt, ...]:
    """Hear the confirmation number again; pay another account when offered (the approval's re-prompt)."""
    return (Prompt("hear_again"),) + _another_account_option(ctx)


def transfer_confirm(ctx: CallContext) -> tuple[Prompt, ...]:
    """An agent sent the caller here: say the amount and ask for 1 to continue."""
    return (
        Prompt("transfer_intro", {"amount": Money(int(ctx.data.get("amount_cents", 0)))}),
    )


def callback_welcome(ctx: CallContext) -> tuple[Prompt, ...]:
    """A reminder callback: who is calling, for which account, and the balance."""
    account = ctx.account()
    assert account is not None
    return (
        Prompt(
            "callback_intro",
            {"last4": Digits(account.last4), "amount": Money(account.balance_cents)},
        ),
    )


def confirm_transfer(digits: str, ctx: CallContext) -> Decision:
    """"1" goes on to card entry with the amount the agent set."""
    return Decision("yes") if digits == "1" else Decision("invalid")


def callback_menu(digits: str, ctx: CallContext) -> Decision:
    """"1" pays the full balance; "2" another amount."""
    return pay_full_balance(digits, ctx)


# --- the card on file ------------------------------------------------------------------------
# Chosen once the amount is set (CARD_CHOICE), before any <Pay>; offered after a keyed payment
# (AFTER_PAYMENT). Charging, saving and forgetting are the web layer's (``Act`` steps).

BRANDS = ("visa", "mastercard", "amex", "discover")  # said by name; any other brand is "card"


def brand_word(brand: object) -> Word:
    """The catalogue key that says a card's brand ("Visa", "tarjeta Visa"); "card" for any other."""
    return Word(f"brand_{brand}" if brand in BRANDS else "brand_other")


def card_choice(_: str, ctx: CallContext) -> Decision:
    """Offer the card on file when the account has one (and it was not declined on this call), else the keypad.

    The card offered is remembered, so the words never change and the web layer charges only that card.
    """
    card = ctx.card_on_file()
    if card is None or ctx.data.get("saved_card_failed"):
        return Decision("keypad")
    return Decision("on_file", {"on_file_brand": card.brand, "on_file_last4": card.last4})


def _on_file(ctx: CallContext) -> dict[str, object]:
    """The card offered on this call, for the prompts that name it."""
    return {"card": brand_word(ctx.data.get("on_file_brand")), "last4": Digits(str(ctx.data.get("on_file_last4") or ""))}


def _to_charge(ctx: CallContext) -> Money:
    """What the card will be charged: the amount, and a convenience fee the caller accepted."""
    return Money(int(ctx.data.get("amount_cents") or 0) + int(ctx.data.get("fee_cents") or 0))


def saved_card_choice(ctx: CallContext) -> tuple[Prompt, ...]:
    """The sum to charge with the card on file by brand and last four; another card; forgetting it."""
    return (Prompt("saved_card_choice", {"amount": _to_charge(ctx), **_on_file(ctx)}),)


def keypad_options(ctx: CallContext) -> tuple[Prompt, ...]:
    """Pay the amount with a card keyed on the phone, reach an agent (when there is one), or end the call."""
    options = [Prompt("keypad_option", {"amount": _to_charge(ctx)})]
    if ctx.agent_available:
        options.append(Prompt("agent_option"))
    options.append(Prompt("end_call_option"))
    return tuple(options)


def saved_card_declined(ctx: CallContext) -> tuple[Prompt, ...]:
    """The card on file did not pay, said plainly (a bank wanting to authenticate has its own words); then the keypad."""
    needs_bank = ctx.data.get("decline_code") == "authentication_required"
    said = Prompt("saved_card_needs_authentication" if needs_bank else "saved_card_declined", _on_file(ctx))
    return (said, *keypad_options(ctx))


def card_forgotten(ctx: CallContext) -> tuple[Prompt, ...]:
    """The card on file is gone for good; the payment can still be made on the keypad."""
    return (Prompt("card_forgotten"),) + keypad_options(ctx)


def offer_to_save_or_leave(digits: str, ctx: CallContext) -> Decision:
    """After the payment step: once, offer to keep a card just approved on the keypad; then as before.

    Not on a call an agent sent here: the member goes back to the agent without more questions.
    """
    if ctx.data.get("card_savable") and ctx.data.get("payment_id") and not ctx.data.get("transfer_id"):
        return Decision("save_offer", {"card_savable": False})  # asked once, whatever the answer
    return back_to_agent_or_goodbye(digits, ctx)


def save_card_offer(ctx: CallContext) -> tuple[Prompt, ...]:
    """Ask to keep the card just approved; when one is on file already, say which it replaces.

    These are the words the member agrees to: the web layer records them with the card.
    """
    card = ctx.card_on_file()
    if card is None:
        return (Prompt("save_card_offer"),)
    return (Prompt("save_card_replace_offer",
                   {"card": brand_word(card.brand), "last4": Digits(str(card.last4 or ""))}),)


# --- paying later: scheduled payments and autopay --------------------------------------------
# Reached with SUMMARY's key 5. Today and the due date are days in the co-op's time zone; a payment
# may be scheduled from today up to the due date, and cancelled until 24 hours before it is charged.

MAX_LISTED_SCHEDULED = 8  # keys 1-8 pick a scheduled payment; 9 goes back


def pay_day_problem(day: date, today: date, due: date | None) -> str | None:
    """Why ``day`` cannot be a scheduled payment's day (``past``, ``after_due``, ``no_due_date``), else None."""
    if due is None or due < today:
        return "no_due_date"
    if day < today:
        return "past"
    if day > due:
        return "after_due"
    return None


def can_schedule(ctx: CallContext) -> bool:
    """A payment can be scheduled: the bill has a due date that is today or later."""
    account = ctx.account()
    return account is not None and account.due_date is not None and account.due_date >= ctx.later.view().today


def _card(card: CardOnFile) -> dict[str, object]:
    """A card on file's words for a prompt: ``{card}`` its brand, ``{last4}`` digit by digit."""
    return {"card": brand_word(card.brand), "last4": Digits(str(card.last4 or ""))}


def later_menu(ctx: CallContext) -> tuple[Prompt, ...]:
    """Autopay's state and the scheduled payments, then the options this account has."""
    view = ctx.later.view()
    card = ctx.card_on_file()
    said: list[Prompt] = []
    if view.autopay:
        said.append(Prompt("autopay_is_on", _card(card)) if card else Prompt("autopay_is_on_no_card"))
    if len(view.scheduled) == 1:
        said.append(Prompt("scheduled_count_one"))
    elif view.scheduled:
        said.append(Prompt("scheduled_count", {"count": len(view.scheduled)}))
    if can_schedule(ctx):
        said.append(Prompt("later_option_schedule"))
    else:
        said.append(Prompt("later_cannot_schedule"))
    if view.scheduled:
        said.append(Prompt("later_option_hear_scheduled"))
    if view.autopay:
        said.append(Prompt("later_option_stop_autopay"))
    elif card is not None:
        said.append(Prompt("later_option_autopay", _card(card)))
    else:
        said.append(Prompt("autopay_needs_card"))
    said.append(Prompt("later_option_back"))
    return tuple(said)


def choose_later(digits: str, ctx: CallContext) -> Decision:
    """"1" schedules a payment, "2" hears the scheduled ones, "3" turns autopay on or off, "9" goes back."""
    view = ctx.later.view()
    if digits == "1" and can_schedule(ctx):
        return Decision("schedule")
    if digits == "2" and view.scheduled:
        return Decision("scheduled")
    if digits == "3" and view.autopay:
        return Decision("autopay_off")
    if digits == "3" and ctx.card_on_file() is not None:
        return Decision("autopay_on")
    if digits == "9":
        return Decision("back")
    return Decision("invalid")


def schedule_amount_menu(ctx: CallContext) -> tuple[Prompt, ...]:
    """Which amount to schedule: the balance, the past-due amount when there is one, or another."""
    account = ctx.account()
    assert account is not None
    said = [Prompt("schedule_full_option", {"amount": Money(account.balance_cents)})]
    if offers_past_due(ctx):
        said.append(Prompt("schedule_past_due_option", {"amount": Money(account.past_due_cents)}))
    said.append(Prompt("schedule_other_option"))
    return tuple(said)


def choose_schedule_amount(digits: str, ctx: CallContext) -> Decision:
    """"1" the balance, "2" the past-due amount (when offered), "3" another amount."""
    account = ctx.account()
    assert account is not None
    if digits == "1":
        return Decision("set", {"amount_cents": account.balance_cents})
    if digits == "2" and offers_past_due(ctx):
        return Decision("set", {"amount_cents": account.past_due_cents})
    if digits == "3":
        return Decision("other")
    return Decision("invalid")


def _pay_on(ctx: CallContext) -> date:
    return date.fromisoformat(str(ctx.data.get("pay_on")))


def schedule_date_prompt(ctx: CallContext) -> tuple[Prompt, ...]:
    """How to key the day, with the due date (the latest day) as the example."""
    account = ctx.account()
    assert account is not None and account.due_date is not None
    due = account.due_date
    return (Prompt("schedule_date", {"due": Day(due), "example": Digits(f"{due.month:02d}{due.day:02d}")}),)


def parse_pay_date(digits: str, ctx: CallContext) -> Decision:
    """Four digits, month then day: a real day from today up to the due date."""
    account = ctx.account()
    assert account is not None
    today = ctx.later.view().today
    if not (len(digits) == 4 and digits.isdigit()):
        return Decision("invalid", say=(Prompt("schedule_date_malformed"),))
    month, day = int(digits[:2]), int(digits[2:])
    try:
        chosen = date(today.year, month, day)
    except ValueError:
        return Decision("invalid", say=(Prompt("schedule_date_not_a_date"),))
    if chosen < today and account.due_date is not None:
        # Keyed in December for a bill due in January: the month is next year's.
        try:
            next_year = date(today.year + 1, month, day)
        except ValueError:
            next_year = None
        if next_year is not None and next_year <= account.due_date:
            chosen = next_year
    problem = pay_day_problem(chosen, today, account.due_date)
    if problem == "past":
        return Decision("invalid", say=(Prompt("schedule_date_past"),))
    if problem is not None:
        return Decision("invalid", say=(Prompt("schedule_date_after_due", {"due": Day(account.due_date)}),))
    return Decision("ok", {"pay_on": chosen.isoformat()})


def schedule_readback(ctx: CallContext) -> tuple[Prompt, ...]:
    """The amount, the day in words and the card; then confirm, change the day, or cancel."""
    card = ctx.card_on_file()
    params = {"amount": Money(int(ctx.data.get("amount_cents", 0))), "day": Day(_pay_on(ctx))}
    if card is not None:
        said = Prompt("schedule_readback_saved_card", {**params, **_card(card)})
    else:
        said = Prompt("schedule_readback_new_card", params)
    return (said, Prompt("schedule_confirm_options"))


def confirm_schedule(digits: str, ctx: CallContext) -> Decision:
    """"1" schedules it (with the card on file, or asks for a card), "2" another day, "9" cancels."""
    if digits == "1":
        if ctx.card_on_file() is None:
            return Decision("card", {"schedule_card_attempts": 0})
        scheduled = ctx.later.schedule(int(ctx.data.get("amount_cents", 0)), _pay_on(ctx))
        if scheduled is None:
            return Decision("refused", say=(Prompt("schedule_refused"),))
        return Decision("scheduled", {"scheduled_id": scheduled.id, "scheduled_cancellable": scheduled.cancellable})
    if digits == "2":
        return Decision("change_date")
    if digits == "9":
        return Decision("cancel", say=(Prompt("schedule_nothing_scheduled"),))
    return Decision("invalid")


def schedule_card_intro(ctx: CallContext) -> tuple[Prompt, ...]:
    """Before the card prompts: the card is kept for that day's payment, not charged now."""
    return (Prompt("schedule_card_intro", {"day": Day(_pay_on(ctx))}),)


def schedule_card_problem(ctx: CallContext) -> tuple[Prompt, ...]:
    """The card could not be kept for the later payment; nothing is scheduled; what now."""
    return (Prompt("schedule_card_problem"), Prompt("try_another_card"), Prompt("later_option_back"))


def retry_schedule_card(digits: str, ctx: CallContext) -> Decision:
    """"1" tries a card again while attempts remain; "9" goes back to the paying-later menu."""
    if digits == "1":
        if int(ctx.data.get("schedule_card_attempts", 0)) >= PAY_ATTEMPT_LIMIT:
            return Decision("back", say=(Prompt("card_attempts_exhausted"),))
        return Decision("again")
    if digits == "9":
        return Decision("back")
    return Decision("invalid")


def scheduled_done(ctx: CallContext) -> tuple[Prompt, ...]:
    """The payment is scheduled: amount and day again, the receipt, until when it can be cancelled."""
    params = {"amount": Money(int(ctx.data.get("amount_cents", 0))), "day": Day(_pay_on(ctx))}
    cancel = "scheduled_cancel_until" if ctx.data.get("scheduled_cancellable") else "scheduled_cannot_cancel"
    return (Prompt("scheduled_done", params), Prompt(cancel), Prompt("later_done_options"))


def _listed(ctx: CallContext) -> tuple[ScheduledView, ...]:
    return ctx.later.view().scheduled[:MAX_LISTED_SCHEDULED]


def scheduled_list(ctx: CallContext) -> tuple[Prompt, ...]:
    """Each upcoming payment with its amount and day, and the key that cancels it while it still can be."""
    listed = _listed(ctx)
    if not listed:
        return (Prompt("scheduled_none"), Prompt("later_option_back"))
    said = []
    for key, scheduled in enumerate(listed, start=1):
        params = {"amount": Money(scheduled.amount_cents), "day": Day(scheduled.pay_on)}
        if scheduled.cancellable:
            said.append(Prompt("scheduled_item", {**params, "choice": key}))
        else:
            said.append(Prompt("scheduled_item_locked", params))
    return (*said, Prompt("later_option_back"))


def pick_scheduled(digits: str, ctx: CallContext) -> Decision:
    """A listed payment's key asks to cancel it (until 24 hours before); "9" goes back."""
    if digits == "9":
        return Decision("back")
    listed = _listed(ctx)
    if digits.isdigit() and 1 <= int(digits) <= len(listed):
        scheduled = listed[int(digits) - 1]
        if not scheduled.cancellable:
            return Decision("invalid", say=(Prompt("scheduled_too_late"),))
        return Decision("picked", {"cancel_id": scheduled.id})
    return Decision("invalid")


def _picked(ctx: CallContext) -> ScheduledView | None:
    wanted = ctx.data.get("cancel_id")
    return next((s for s in ctx.later.view().scheduled if s.id == wanted), None)


def scheduled_cancel_prompt(ctx: CallContext) -> tuple[Prompt, ...]:
    """Which payment would be cancelled, and the keys to cancel or keep it."""
    picked = _picked(ctx)
    if picked is None:  # cancelled meanwhile (another call, or staff)
        return (Prompt("scheduled_gone"), Prompt("scheduled_back_to_list"))
    return (Prompt("scheduled_cancel_confirm", {"amount": Money(picked.amount_cents), "day": Day(picked.pay_on)}),)


def confirm_cancel_scheduled(digits: str, ctx: CallContext) -> Decision:
    """"1" cancels the picked payment (if still more than 24 hours away), "2" keeps it."""
    if digits == "2":
        return Decision("kept")
    if digits != "1":
        return Decision("invalid")
    picked = _picked(ctx)
    outcome = ctx.later.cancel_scheduled(int(ctx.data.get("cancel_id") or 0))
    if outcome == "cancelled" and picked is not None:
        params = {"amount": Money(picked.amount_cents), "day": Day(picked.pay_on)}
        return Decision("cancelled", {"cancel_id": None}, say=(Prompt("scheduled_cancelled", params),))
    if outcome == "too_late":
        return Decision("cancelled", {"cancel_id": None}, say=(Prompt("scheduled_too_late"),))
    return Decision("cancelled", {"cancel_id": None}, say=(Prompt("scheduled_gone"),))


def autopay_terms(ctx: CallContext) -> tuple[Prompt, ...]:
    """Autopay's terms, which the caller agrees to with a key (kept word for word as the consent)."""
    view = ctx.later.view()
    card = ctx.card_on_file()
    assert card is not None, "autopay is offered only with a card on file"
    account = ctx.account()
    assert account is not None
    said = [Prompt("autopay_terms", _card(card))]
    if account.due_date is not None and account.due_date >= view.autopay_first_due and account.balance_cents > 0:
        said.append(Prompt("autopay_first_bill", {"due": Day(account.due_date)}))
    else:
        said.append(Prompt("autopay_next_bill"))
    said.append(Prompt("autopay_stop_any_time"))
    return (*said, Prompt("autopay_agree"))


def agree_autopay(digits: str, ctx: CallContext) -> Decision:
    """"1" turns autopay on with the terms just heard; "9" goes back."""
    if digits == "9":
        return Decision("back")
    if digits != "1":
        return Decision("invalid")
    if not ctx.later.enrol_autopay(autopay_terms(ctx)):  # the words as heard, the key's sentence included
        return Decision("back", say=(Prompt("autopay_refused"),))
    return Decision("back", say=(Prompt("autopay_enrolled"),))


def autopay_stop_prompt(ctx: CallContext) -> tuple[Prompt, ...]:
    """Autopay is on: the keys to stop or keep it."""
    return (Prompt("autopay_stop_confirm"),)


def confirm_stop_autopay(digits: str, ctx: CallContext) -> Decision:
    """"1" stops autopay (no bill is charged by it afterwards), "2" keeps it."""
    if digits == "2":
        return Decision("back")
    if digits != "1":
        return Decision("invalid")
    stopped = ctx.later.stop_autopay()
    return Decision("back", say=(Prompt("autopay_stopped" if stopped else "autopay_was_off"),))


def later_done(digits: str, ctx: CallContext) -> Decision:
    """After scheduling: "1" back to the paying-later menu, "9" ends the call."""
    if digits == "1":
        return Decision("menu")
    if digits == "9":
        return Decision("end")
    return Decision("invalid")
