"""The softphone says things: ``--say``, ``@`` in ``--keys``, and words typed at the prompt are sent
as ``SpeechResult`` with ``Confidence``, as Twilio sends them, to Gathers that listen for speech."""

import io
import json

import pytest
import test_softphone
from click.testing import CliRunner
from live import LiveServer, live_env  # noqa: F401  (a fixture)
from live import ivr as run_ivr
from test_softphone import TOKEN, call

from ivr.softphone.command import call_command

serve = test_softphone.serve  # the fixture: a fake server answering TwiML

SPEECH_MENU = {
    "/twilio/voice": """<Response><Gather input="dtmf speech" numDigits="1" action="/one">
        <Say>Say pay or press 1.</Say></Gather></Response>""",
    "/one": """<Response><Gather input="dtmf speech" action="/two"/></Response>""",
    "/two": """<Response><Gather action="/three"/><Redirect>/done</Redirect></Response>""",
    "/three": "<Response><Hangup/></Response>",
    "/done": "<Response><Hangup/></Response>",
}


def test_say_answers_each_gather_in_turn_with_speech_result_and_confidence(serve):
    server = serve(SPEECH_MENU)
    result = call(server, say=["pay the balance", "four two four two"], confidence=0.42)

    assert server.forms("/one")[0]["SpeechResult"] == "pay the balance"
    assert server.forms("/one")[0]["Confidence"] == "0.420000" and "Digits" not in server.forms("/one")[0]
    assert server.forms("/two")[0]["SpeechResult"] == "four two four two"
    assert result.steps[0].keys == ['"pay the balance"']


def test_at_in_keys_places_the_next_say_and_a_keys_only_gather_hears_silence(serve):
    server = serve(SPEECH_MENU)
    call(server, keys="1 @ @", say=["four two four two", "hello"])

    assert server.forms("/one")[0]["Digits"] == "1"
    assert server.forms("/two")[0]["SpeechResult"] == "four two four two"
    assert server.forms("/three") == []  # <Gather> without speech: the words are not heard
    assert len(server.forms("/done")) == 1


def test_words_typed_at_the_interactive_prompt_are_said(serve):
    server = serve(SPEECH_MENU)
    out = io.StringIO()
    call(server, stdin=io.StringIO("Pay the balance\n"), out=out)

    assert server.forms("/one")[0]["SpeechResult"] == "Pay the balance"
    assert float(server.forms("/one")[0]["Confidence"]) > 0.6
    assert 'caller says "Pay the balance"' in out.getvalue()


def test_more_at_signs_than_phrases_is_a_usage_error(serve):
    server = serve(SPEECH_MENU)
    result = CliRunner().invoke(call_command, ["--url", server.base, "--keys", "@ @", "--say", "pay", "--auth-token", TOKEN])
    assert result.exit_code == 2 and "more @ than there are --say phrases" in result.output


@pytest.mark.e2e
def test_a_spanish_member_pays_by_voice_against_the_real_server(live_env):  # noqa: F811
    """Rosa says everything but her card: Spanish, yes, her ZIP, a different amount, the amount, yes."""
    with LiveServer(live_env) as server:
        result = run_ivr("call", "--url", server.url, "--json", "--from", "+12025550178",
                         "--say", "español", "--say", "sí", "--say", "dos cero cero uno cero",
                         "--say", "otra cantidad", "--say", "cincuenta dólares con veinticinco centavos",
                         "--say", "sí", "--card", "4242424242424242,12/30,123,30301", env=server.env)
    assert result.returncode == 0, result.stderr
    transcript = json.loads(result.stdout)
    said = " ".join(say["text"] for step in transcript["steps"] for say in step["says"])
    assert "Pago aprobado: cincuenta dólares con veinticinco centavos" in said
    assert transcript["steps"][0]["keys"] == ['"español"']  # said, not keyed
