"""The reminder words: English and Spanish catalogues match, and texts stay cheap to send."""

from datetime import date

import pytest

import prompts
from flows.decisions import brand_word
from ivr.phones import national
from prompts import dates, sms


def test_english_and_spanish_have_the_same_keys_and_placeholders():
    english, spanish = prompts.catalog("en"), prompts.catalog("es")
    assert english.keys() == spanish.keys()
    assert {"sms.reminder_upcoming", "page.call_button", "dates.long_date", "callback_voicemail"} <= english.keys()
    for key, template in english.items():
        assert prompts.placeholders(template) == prompts.placeholders(spanish[key]), key


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize(
    "key",
    [
        "reminder_upcoming",
        "reminder_past_due",
        "help",
        "pay_calling",
        "pay_which",
        "balance_one",
        "unknown_number",
        "menu",
        "pay_wait_minutes",
    ],
)
def test_texts_use_only_the_gsm7_alphabet(lang, key):
    body = prompts.text(
        f"sms.{key}",
        lang,
        org="Co-op",
        amount="$1.00",
        due="Dec 5",
        link="https://x/r/abc",
        phone="(202) 555-0100",
        last4="5001",
        choices="PAY 5001",
        minutes=3,
        due_date="",
        lines="",
        when="3:15 PM",
    )
    assert sms.gsm7_length(body) is not None, body


@pytest.mark.parametrize("lang", ["en", "es"])
def test_pay_by_text_texts_are_gsm7_and_the_offer_fits_one_segment(lang):
    fields = {"org": "Riverbend Electric Cooperative", "minutes": 10, "amount": "$12,345.67", "last4": "5001",
              "card": prompts.text("sms.pay_card", lang, brand=prompts.text(brand_word("amex"), lang), card_last4="0005"),
              "confirmation": "12345678", "pay_line": "(202) 555-0100", "phone": "(202) 555-0100",
              "choices": "PAY 5001 or PAY 7002", "when": "December 4, 2026, 10:00 AM", "brand": "Visa",
              "card_last4": "4242"}
    # The brand_ words are the call's, and texted too.
    keys = [key for key in prompts.catalog(lang) if key.startswith(("sms.pay_", "brand_", "sms.help_", "sms.menu_"))]
    assert "sms.pay_offer" in keys and "sms.pay_authentication" in keys
    for key in keys:
        body = prompts.text(key, lang, **fields)
        assert sms.gsm7_length(body) is not None, body
    # The offer names the amount and the card before YES: it must arrive whole, in one text.
    assert sms.fits_one_segment(prompts.text("sms.pay_offer", lang, **fields))


def test_gsm7_length_counts_extension_characters_twice_and_rejects_others():
    assert sms.gsm7_length("Pay $5 {now}") == 14
    assert sms.gsm7_length("Envíe") is None  # í is not in GSM-7: the text would go as UCS-2
    assert sms.fits_one_segment("x" * 160) and not sms.fits_one_segment("x" * 161)


def test_dates_and_times_read_naturally():
    assert dates.long_date(date(2026, 12, 5), "en") == "December 5, 2026"
    assert dates.long_date(date(2026, 12, 5), "es") == "5 de diciembre de 2026"
    assert national("+12025550143") == "(202) 555-0143"
