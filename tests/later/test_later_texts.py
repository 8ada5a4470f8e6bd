"""Paying later's texts stay in the GSM-7 alphabet in both languages, with the longest fields they can have."""

from datetime import date

import pytest

import prompts
from flows.decisions import brand_word
from prompts import amounts, dates, sms

ORG = "Riverbend Electric Cooperative"
FIELDS = {
    "org": ORG,
    "amount": amounts.dollars(12_345_678),
    "last4": "5001",
    "pay_line": "(800) 555-0100",
}


@pytest.mark.parametrize("lang", prompts.LANGUAGES)
@pytest.mark.parametrize("key", ["autopay_notice", "autopay_late", "autopay_failed", "scheduled_failed"])
def test_each_text_is_gsm7_so_it_costs_what_its_length_says(lang, key):
    reasons = [prompts.text(f"sms.reason_{r}", lang) for r in ("declined", "authentication", "no_card", "unavailable")]
    for reason in reasons:
        card = prompts.text("sms.pay_card", lang, brand=prompts.text(brand_word("amex"), lang), card_last4="0005")
        body = prompts.text(f"sms.{key}", lang, due=dates.short_date(date(2026, 12, 10), lang), reason=reason,
                            card=card, **FIELDS)
        assert sms.gsm7_length(body) is not None, body
        assert len(body) <= 320, body  # two segments at most


def test_texts_name_brands_as_the_call_does_and_any_other_card_as_a_card():
    brands = ("visa", "mastercard", "amex", "discover", "jcb", None)
    assert [prompts.text(brand_word(b), "en") for b in brands] == [
        "Visa", "Mastercard", "American Express", "Discover", "card", "card"]
    assert prompts.text(brand_word(None), "es") == "tarjeta"
