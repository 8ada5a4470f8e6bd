"""The whole call flow in one table: what each step says, what it expects and where answers go.

Every step that expects keys also takes speech (``Keys.hear`` and ``Keys.words``, read by
``flows/speech.py``): an answer understood with doubt is read back for a yes or a no first.
Global keys, handled by the engine for every step that expects keys: ``*`` repeats the step,
``0`` reaches the agent when one is configured, silence re-prompts twice then says goodbye, and a
key that is not an option is explained and asked again (three times at most).
Labels on ``CARD_ENTRY`` are the outcomes the web layer reports after charging the ``<Pay>`` token;
an ``Act`` step's labels are what the web layer's action came to (charging the card on file, say).
"""

from collections.abc import Mapping
from typing import Final

from . import decisions as d
from .speech import YES_NO
from .steps import (
    APPROVED,
    CALLER_HUNG_UP,
    CHARGE_SAVED_CARD,
    DECLINED,
    FORGET_CARD,
    FORGOTTEN,
    NOT_SAVED,
    SAVE_CARD,
    SAVED,
    STAR,
    UNAVAILABLE,
    UNREADABLE,
    Act,
    Entry,
    Keys,
    Pay,
    State,
    Step,
)

# Every way into the flow and the state it begins in; the web layer starts calls by entry name.
ENTRY_POINTS: Final[Mapping[Entry, State]] = {
    Entry.SELF_SERVICE: State.WELCOME,
    Entry.TRANSFER: State.TRANSFER_CONFIRM,
    Entry.CALLBACK: State.CALLBACK_START,
}
INITIAL: Final = ENTRY_POINTS[Entry.SELF_SERVICE]  # the state a member's own call is created in

# After a decline or a card problem: "1" another card (on the keypad), "9" ends the call.
RETRY_WORDS: Final[Mapping[str, str]] = {"another_card": "1", "yes": "1", "end": "9", "no": "9"}

FLOW: Final[Mapping[State, Step]] = {
    # --- greeting and identification ---
    State.WELCOME: Step(
        say=d.welcome,
        expect=Keys(num_digits=1, timeout=3, words={"english": "1", "spanish": "2"}),
        decide=d.choose_language,
        on={"chosen": State.IDENTIFY},
        on_silence=State.IDENTIFY,  # no key: carry on in English
    ),
    State.IDENTIFY: Step(
        say=d.how_keys_work,  # once, in the call's language, before the first question
        route=d.route_by_caller_id,
        on={"one": State.OFFER_CALLER_ID, "several": State.CHOOSE_ACCOUNT, "none": State.ENTER_ACCOUNT},
    ),
    State.OFFER_CALLER_ID: Step(
        say=d.offer_caller_id,
        expect=Keys(num_digits=1, words={**YES_NO, "another_account": "2"}),
        on={"1": State.CALLER_ID_CHECK, "2": State.ENTER_ACCOUNT},
    ),
    State.CHOOSE_ACCOUNT: Step(
        say=d.list_accounts,
        expect=Keys(num_digits=1, words={"another_account": "9", "no": "9"}),
        decide=d.pick_listed_account,
        on={"picked": State.CALLER_ID_CHECK, "other": State.ENTER_ACCOUNT},
        reprompt=d.account_options,
    ),
    State.ENTER_ACCOUNT: Step(
        say=("enter_account",),
        expect=Keys(num_digits=None, finish_on_key="#", timeout=10, hear="digits"),
        decide=d.take_account_number,
        on={"taken": State.ENTER_LAST4},
    ),
    State.ENTER_LAST4: Step(
        say=("enter_last4",),
        expect=Keys(num_digits=4, timeout=10, hear="digits"),
        decide=d.verify_caller,  # unknown account, wrong digits and lockout sound the same
        on={"verified": State.ACCOUNT_CHECK, "retry": State.ENTER_ACCOUNT, "exhausted": State.NO_MATCH},
    ),
    # The caller ID chose the account: the phone's last four would prove nothing (a spoofed caller
    # ID holds them), so the second factor is the service ZIP code, else the full account number.
    State.CALLER_ID_CHECK: Step(
        route=d.caller_id_factor,
        on={"zip": State.ENTER_ZIP, "account": State.ENTER_FULL_ACCOUNT},
    ),
    State.ENTER_ZIP: Step(
        say=("enter_zip",),
        expect=Keys(num_digits=5, timeout=10, hear="digits"),
        decide=d.verify_zip,
        on={"verified": State.ACCOUNT_CHECK, "retry": State.ENTER_ACCOUNT, "exhausted": State.NO_MATCH},
    ),
    State.ENTER_FULL_ACCOUNT: Step(
        say=("enter_full_account",),
        expect=Keys(num_digits=None, finish_on_key="#", timeout=10, hear="digits"),
        decide=d.verify_full_account,
        on={"verified": State.ACCOUNT_CHECK, "retry": State.ENTER_ACCOUNT, "exhausted": State.NO_MATCH},
    ),
    State.ACCOUNT_CHECK: Step(
        route=d.route_account,
        on={"owes": State.SUMMARY, "nothing_due": State.NOTHING_DUE, "office_only": State.OFFICE_ONLY},
    ),
    # --- balance and amount ---
    State.SUMMARY: Step(
        say=d.account_summary,
        expect=Keys(num_digits=1, words=d.summary_words),
        decide=d.choose_from_summary,  # the options and their keys: d.SUMMARY_MENU
        on={
            "full": State.FEE_CHECK,
            "past_due": State.FEE_CHECK,
            "other": State.ENTER_AMOUNT,
            "history": State.HISTORY,
            "later": State.LATER_MENU,
        },
        reprompt=d.summary_options,
    ),
    State.HISTORY: Step(
        say=d.payment_history,
        expect=Keys(num_digits=1, words={"menu": "1", "balance": "1", "pay": "1", "yes": "1"}),
        on={"1": State.SUMMARY},
        on_silence=State.SUMMARY,  # heard them: back to the menu
        reprompt=d.history_options,
    ),
    State.ENTER_AMOUNT: Step(
        say=d.enter_amount,
        expect=Keys(num_digits=None, finish_on_key="#", timeout=10, hear="amount"),
        decide=d.parse_amount,  # "*" is the decimal point here; "*" alone still repeats
        on={"ok": State.CONFIRM_AMOUNT},
        reprompt=d.enter_amount_again,
    ),
    State.CONFIRM_AMOUNT: Step(
        say=d.confirm_amount,
        expect=Keys(num_digits=1, words=YES_NO),
        on={"1": State.FEE_CHECK, "2": State.ENTER_AMOUNT},
    ),
    # --- convenience fee (CONVENIENCE_FEE_CENTS; off by default, then nothing is said) ---
    State.FEE_CHECK: Step(
        route=d.fee_or_card,
        on={"fee": State.FEE_CONFIRM, "no_fee": State.CARD_CHOICE},
    ),
    State.FEE_CONFIRM: Step(
        say=d.fee_offer,
        expect=Keys(num_digits=1, words={**YES_NO, "pay": "1", "menu": "2", "end": "9"}),
        decide=d.accept_fee,
        on={"accepted": State.CARD_CHOICE, "back": State.SUMMARY, "end": State.GOODBYE},
    ),
    # --- card ---
    # The card on file, when there is one, comes before any <Pay>; charging it needs no <Pay>.
    State.CARD_CHOICE: Step(
        route=d.card_choice,
        on={"on_file": State.SAVED_CARD, "keypad": State.CARD_ENTRY},
    ),
    State.SAVED_CARD: Step(
        say=d.saved_card_choice,
        expect=Keys(num_digits=1, words={**YES_NO, "saved_card": "1", "pay": "1", "another_card": "2", "forget": "9"}),
        on={"1": State.SAVED_CARD_CHARGE, "2": State.CARD_ENTRY, "9": State.FORGET_CARD},
    ),
    State.SAVED_CARD_CHARGE: Step(
        expect=Act(CHARGE_SAVED_CARD),  # off-session, at once; a redelivered "1" charges once
        on={
            APPROVED: State.CONFIRMATION,
            DECLINED: State.SAVED_CARD_DECLINED,  # authentication_required too: nobody can do 3-D Secure here
            UNAVAILABLE: State.PROCESSOR_DOWN,
            FORGOTTEN: State.CARD_FORGOTTEN,  # removed elsewhere (an agent, /ops) since it was offered
        },
    ),
    State.SAVED_CARD_DECLINED: Step(
        say=d.saved_card_declined,
        expect=Keys(num_digits=1, words=RETRY_WORDS),
        decide=d.retry_card,
        on={"again": State.CARD_ENTRY, "no_more": State.AFTER_PAYMENT, "done": State.AFTER_PAYMENT},
        reprompt=d.keypad_options,
    ),
    State.FORGET_CARD: Step(
        expect=Act(FORGET_CARD),  # deleted, then detached at Stripe
        on={FORGOTTEN: State.CARD_FORGOTTEN},
    ),
    State.CARD_FORGOTTEN: Step(
        say=d.card_forgotten,
        expect=Keys(num_digits=1, words=RETRY_WORDS),
        decide=d.retry_card,
        on={"again": State.CARD_ENTRY, "no_more": State.AFTER_PAYMENT, "done": State.AFTER_PAYMENT},
        reprompt=d.keypad_options,
    ),
    State.CARD_ENTRY: Step(
        say=d.card_intro,
        expect=Pay(),
        on={
            APPROVED: State.CONFIRMATION,
            DECLINED: State.CARD_DECLINED,
            UNREADABLE: State.CARD_UNREADABLE,
            UNAVAILABLE: State.PROCESSOR_DOWN,
            STAR: State.CARD_BACK_OUT,  # "*" during card entry backs out to where the amount was set
            CALLER_HUNG_UP: State.HUNG_UP,
        },
    ),
    State.CARD_BACK_OUT: Step(
        route=d.back_out_of_card,  # an agent's transfer set the amount: confirm it again
        on={"transfer": State.TRANSFER_CONFIRM, "menu": State.SUMMARY},
    ),
    State.CARD_DECLINED: Step(
        say=d.card_declined,
        expect=Keys(num_digits=1, words=RETRY_WORDS),
        decide=d.retry_card,
        on={"again": State.CARD_ENTRY, "no_more": State.AFTER_PAYMENT, "done": State.AFTER_PAYMENT},
        reprompt=d.card_options,
    ),
    State.CARD_UNREADABLE: Step(
        say=d.card_unreadable,
        expect=Keys(num_digits=1, words=RETRY_WORDS),
        decide=d.retry_card,
        on={"again": State.CARD_ENTRY, "no_more": State.AFTER_PAYMENT, "done": State.AFTER_PAYMENT},
        reprompt=d.card_options,
    ),
    State.PROCESSOR_DOWN: Step(
        say=d.processor_down,
        expect=Keys(num_digits=1, words=RETRY_WORDS),
        decide=d.retry_card,
        on={"again": State.CARD_ENTRY, "no_more": State.AFTER_PAYMENT, "done": State.AFTER_PAYMENT},
        reprompt=d.card_options,
    ),
    State.CONFIRMATION: Step(
        say=d.payment_approved,
        expect=Keys(num_digits=1, timeout=5, words={"another_account": "2"}),
        decide=d.after_approval,
        on={"again": State.CONFIRMATION, "another": State.ANOTHER_ACCOUNT},
        on_silence=State.AFTER_PAYMENT,
        allow_agent=False,
        reprompt=d.approval_options,
    ),
    State.ANOTHER_ACCOUNT: Step(
        route=d.start_another_account,  # identified from the start: no factor carries over
        on={"identify": State.IDENTIFY},
    ),
    State.AFTER_PAYMENT: Step(
        route=d.offer_to_save_or_leave,  # transferred callers go back to the agent, paid or not
        on={"save_offer": State.SAVE_CARD_OFFER, "return": State.RETURN_TO_AGENT, "goodbye": State.GOODBYE},
    ),
    State.SAVE_CARD_OFFER: Step(
        say=d.save_card_offer,  # the words recorded with the card as the member's consent
        expect=Keys(num_digits=1, words=YES_NO),
        on={"1": State.SAVE_CARD, "2": State.AFTER_PAYMENT},
        on_silence=State.AFTER_PAYMENT,  # no answer is no consent
    ),
    State.SAVE_CARD: Step(
        expect=Act(SAVE_CARD),
        on={SAVED: State.CARD_SAVED, NOT_SAVED: State.AFTER_PAYMENT},
    ),
    State.CARD_SAVED: Step(
        say=("card_saved",),
        route=d.back_to_agent_or_goodbye,
        on={"return": State.RETURN_TO_AGENT, "goodbye": State.GOODBYE},
    ),
    # --- started already identified ---
    State.TRANSFER_CONFIRM: Step(
        say=d.transfer_confirm,
        expect=Keys(num_digits=1, words={"yes": "1", "pay": "1"}),
        decide=d.confirm_transfer,
        on={"yes": State.CARD_ENTRY},  # straight to <Pay>: an agent's transfer asks nothing else (contract)
        allow_agent=False,
    ),
    State.CALLBACK_START: Step(
        route=d.route_account,  # the account may have been paid or closed since the reminder
        on={"owes": State.CALLBACK_WELCOME, "nothing_due": State.NOTHING_DUE, "office_only": State.OFFICE_ONLY},
    ),
    State.CALLBACK_WELCOME: Step(
        say=d.callback_welcome,
        expect=Keys(num_digits=1, words={"pay": "1", "balance": "1", "yes": "1", "other": "2"}),
        decide=d.callback_menu,
        on={"full": State.FEE_CHECK, "other": State.ENTER_AMOUNT},
    ),
    # --- paying later: scheduled payments and autopay (SUMMARY key 5) ---
    State.LATER_MENU: Step(
        say=d.later_menu,
        expect=Keys(num_digits=1),
        decide=d.choose_later,  # each option is offered only when it applies
        on={
            "schedule": State.SCHEDULE_AMOUNT,
            "scheduled": State.SCHEDULED_LIST,
            "autopay_on": State.AUTOPAY_TERMS,
            "autopay_off": State.AUTOPAY_STOP,
            "back": State.SUMMARY,
        },
    ),
    State.SCHEDULE_AMOUNT: Step(
        say=d.schedule_amount_menu,
        expect=Keys(num_digits=1),
        decide=d.choose_schedule_amount,
        on={"set": State.SCHEDULE_DATE, "other": State.SCHEDULE_ENTER_AMOUNT},
    ),
    State.SCHEDULE_ENTER_AMOUNT: Step(
        say=d.enter_amount,
        expect=Keys(num_digits=None, finish_on_key="#", timeout=10),
        decide=d.parse_amount,
        on={"ok": State.SCHEDULE_DATE},
    ),
    State.SCHEDULE_DATE: Step(
        say=d.schedule_date_prompt,
        expect=Keys(num_digits=4, timeout=10),
        decide=d.parse_pay_date,  # MMDD, from today up to the due date
        on={"ok": State.SCHEDULE_CONFIRM},
    ),
    State.SCHEDULE_CONFIRM: Step(
        say=d.schedule_readback,
        expect=Keys(num_digits=1),
        decide=d.confirm_schedule,  # with a card on file it is scheduled here; else a card is asked for
        on={
            "scheduled": State.SCHEDULED_DONE,
            "card": State.SCHEDULE_CARD,
            "change_date": State.SCHEDULE_DATE,
            "cancel": State.LATER_MENU,
            "refused": State.LATER_MENU,
        },
    ),
    State.SCHEDULE_CARD: Step(
        say=d.schedule_card_intro,
        expect=Pay(),  # tokenized and kept for that day's payment; nothing is charged now
        on={
            APPROVED: State.SCHEDULED_DONE,
            DECLINED: State.SCHEDULE_CARD_PROBLEM,
            UNREADABLE: State.SCHEDULE_CARD_PROBLEM,
            UNAVAILABLE: State.SCHEDULE_CARD_PROBLEM,
            STAR: State.LATER_MENU,
            CALLER_HUNG_UP: State.HUNG_UP,
        },
    ),
    State.SCHEDULE_CARD_PROBLEM: Step(
        say=d.schedule_card_problem,
        expect=Keys(num_digits=1),
        decide=d.retry_schedule_card,
        on={"again": State.SCHEDULE_CARD, "back": State.LATER_MENU},
    ),
    State.SCHEDULED_DONE: Step(
        say=d.scheduled_done,
        expect=Keys(num_digits=1),
        decide=d.later_done,
        on={"menu": State.LATER_MENU, "end": State.GOODBYE},
        on_silence=State.GOODBYE,  # heard it: nothing more to do
    ),
    State.SCHEDULED_LIST: Step(
        say=d.scheduled_list,
        expect=Keys(num_digits=1),
        decide=d.pick_scheduled,
        on={"picked": State.SCHEDULED_CANCEL, "back": State.LATER_MENU},
    ),
    State.SCHEDULED_CANCEL: Step(
        say=d.scheduled_cancel_prompt,
        expect=Keys(num_digits=1),
        decide=d.confirm_cancel_scheduled,  # refused within 24 hours of the charge
        on={"cancelled": State.LATER_MENU, "kept": State.SCHEDULED_LIST},
    ),
    State.AUTOPAY_TERMS: Step(
        say=d.autopay_terms,
        expect=Keys(num_digits=1),
        decide=d.agree_autopay,  # the terms as heard are kept as the consent
        on={"back": State.LATER_MENU},
    ),
    State.AUTOPAY_STOP: Step(
        say=d.autopay_stop_prompt,
        expect=Keys(num_digits=1),
        decide=d.confirm_stop_autopay,
        on={"back": State.LATER_MENU},
    ),
    # --- endings ---
    State.NOTHING_DUE: Step(say=d.nothing_due, final=True),
    State.OFFICE_ONLY: Step(say=("call_office", "goodbye"), final=True),
    State.NO_MATCH: Step(
        say=("no_match_final",),
        route=d.agent_or_goodbye,
        on={"agent": State.AGENT, "goodbye": State.GOODBYE},
    ),
    State.TOO_MANY_ATTEMPTS: Step(
        say=("too_many_attempts",),
        route=d.agent_or_goodbye,
        on={"agent": State.AGENT, "goodbye": State.GOODBYE},
    ),
    State.NO_INPUT: Step(say=("no_input_goodbye",), final=True),
    State.AGENT: Step(say=("connecting_agent",), final=True, dial="agent"),
    State.RETURN_TO_AGENT: Step(say=("connecting_back",), final=True, dial="return_to"),
    State.GOODBYE: Step(say=("goodbye",), final=True),
    State.HUNG_UP: Step(final=True),
}
