"""On the same call, through the pure engine: the past-due option, payment history, a convenience
fee and paying another account. Every turn is also heard in English and Spanish."""

from datetime import date

import pytest

from flows import Entry, Keys, Pay, State
from flows.engine import KeyPress, PayOutcome, Silence, advance, start
from flows.steps import APPROVED, STAR, AccountView, PaidView
from ivr.voice.spoken import say

ORG = "Riverbend Electric Cooperative"
DANA_5001 = AccountView("12345001", 35690, 14235, date(2026, 11, 25), "en", "active")
DANA_5002 = AccountView("12345002", 5000, 0, None, "en", "active")


class Context:
    """A CallContext over plain data: accounts on the caller's phone, their last four, past payments."""

    def __init__(self, *, accounts=(DANA_5001,), on_phone=True, fee=0, paid=(), last4="0143", data=None, cards=None):
        self.data = dict(data or {})
        self.agent_available = False
        self.min_payment_cents = 100
        self.max_payment_cents = None
        self.convenience_fee_cents = fee
        self.longer_key_waits = False
        self.accounts = {a.account_number: a for a in accounts}
        self.on_phone = on_phone
        self.paid = list(paid)
        self.last4 = last4
        self.identified = None
        self.verified = []  # every (account number, last four) checked, in order
        self.cards = dict(cards or {})  # account number -> CardOnFile

    def caller_accounts(self):
        return list(self.accounts.values()) if self.on_phone else []

    def account(self):
        return self.identified

    def card_on_file(self):
        return self.cards.get(self.identified.account_number) if self.identified else None

    def verify(self, number, answer, factor="last4"):
        self.verified.append((number, answer))
        account = self.accounts.get(number)
        expected = {"last4": self.last4, "zip": account and account.zip, "account": number}[factor]
        if account is not None and answer == expected:
            self.identified = self.accounts[number]
            return True
        return False

    def recent_payments(self, limit):
        return self.paid[:limit]


def heard(turn, lang):
    """What the caller hears in ``lang`` (forced-language prompts in their own)."""
    return " ".join(say(p, lang, ORG)[1] for p in turn.say)


def step(ctx, turn, event):
    """Advance and keep the turn's data, as the web layer saves it."""
    turn = advance(turn.state, event, ctx)
    ctx.data.update(turn.updates)
    if turn.updates.get("identified") is False:
        ctx.identified = None  # the web layer drops the call's account
    return turn


def identified(ctx):
    """From the greeting to the summary by the caller-ID offer and the full account number (no ZIP on file)."""
    turn = start(Entry.SELF_SERVICE, ctx)
    ctx.data.update(turn.updates)
    turn = step(ctx, turn, Silence())
    turn = step(ctx, turn, KeyPress("1"))
    assert turn.state == State.ENTER_FULL_ACCOUNT
    turn = step(ctx, turn, KeyPress(ctx.data["candidate"]))
    assert turn.state == State.SUMMARY
    return turn


# --- the summary menu -------------------------------------------------------------------------

MENU_PAST_DUE = {
    "en": ("Of that, one hundred forty-two dollars and thirty-five cents is past due. "
           "To pay in full, press 1. "
           "To pay the past-due one hundred forty-two dollars and thirty-five cents, press 2. "
           "Recent payments, 3. Another amount, 4. Pay later or autopay, 5."),
    "es": ("De ese saldo, ciento cuarenta y dos dólares con treinta y cinco centavos ya venció. "
           "Para pagarlo todo, oprima 1. "
           "Para pagar lo vencido, ciento cuarenta y dos dólares con treinta y cinco centavos, oprima 2. "
           "Sus pagos recientes, el 3. Otra cantidad, el 4. Pagar después o pago automático, el 5."),
}
MENU_NOTHING_PAST_DUE = {
    "en": "To pay in full, press 1. Another amount, 2. Recent payments, 3. Pay later or autopay, 5.",
    "es": "Para pagarlo todo, oprima 1. Otra cantidad, el 2. Sus pagos recientes, el 3. Pagar después o pago automático, el 5.",
}


@pytest.mark.parametrize("lang", ["en", "es"])
def test_a_past_due_account_hears_the_past_due_amount_offered_on_2_beside_the_full_balance(lang):
    ctx = Context()
    turn = identified(ctx)
    assert heard(turn, lang).endswith(MENU_PAST_DUE[lang])

    paying = step(ctx, turn, KeyPress("2"))
    assert paying.state == State.CARD_ENTRY and isinstance(paying.expect, Pay)
    assert ctx.data["amount_cents"] == 14235 and ctx.data["fee_cents"] == 0
    # The amount was just said with its key; the approval says what was charged.
    assert heard(paying, lang) == {"en": "Now your card.", "es": "Ahora, su tarjeta."}[lang]


def test_with_a_past_due_amount_1_is_the_full_balance_and_4_a_different_amount():
    ctx = Context()
    full = step(ctx, identified(ctx), KeyPress("1"))
    assert full.state == State.CARD_ENTRY and ctx.data["amount_cents"] == 35690
    ctx = Context()
    other = step(ctx, identified(ctx), KeyPress("4"))
    assert other.state == State.ENTER_AMOUNT


@pytest.mark.parametrize(
    "account",
    [
        AccountView("12345001", 35690, 0, None, "en", "active"),  # nothing past due
        AccountView("12345001", 35690, 35690, None, "en", "active"),  # all of it: the full balance says it
        AccountView("12345001", 35690, 50, None, "en", "active"),  # under the minimum payment
    ],
)
@pytest.mark.parametrize("lang", ["en", "es"])
def test_without_a_past_due_amount_worth_offering_the_menu_stays_1_2_3(account, lang):
    ctx = Context(accounts=(account,))
    turn = identified(ctx)
    assert heard(turn, lang).endswith(MENU_NOTHING_PAST_DUE[lang])
    assert step(ctx, turn, KeyPress("2")).state == State.ENTER_AMOUNT
    ctx = Context(accounts=(account,))
    wrong = step(ctx, identified(ctx), KeyPress("4"))
    assert wrong.state == State.SUMMARY and wrong.say[0].key == "invalid_key"


# --- payment history --------------------------------------------------------------------------

PAID = (
    PaidView(date(2026, 11, 20), 8417, "ivr"),
    PaidView(date(2026, 10, 2), 5000, "agent"),
    PaidView(date(2026, 9, 1), 12000, "callback"),
    PaidView(date(2026, 8, 3), 999, "ivr"),  # a fourth: not said
)
HISTORY = {
    "en": ("Your last three payments. "
           "On Friday, November twentieth, eighty-four dollars and seventeen cents, by phone. "
           "On Friday, October second, fifty dollars, with an agent. "
           "On Tuesday, September first, one hundred twenty dollars, on a call from us. "
           "For the menu, press 1. To hear them again, press star."),
    "es": ("Sus últimos tres pagos. "
           "Pagó ochenta y cuatro dólares con diecisiete centavos el viernes veinte de noviembre, por teléfono. "
           "Pagó cincuenta dólares el viernes dos de octubre, con un agente. "
           "Pagó ciento veinte dólares el martes primero de septiembre, en una llamada que le hicimos. "
           "Para volver al menú, oprima 1. Para oírlos otra vez, oprima asterisco."),
}


@pytest.mark.parametrize("lang", ["en", "es"])
def test_3_says_the_last_three_payments_with_day_amount_and_how(lang):
    ctx = Context(paid=PAID)
    turn = step(ctx, identified(ctx), KeyPress("3"))
    assert turn.state == State.HISTORY and isinstance(turn.expect, Keys)
    assert heard(turn, lang) == HISTORY[lang]


@pytest.mark.parametrize(
    ("paid", "lang", "words"),
    [
        ((), "en", "There are no card payments on record."),
        ((), "es", "No hay pagos con tarjeta registrados."),
        ((PaidView(date(2026, 11, 20), 8417, "kiosk"),), "en",
         "Your last payment. On Friday, November twentieth, eighty-four dollars and seventeen cents, by card."),
        ((PaidView(date(2026, 11, 20), 8417, "kiosk"),), "es",
         ("Su último pago. Pagó ochenta y cuatro dólares con diecisiete centavos el viernes veinte de "
          "noviembre, con tarjeta.")),
        ((PaidView(date(2026, 11, 20), 8417, "scheduled"),), "en",
         ("Your last payment. On Friday, November twentieth, eighty-four dollars and seventeen cents, "
          "a payment you scheduled.")),
        ((PaidView(date(2026, 11, 20), 8417, "autopay"),), "es",
         ("Su último pago. Pagó ochenta y cuatro dólares con diecisiete centavos el viernes veinte de "
          "noviembre, con el pago automático.")),
        ((PaidView(date(2026, 11, 20), 8417, "sms"),), "en",
         "Your last payment. On Friday, November twentieth, eighty-four dollars and seventeen cents, by text."),
        ((PaidView(date(2026, 11, 20), 8417, "sms"),), "es",
         ("Su último pago. Pagó ochenta y cuatro dólares con diecisiete centavos el viernes veinte de "
          "noviembre, por mensaje de texto.")),
    ],
)
def test_no_payments_or_one_are_said_as_such(paid, lang, words):
    ctx = Context(paid=paid)
    turn = step(ctx, identified(ctx), KeyPress("3"))
    assert heard(turn, lang).startswith(words)


def test_after_the_history_1_or_silence_goes_back_to_the_menu_and_star_says_it_again():
    ctx = Context(paid=PAID)
    history = step(ctx, identified(ctx), KeyPress("3"))
    again = step(ctx, history, KeyPress("*"))
    assert again.state == State.HISTORY and [p.key for p in again.say] == [p.key for p in history.say]
    for event in (KeyPress("1"), Silence()):
        back = step(ctx, history, event)
        assert back.state == State.SUMMARY and back.say[0].key == "balance_due"


# --- convenience fee --------------------------------------------------------------------------

FEE_OFFER = {
    "en": ("Paying by card by phone has a fee of two dollars and fifty cents, so your card will be charged one "
           "hundred forty-four dollars and eighty-five cents: one hundred forty-two dollars and thirty-five cents "
           "for your bill, plus the fee. To accept and enter your card, press 1. To go back, press 2. "
           "To end the call, press 9."),
    "es": ("Pagar con tarjeta por teléfono tiene un cargo de dos dólares con cincuenta centavos; se cobrarán "
           "ciento cuarenta y cuatro dólares con ochenta y cinco centavos a su tarjeta: ciento cuarenta y dos "
           "dólares con treinta y cinco centavos de su factura, más el cargo. Para aceptar y dar su tarjeta, "
           "oprima 1. Para volver, el 2. Para colgar, el 9."),
}
CARD_INTRO_FEE = {
    "en": ("You're paying one hundred forty-two dollars and thirty-five cents, plus the fee of two dollars and "
           "fifty cents: one hundred forty-four dollars and eighty-five cents in all."),
    "es": ("Va a pagar ciento cuarenta y dos dólares con treinta y cinco centavos más el cargo de dos dólares "
           "con cincuenta centavos: ciento cuarenta y cuatro dólares con ochenta y cinco centavos en total."),
}


@pytest.mark.parametrize("lang", ["en", "es"])
def test_a_fee_is_said_with_the_total_before_card_entry_and_accepted_by_1(lang):
    ctx = Context(fee=250)
    offer = step(ctx, identified(ctx), KeyPress("2"))
    assert offer.state == State.FEE_CONFIRM and isinstance(offer.expect, Keys)
    assert heard(offer, lang) == FEE_OFFER[lang]
    assert ctx.data["fee_cents"] == 0  # said, not yet accepted

    card = step(ctx, offer, KeyPress("1"))
    assert card.state == State.CARD_ENTRY and isinstance(card.expect, Pay)
    assert ctx.data["fee_cents"] == 250 and ctx.data["amount_cents"] == 14235
    assert heard(card, lang).startswith(CARD_INTRO_FEE[lang])


def test_refusing_the_fee_goes_back_to_the_menu_or_ends_the_call_and_never_reaches_the_card():
    ctx = Context(fee=250)
    offer = step(ctx, identified(ctx), KeyPress("1"))
    back = step(ctx, offer, KeyPress("2"))
    assert back.state == State.SUMMARY and ctx.data["fee_cents"] == 0
    offer = step(ctx, back, KeyPress("1"))
    wrong = advance(offer.state, KeyPress("5"), ctx)
    assert wrong.state == State.FEE_CONFIRM and wrong.say[0].key == "invalid_key"
    goodbye = step(ctx, offer, KeyPress("9"))
    assert goodbye.state == State.GOODBYE and goodbye.final
    assert ctx.data["fee_cents"] == 0


def test_a_keyed_amount_is_also_offered_the_fee_after_it_is_confirmed():
    ctx = Context(fee=250)
    turn = step(ctx, identified(ctx), KeyPress("4"))
    turn = step(ctx, turn, KeyPress("50*25"))
    turn = step(ctx, turn, KeyPress("1"))
    assert turn.state == State.FEE_CONFIRM
    assert turn.say[0].params["total"] == 5275


def test_star_during_card_entry_and_choosing_again_asks_for_the_fee_again():
    ctx = Context(fee=250)
    card = step(ctx, step(ctx, identified(ctx), KeyPress("1")), KeyPress("1"))
    assert ctx.data["fee_cents"] == 250
    menu = step(ctx, card, PayOutcome(STAR))
    assert menu.state == State.SUMMARY
    assert step(ctx, menu, KeyPress("2")).state == State.FEE_CONFIRM
    assert ctx.data["fee_cents"] == 0  # the earlier acceptance does not carry over to a new choice


@pytest.mark.parametrize("lang", ["en", "es"])
def test_with_the_fee_off_nothing_about_a_fee_is_said(lang):
    ctx = Context(fee=0)
    said = [identified(ctx)]
    said.append(step(ctx, said[-1], KeyPress("1")))
    assert said[-1].state == State.CARD_ENTRY
    said.append(step(ctx, said[-1], PayOutcome(APPROVED, {"paid_cents": 35690, "paid_fee_cents": 0,
                                                           "confirmation_number": "48213375"})))
    words = " ".join(heard(turn, lang) for turn in said).lower()
    assert "fee" not in words and "cargo" not in words
    assert not any(p.key.startswith("fee") or p.key.endswith("_fee") for turn in said for p in turn.say)


def test_an_agents_transfer_goes_to_the_card_without_a_fee():
    ctx = Context(fee=250, data={"amount_cents": 5025, "transfer_id": "tr_1"})
    ctx.identified = DANA_5001
    turn = start(Entry.TRANSFER, ctx)
    ctx.data.update(turn.updates)
    card = step(ctx, turn, KeyPress("1"))
    assert card.state == State.CARD_ENTRY and not ctx.data.get("fee_cents")
    assert [p.key for p in card.say] == ["card_intro"]


def test_a_reminder_callback_is_offered_the_fee_like_a_members_own_call():
    ctx = Context(fee=250)
    ctx.identified = DANA_5001
    turn = start(Entry.CALLBACK, ctx)
    ctx.data.update(turn.updates)
    assert step(ctx, turn, KeyPress("1")).state == State.FEE_CONFIRM


# --- another account --------------------------------------------------------------------------

APPROVED_TURN = {"paid_cents": 35690, "paid_fee_cents": 0, "confirmation_number": "48213375", "payment_id": 7,
                 "pay_attempts": 1}


def paid_first(ctx):
    card = step(ctx, identified(ctx), KeyPress("1"))
    return step(ctx, card, PayOutcome(APPROVED, APPROVED_TURN))


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("en", "We'll text a receipt. Another account, 2."),
        ("es", "Recibirá el recibo por texto. Otra cuenta, el 2."),
    ],
)
def test_after_a_payment_2_pays_another_account(lang, words):
    ctx = Context(accounts=(DANA_5001, DANA_5002))
    done = paid_first(ctx)
    assert done.state == State.CONFIRMATION and heard(done, lang).endswith(words)


def test_the_next_account_needs_its_own_second_factor_and_the_one_paid_is_not_offered_again():
    ctx = Context(accounts=(DANA_5001, DANA_5002))
    done = paid_first(ctx)
    ctx.data["choices"] = ["12345001", "12345002"]  # how the first was picked from the list
    offer = step(ctx, done, KeyPress("2"))
    assert ctx.identified is None and ctx.data["identified"] is False
    assert ctx.data["paid_accounts"] == ["12345001"]
    assert ctx.data["pay_attempts"] == 0 and ctx.data["amount_cents"] == 0
    assert offer.state == State.OFFER_CALLER_ID and ctx.data["candidate"] == "12345002"
    assert "5 0 0 2" in heard(offer, "en")

    factor = step(ctx, offer, KeyPress("1"))
    assert factor.state == State.ENTER_FULL_ACCOUNT  # no factor is skipped because the first passed
    wrong = step(ctx, factor, KeyPress("12345001"))  # the account just paid is not this one's answer
    assert wrong.state == State.ENTER_ACCOUNT and ctx.identified is None
    assert ctx.verified[-1] == ("12345002", "12345001")
    turn = step(ctx, wrong, KeyPress("12345002"))
    summary = step(ctx, turn, KeyPress("0143"))
    assert summary.state == State.SUMMARY and ctx.identified == DANA_5002
    assert summary.say[0].params["amount"] == 5000


def test_after_every_account_on_the_phone_is_paid_the_caller_keys_the_next_number():
    ctx = Context(accounts=(DANA_5001,))
    done = paid_first(ctx)
    turn = step(ctx, done, KeyPress("2"))
    assert turn.state == State.ENTER_ACCOUNT


def test_three_misses_on_the_next_account_end_the_call_as_on_the_first():
    ctx = Context(accounts=(DANA_5001, DANA_5002), on_phone=False)
    turn = start(Entry.SELF_SERVICE, ctx)
    turn = step(ctx, turn, Silence())
    turn = step(ctx, turn, KeyPress("12345001"))
    turn = step(ctx, turn, KeyPress("0143"))
    turn = step(ctx, step(ctx, turn, KeyPress("1")), PayOutcome(APPROVED, APPROVED_TURN))
    turn = step(ctx, turn, KeyPress("2"))
    assert turn.state == State.ENTER_ACCOUNT
    for _ in range(3):
        turn = step(ctx, turn, KeyPress("12345002"))
        turn = step(ctx, turn, KeyPress("1111"))
    assert turn.state == State.GOODBYE and turn.final
    assert ctx.verified[-3:] == [("12345002", "1111")] * 3


def test_a_caller_an_agent_transferred_is_not_offered_another_account():
    ctx = Context(data={"amount_cents": 5025, "transfer_id": "tr_1", "return_to": "+12025550100"})
    ctx.identified = DANA_5001
    turn = step(ctx, advance(State.TRANSFER_CONFIRM, KeyPress("1"), ctx), PayOutcome(APPROVED, APPROVED_TURN))
    assert turn.state == State.CONFIRMATION
    assert "another_account_option" not in [p.key for p in turn.say]
    assert step(ctx, turn, KeyPress("2")).state == State.CONFIRMATION  # explained, not taken
    assert step(ctx, turn, Silence()).state == State.RETURN_TO_AGENT


@pytest.mark.parametrize("lang", ["en", "es"])
def test_an_approved_payment_with_a_fee_says_the_fee(lang):
    ctx = Context()
    turn = advance(State.CARD_ENTRY, PayOutcome(APPROVED, {**APPROVED_TURN, "paid_fee_cents": 250}), ctx)
    ctx.data.update(turn.updates)
    turn = advance(State.CONFIRMATION, KeyPress("1"), ctx)
    assert heard(turn, lang).startswith(
        {"en": "Approved: three hundred fifty-six dollars and ninety cents, plus the fee of two dollars and fifty "
               "cents. Confirmation number 4 8 2 1 3 3 7 5.",
         "es": "Pago aprobado: trescientos cincuenta y seis dólares con noventa centavos, más el cargo de dos "
               "dólares con cincuenta centavos. Número de confirmación: 4 8 2 1 3 3 7 5."}[lang])


def test_the_fee_accepted_is_the_fee_that_was_said_even_if_the_setting_changes_meanwhile():
    ctx = Context(fee=250)
    offer = step(ctx, identified(ctx), KeyPress("1"))
    ctx.convenience_fee_cents = 300  # a new setting deployed while the caller listens
    step(ctx, offer, KeyPress("1"))
    assert ctx.data["fee_cents"] == 250


def test_the_next_account_is_offered_its_own_card_on_file_even_after_the_first_ones_was_declined():
    from flows import CardOnFile, resume
    from flows.steps import DECLINED

    ctx = Context(accounts=(DANA_5001, DANA_5002),
                  cards={"12345001": CardOnFile("visa", "0341"), "12345002": CardOnFile("mastercard", "4444")})
    choice = step(ctx, identified(ctx), KeyPress("1"))
    assert choice.state == State.SAVED_CARD
    charging = step(ctx, choice, KeyPress("1"))
    declined = resume(charging, PayOutcome(DECLINED, {"decline_code": "card_declined", "saved_card_failed": True}), ctx)
    ctx.data.update(declined.updates)
    keypad = step(ctx, declined, KeyPress("1"))
    done = step(ctx, keypad, PayOutcome(APPROVED, {**APPROVED_TURN, "card_savable": True}))
    ctx.data["choices"] = ["12345001", "12345002"]

    offer = step(ctx, done, KeyPress("2"))  # another account, before the save offer
    assert ctx.data["card_savable"] is False and ctx.data["saved_card_failed"] is False
    summary = step(ctx, step(ctx, offer, KeyPress("1")), KeyPress("12345002"))
    second = step(ctx, summary, KeyPress("1"))
    assert second.state == State.SAVED_CARD
    assert "your Mastercard ending in 4 4 4 4" in heard(second, "en")
