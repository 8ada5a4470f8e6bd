"""Plain words for the call flow's steps, as staff read them in /ops (the console is in English)."""

from flows.steps import State

# Where a call was, said the way a supervisor would say it; every state of the flow has one.
STEP_LABELS: dict[str, str] = {
    State.WELCOME: "Greeting",
    State.IDENTIFY: "Caller ID check",
    State.OFFER_CALLER_ID: "Offered the caller-ID account",
    State.CHOOSE_ACCOUNT: "Choosing an account",
    State.ENTER_ACCOUNT: "Entering the account number",
    State.ENTER_LAST4: "Proving who they are",
    State.CALLER_ID_CHECK: "Second factor check",
    State.ENTER_ZIP: "Proving who they are (ZIP code)",
    State.ENTER_FULL_ACCOUNT: "Proving who they are (full account number)",
    State.ACCOUNT_CHECK: "Account check",
    State.SUMMARY: "Heard the balance",
    State.HISTORY: "Heard the last payments",
    State.NOTHING_DUE: "Told nothing is due",
    State.OFFICE_ONLY: "Told to call the office",
    State.ENTER_AMOUNT: "Entering an amount",
    State.CONFIRM_AMOUNT: "Confirming the amount",
    State.FEE_CHECK: "Fee check",
    State.FEE_CONFIRM: "Offered the convenience fee",
    State.CARD_ENTRY: "Entering the card",
    State.CARD_DECLINED: "Card declined",
    State.CARD_UNREADABLE: "Card not read",
    State.PROCESSOR_DOWN: "Payments unavailable",
    State.CARD_BACK_OUT: "Left card entry with *",
    State.CARD_CHOICE: "Card on file check",
    State.SAVED_CARD: "Offered the card on file",
    State.SAVED_CARD_CHARGE: "Paying with the card on file",
    State.SAVED_CARD_DECLINED: "Card on file declined",
    State.FORGET_CARD: "Forgetting the card on file",
    State.CARD_FORGOTTEN: "Forgot the card on file",
    State.SAVE_CARD_OFFER: "Offered to save the card",
    State.SAVE_CARD: "Saving the card",
    State.CARD_SAVED: "Saved the card",
    State.CONFIRMATION: "Heard the confirmation",
    State.ANOTHER_ACCOUNT: "Went on to another account",
    State.AFTER_PAYMENT: "After paying",
    State.NO_MATCH: "Not identified",
    State.TOO_MANY_ATTEMPTS: "Too many tries",
    State.NO_INPUT: "Said nothing",
    State.AGENT: "Sent to an agent",
    State.RETURN_TO_AGENT: "Back to the agent",
    State.GOODBYE: "Goodbye",
    # The <Pay> step reports a hang-up as its own state: the caller left while keying the card.
    State.HUNG_UP: "Hung up entering the card",
    State.TRANSFER_CONFIRM: "Transferred by an agent",
    State.CALLBACK_START: "Callback check",
    State.CALLBACK_WELCOME: "Callback greeting",
    State.LATER_MENU: "Pay later or autopay menu",
    State.SCHEDULE_AMOUNT: "Choosing an amount to schedule",
    State.SCHEDULE_ENTER_AMOUNT: "Entering an amount to schedule",
    State.SCHEDULE_DATE: "Entering the day to pay",
    State.SCHEDULE_CONFIRM: "Confirming a scheduled payment",
    State.SCHEDULE_CARD: "Entering a card for a later payment",
    State.SCHEDULE_CARD_PROBLEM: "Card for a later payment not kept",
    State.SCHEDULED_DONE: "Scheduled a payment",
    State.SCHEDULED_LIST: "Heard the scheduled payments",
    State.SCHEDULED_CANCEL: "Cancelling a scheduled payment",
    State.AUTOPAY_TERMS: "Heard autopay's terms",
    State.AUTOPAY_STOP: "Stopping autopay",
}


def step_label(state: str | None) -> str:
    """The staff's words for a flow state; an unknown one (an older release's) as it is stored."""
    if not state:
        return ""
    return STEP_LABELS.get(state, state.replace("_", " ").capitalize())
