"""The one word catalogue: every language file alike, keys resolved one way, amounts and dates written once."""

import tomllib
from datetime import date, datetime
from importlib.resources import files
from pathlib import Path

import pytest
from helpers import BASE, CallActions

import prompts
from prompts import amounts, dates, sms

ROOT = Path(__file__).resolve().parents[2]
ORG = "Riverbend Electric Cooperative"


def raw(lang):
    return tomllib.loads(files("prompts").joinpath(f"{lang}.toml").read_text(encoding="utf-8"))


def test_there_is_one_catalogue_file_per_language_and_no_other():
    found = {path.name for path in (ROOT / "prompts").glob("*.toml")}
    assert found == {f"{lang}.toml" for lang in prompts.LANGUAGES}


@pytest.mark.parametrize("lang", [lang for lang in prompts.LANGUAGES if lang != "en"])
def test_every_language_file_has_the_same_sections_keys_and_placeholders(lang):
    english, other = raw("en"), raw(lang)
    assert list(other) == list(english)
    assert set(english) == {"voice", "prompts", "sms", "page", "dates"}
    for section, entries in english.items():
        assert other[section].keys() == entries.keys(), section
        for key, template in entries.items():
            assert prompts.placeholders(other[section][key]) == prompts.placeholders(template), f"{section}.{key}"


def test_no_word_catalogue_or_catalogue_loader_lives_under_ivr():
    assert sorted(str(p.relative_to(ROOT)) for p in (ROOT / "ivr").rglob("*.toml")) == []
    loaders = [p.name for p in (ROOT / "ivr").rglob("*.py") if "tomllib" in p.read_text(encoding="utf-8")]
    assert loaders == []


def test_a_key_names_its_section_and_voice_prompts_go_bare():
    assert prompts.text("welcome", "en", org="Co-op") == "Thanks for calling Co-op."
    assert prompts.text("sms.pay_choice", "es", last4="5001") == "PAGAR 5001"
    assert prompts.text("page.call_button", "es") == "Llámenme ahora"
    with pytest.raises(KeyError):
        prompts.text("prompts.goodbye", "en", org="Co-op")  # the [prompts] section has no prefix
    with pytest.raises(KeyError):
        prompts.text("voice.language", "en")  # Twilio settings are not words
    assert prompts.voice("es")["language"] == "es-US"


def test_an_unknown_language_is_refused_by_the_catalogue_and_mapped_to_english_by_language():
    with pytest.raises(KeyError):
        prompts.text("goodbye", "fr", org="Co-op")
    assert [prompts.language(lang) for lang in ("es", "en", "fr", None, "")] == ["es", "en", "en", "en", "en"]


@pytest.mark.parametrize(
    ("cents", "for_people", "for_machines"),
    [
        (0, "$0.00", "0.00"),
        (5, "$0.05", "0.05"),
        (750, "$7.50", "7.50"),
        (123456, "$1,234.56", "1234.56"),
        (100000000, "$1,000,000.00", "1000000.00"),
        (-2500, "-$25.00", "-25.00"),
    ],
)
def test_amounts_are_written_for_people_and_for_machines(cents, for_people, for_machines):
    assert amounts.dollars(cents) == for_people
    assert amounts.decimal(cents) == for_machines


@pytest.mark.parametrize(
    ("lang", "short", "stamp"),
    [
        ("en", "Dec 5", "Dec 5, 2026 12:07 AM"),
        ("es", "5 dic", "5 dic 2026 00:07"),
    ],
)
def test_dates_for_a_text_follow_the_language(lang, short, stamp):
    assert dates.short_date(date(2026, 12, 5), lang) == short
    assert dates.short_datetime(datetime(2026, 12, 5, 0, 7), lang) == stamp


def test_clock_times_and_moments_read_naturally():
    afternoon = datetime(2026, 12, 4, 15, 5)
    assert [dates.clock_time(afternoon, lang) for lang in ("en", "es")] == ["3:05 PM", "15:05"]
    assert dates.clock_time(datetime(2026, 12, 4, 12, 30), "en") == "12:30 PM"
    assert dates.moment(afternoon, "en", today=date(2026, 12, 4)) == "3:05 PM"
    assert dates.moment(afternoon, "es", today=date(2026, 12, 3)) == "4 de diciembre de 2026, 15:05"


@pytest.mark.parametrize("kind", ["upcoming", "past_due"])
def test_an_english_reminder_with_long_fields_fits_one_gsm7_segment(kind):
    body = prompts.text(
        f"sms.reminder_{kind}",
        "en",
        org=ORG,  # about 30 characters, the README's promise
        amount=amounts.dollars(12_345_678),
        due=dates.short_date(date(2026, 12, 15), "en"),
        link=f"{BASE}/r/{'A' * 24}",  # tokens are 24 characters
    )
    assert sms.gsm7_length(body) is not None, body
    assert sms.fits_one_segment(body), (len(body), body)


@pytest.mark.parametrize("kind", ["upcoming", "past_due"])
def test_a_spanish_reminder_stays_in_the_gsm7_alphabet(kind):
    body = prompts.text(
        f"sms.reminder_{kind}",
        "es",
        org=ORG,
        amount=amounts.dollars(12_345_678),
        due=dates.short_date(date(2026, 12, 15), "es"),
        link=f"{BASE}/r/{'A' * 24}",
    )
    assert sms.gsm7_length(body) is not None, body


def test_a_callback_that_cannot_continue_hears_the_catalogue_line_in_the_catalogue_voice(client):
    call = CallActions(client, from_="+12025550100", to="+12025550143")
    call.post(f"{BASE}/twilio/voice/callback?c=999999", call.params(Direction="outbound-api"))

    assert call.root.xpath("./Say/text()") == [
        f"Hello, this is {ORG}. We're sorry, this call can't continue. Please call us back. Goodbye."
    ]
    assert call.root.xpath("./Say/@voice") == ["Polly.Joanna-Neural"]
    assert call.root.xpath("./Say/@language") == ["en-US"]
    assert len(call.root.findall("Hangup")) == 1
