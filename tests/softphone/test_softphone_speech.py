"""The softphone says things: ``--say``, ``@`` in ``--keys``, and words typed at the prompt are sent
as ``SpeechResult`` with ``Confidence``, as Twilio sends them, to Gathers that listen for speech."""

import io

from click.testing import CliRunner
from test_softphone import TOKEN, call, serve  # noqa: F401  (the fixture)

from ivr.softphone.command import call_command

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
