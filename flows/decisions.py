"""Named decisions and spoken summaries used by the flow table. Pure: they only read ``CallContext``."""

import re

from .steps import AccountView, CallContext, Day, Decision, Digits, Money, Prompt

MAX_LISTED_ACCOUNTS = 8  # keys 1-8; 9 is "enter another account number"
PAY_ATTEMPT_LIMIT = 3  # cards a caller may try in one call
IDENTIFY_ATTEMPT_LIMIT = 3
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
    """Offer the account on file for this caller ID, list several, or ask for the number."""
    accounts = ctx.caller_accounts()
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
    """Check account + last four; unknown, wrong and locked all get the same words."""
    if not (len(digits) == 4 and _DIGITS.fullmatch(digits)):
        return Decision("invalid", say=(Prompt("enter_four_digits"),))
    if ctx.verify(str(ctx.data.get("candidate", "")), digits):
        return Decision("verified", {"identified": True, "id_failures": 0})
    failures = int(ctx.data.get("id_failures", 0)) + 1
    if failures >= IDENTIFY_ATTEMPT_LIMIT:
        return Decision("exhausted", {"id_failures": failures, "candidate": None})
    return Decision(
        "retry", {"id_failures": failures, "candidate": None}, say=(Prompt("no_match"),)
    )


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
    """"1" pays the whole balance, "2" asks for another amount."""
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


# --- what is said ----------------------------------------------------------------------------

def welcome(ctx: CallContext) -> tuple[Prompt, ...]:
    """The bilingual greeting: English, then the Spanish option in a Spanish voice."""
    return (Prompt("welcome", lang="en"), Prompt("spanish_option", lang="es"))


def offer_caller_id(ctx: CallContext) -> tuple[Prompt, ...]:
    """Offer the one account linked to the caller ID by its last four digits."""
    return (Prompt("offer_caller_id", {"last4": Digits(str(ctx.data.get("candidate", ""))[-4:])}),)


def list_accounts(ctx: CallContext) -> tuple[Prompt, ...]:
    """Say how many accounts are on this phone and the key for each."""
    choices = list(ctx.data.get("choices", []))
    prompts = [Prompt("several_accounts", {"count": len(choices)})]
    for index, number in enumerate(choices, start=1):
        prompts.append(Prompt("account_option", {"last4": Digits(number[-4:]), "choice": index}))
    prompts.append(Prompt("account_other_option"))
    return tuple(prompts)


def account_summary(ctx: CallContext) -> tuple[Prompt, ...]:
    """Balance, due date and any past-due amount, in words; then the payment menu."""
    account = ctx.account()
    assert account is not None
    return _balance(account) + (Prompt("pay_menu"),)


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


def confirm_amount(ctx: CallContext) -> tuple[Prompt, ...]:
    """Read the keyed amount back."""
    return (Prompt("confirm_amount", {"amount": Money(int(ctx.data.get("amount_cents", 0)))}),)


def card_intro(ctx: CallContext) -> tuple[Prompt, ...]:
    """Say what is being paid before the card prompts start."""
    return (Prompt("card_intro", {"amount": Money(int(ctx.data.get("amount_cents", 0)))}),)


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
    """The approval, the confirmation number digit by digit, and how to hear it again."""
    return (
        Prompt(
            "payment_approved",
            {
                "amount": Money(int(ctx.data.get("paid_cents", 0))),
                "confirmation": Digits(str(ctx.data.get("confirmation_number", ""))),
            },
        ),
        Prompt("receipt_coming"),
        Prompt("hear_again"),
    )


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
