"""Render the engine's ``Turn`` as TwiML. The only place that decides verbs and their attributes."""

from collections.abc import Mapping

from flask import Response, current_app

import prompts
from flows import Keys, Pay, Prompt, Turn, speech

from ..twilio import adapter as twilio_adapter
from .spoken import DigitRun, say_parts

# The language speech is recognised in, per call language (US Spanish: callers here are in the US).
SPEECH_LANGUAGES = {"en": "en-US", "es": "es-US"}

_PAY_PROMPT_KEYS = {
    "payment-card-number": "pay_card_number",
    "expiration-date": "pay_expiration_date",
    "security-code": "pay_security_code",
    "postal-code": "pay_postal_code",
}


def xml_response(twiml: str) -> Response:
    """A TwiML document as Twilio expects it."""
    return Response(twiml, status=200, mimetype="text/xml")


def url(path: str, **query: object) -> str:
    """An absolute URL under ``PUBLIC_BASE_URL``: every URL handed to Twilio must be one."""
    base = current_app.config["PUBLIC_BASE_URL"]
    if not query:
        return f"{base}{path}"
    from urllib.parse import urlencode

    return f"{base}{path}?{urlencode(query)}"


# A short pause after the first prompt of a <Say> (the balance, then the menu; the approval, then
# what comes next): the ear needs a beat to file what it was told before the choices. One per
# <Say>, since Polly already pauses at every full stop. Counted by bench/speech_length.py.
PROMPT_BREAK = "300ms"


def say_settings(lang: str) -> dict[str, str]:
    """``voice`` and ``language`` of a ``<Say>`` in ``lang``: TTS_VOICE_EN/_ES, else the catalogue's default."""
    settings = prompts.voice(lang)
    voice = current_app.config.get("TTS_VOICES", {}).get(lang) or settings["voice"]
    return {"voice": voice, "language": settings["language"]}


def _add_says(node, said: tuple[Prompt, ...], lang: str) -> None:
    """Append ``<Say>`` elements, merging neighbours of the same language into one.

    Digit strings (an account's last four, a confirmation number) go in SSML ``<say-as
    interpret-as="digits">``, and a short ``<break>`` follows the first of several prompts in one ``<Say>``.
    """
    org = current_app.config["ORG_NAME"]
    chunks: list[tuple[str, list[list[str | DigitRun]]]] = []
    for prompt in said:
        language, parts = say_parts(prompt, lang, org)
        if chunks and chunks[-1][0] == language:
            chunks[-1][1].append(parts)
        else:
            chunks.append((language, [parts]))
    for language, prompts_said in chunks:
        items: list[str | DigitRun | None] = []  # None: the break
        for index, parts in enumerate(prompts_said):
            if index == 1:
                items.append(None)
            elif index:
                items.append(" ")
            items.extend(parts)
        _fill_say(node.say(**say_settings(language)), items)


def _fill_say(say_node, items: list) -> None:
    """Text, ``<say-as>`` digits and ``<break>`` (``None``) in order into one ``<Say>``.

    Neighbouring text is joined first: the SDK keeps one text (an XML tail) after each element,
    so a second string nested after the same element would replace the first.
    """
    text = ""
    for item in items:
        if isinstance(item, str):
            text += item
            continue
        if text:
            say_node.nest(text)
            text = ""
        if isinstance(item, DigitRun):
            if item.digits:  # nothing to say is no element (a confirmation number not yet known)
                say_node.say_as(item.digits, interpret_as="digits")
        else:
            say_node.break_(time=PROMPT_BREAK)
    if text:
        say_node.nest(text)


def render_turn(turn: Turn, lang: str, seq: int, *, return_to: str | None = None, description: str = "") -> str:
    """The TwiML for ``turn``: prompts, then a Gather, a Pay, a Dial or a Hangup."""
    response = twilio_adapter.voice_response()
    step_url = url("/twilio/voice/step", seq=seq)
    if isinstance(turn.expect, Keys):
        keys = turn.expect
        gather = response.gather(
            action=step_url,
            method="POST",
            # Keys or voice at every prompt; card data never comes here (it is DTMF inside <Pay>).
            input="dtmf speech",
            timeout=keys.timeout,
            num_digits=keys.num_digits,
            # One-key menus take "#" as a key (so it can be explained); entries finish on "#".
            finish_on_key=keys.finish_on_key,
            language=SPEECH_LANGUAGES.get(lang, "en-US"),
            speech_model=current_app.config.get("SPEECH_MODEL") or "numbers_and_commands",
            speech_timeout="auto",
            hints=speech.hints(keys.hear, keys.words if isinstance(keys.words, Mapping) else {}, lang) or None,
        )
        _add_says(gather, turn.say, lang)
        # A Gather that hears nothing falls through to the next verb: that is our "silence" signal.
        response.redirect(step_url, method="POST")
    elif isinstance(turn.expect, Pay):
        _add_says(response, turn.say, lang)
        _add_pay(response, lang, seq, description)
    else:
        _add_says(response, turn.say, lang)
        target = current_app.config["AGENT_TRANSFER_NUMBER"] if turn.dial == "agent" else return_to
        if turn.dial and target:
            dial = response.dial(timeout=30)
            if target.startswith("sip:"):
                dial.sip(target)
            else:
                dial.number(target)
        response.hangup()
    return str(response)


def _add_pay(response, lang: str, seq: int, description: str) -> None:
    """``<Pay>`` in tokenize mode (no chargeAmount) with prompts in the caller's language."""
    cfg = current_app.config
    settings = prompts.voice(lang)
    voice = say_settings(lang)
    pay = response.pay(
        input="dtmf",
        action=url("/twilio/voice/pay", seq=seq),
        status_callback=url("/twilio/voice/pay-status"),
        payment_connector=cfg["TWILIO_PAY_CONNECTOR"],
        token_type="payment-method",
        valid_card_types="visa mastercard amex discover",
        max_attempts=3,
        security_code=True,
        postal_code=True,
        timeout=10,
        language=settings["pay_language"],
        description=description or None,
    )
    for field in twilio_adapter.CARD_FIELDS:
        key = _PAY_PROMPT_KEYS[field]
        first = pay.prompt(for_=field, attempt=1)
        first.say(prompts.text(key, lang), **voice)
        again = pay.prompt(for_=field, attempt="2 3")
        again.say(prompts.text(f"{key}_retry", lang), **voice)
    processing = pay.prompt(for_="payment-processing")
    processing.say(prompts.text("pay_processing", lang), **voice)


def say_and_hang_up(key: str, lang: str) -> str:
    """One prompt of the catalogue (``{org}`` its only placeholder), then a hang-up."""
    response = twilio_adapter.voice_response()
    org = current_app.config["ORG_NAME"]
    response.say(prompts.text(key, lang, org=org), **say_settings(lang))
    response.hangup()
    return str(response)


def apology(lang: str = "en") -> str:
    """What Twilio hears when something broke: an apology and a hang-up, never an HTML error page."""
    return say_and_hang_up("system_error", lang)
