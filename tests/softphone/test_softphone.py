"""``ivr call``: the softphone talks to a real HTTP server on loopback exactly as Twilio would."""

import io
import json
import re
import threading
import time
from datetime import date

import pytest
from click.testing import CliRunner
from flask import Flask, Response, request
from werkzeug.serving import make_server

from ivr.softphone import call_command, cards, place_call
from ivr.softphone.session import sign
from ivr.twilio.adapter import validate_signature

TOKEN = "softphone-test-token"
CARD = "4242424242424242"
CVC = "987"
PAY_TWIML = """<Response><Pay action="/pay-done" statusCallback="/pay-status" maxAttempts="2"
  tokenType="payment-method" validCardTypes="visa mastercard amex discover">
  <Prompt for="payment-card-number" attempt="1">
    <Say language="en-US">Enter your card number.</Say></Prompt>
  <Prompt for="payment-card-number" attempt="2">
    <Say language="en-US">That card did not work. Try again.</Say></Prompt>
</Pay></Response>"""


def xml(body: str, status: int = 200, content_type: str = "text/xml") -> Response:
    return Response(body, status=status, content_type=content_type)


class FakeServer:
    """A Flask app on 127.0.0.1: checks each signature against its public URL, records requests."""

    def __init__(self, routes, public_base=None, name="a"):
        self.name = name
        self.requests = []
        app = Flask(name)
        app.add_url_rule(
            "/<path:path>", "any", lambda path: self._handle(routes, path), methods=["GET", "POST"]
        )
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.public_base = public_base or self.base
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def _handle(self, routes, path):
        query = request.query_string.decode()
        public = f"{self.public_base}/{path}" + (f"?{query}" if query else "")
        valid = validate_signature(
            public, request.form, request.headers.get("X-Twilio-Signature", ""), TOKEN
        )
        self.requests.append(
            {
                "server": self.name,
                "path": "/" + path,
                "query": request.args.to_dict(),
                "form": request.form.to_dict(),
                "body": request.get_data(as_text=True),
                "content_type": request.headers.get("Content-Type", ""),
                "valid": valid,
            }
        )
        if not valid:
            return Response("bad signature", status=403)
        answer = routes.get("/" + path, "<Response><Hangup/></Response>")
        return answer(request) if callable(answer) else xml(answer)

    def forms(self, path):
        return [r["form"] for r in self.requests if r["path"] == path]

    def close(self):
        self.server.shutdown()


@pytest.fixture
def serve():
    servers = []

    def start(routes, **kwargs):
        server = FakeServer(routes, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def call(server, **kwargs):
    kwargs.setdefault("auth_token", TOKEN)
    kwargs.setdefault("out", io.StringIO())
    return place_call(server.base, **kwargs)


MENU = {
    "/twilio/voice": """<Response><Gather numDigits="1" action="/menu">
        <Say language="en-US">Press 1 to pay.</Say></Gather></Response>""",
    "/menu": "<Response><Say language='es-MX'>Gracias.</Say><Hangup/></Response>",
    "/twilio/voice/status": "",
}


def test_signature_matches_twilios_documented_test_vector():
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert sign(url, params, "12345") == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_call_sends_signed_standard_voice_params_then_status_callback(serve):
    server = serve(MENU)
    result = call(server, keys="1", from_="+15551112222", to="+15005550006")

    assert result.exit_code == 0 and result.end_reason == "hangup"
    assert all(r["valid"] for r in server.requests)
    assert {r["content_type"] for r in server.requests} == {"application/x-www-form-urlencoded"}
    first, menu, status = (r["form"] for r in server.requests)
    assert re.fullmatch(r"CA[0-9a-f]{32}", first["CallSid"])
    assert {f["CallSid"] for f in (first, menu, status)} == {first["CallSid"]}
    assert first["CallStatus"] == "ringing" and menu["CallStatus"] == "in-progress"
    assert first["From"] == first["Caller"] == "+15551112222"
    assert first["To"] == first["Called"] == "+15005550006"
    assert (first["Direction"], first["ApiVersion"]) == ("inbound", "2010-04-01")
    assert (menu["Digits"], menu["FinishedOnKey"]) == ("1", "")
    assert server.requests[-1]["path"] == "/twilio/voice/status"
    assert status["CallStatus"] == "completed" and status["CallDuration"].isdigit()
    assert result.steps[1].says == [{"language": "es-MX", "text": "Gracias."}]


def test_relative_action_parent_path_and_absolute_urls_resolve_like_twilio(serve):
    routes = {
        "/ivr/menu/start": """<Response><Gather numDigits="1" action="next?step=2"/></Response>""",
        "/ivr/menu/next": "<Response><Redirect>../other/place</Redirect></Response>",
    }
    server = serve(routes)
    routes["/ivr/other/place"] = (
        f"<Response><Redirect method='GET'>{server.base}/abs/done</Redirect></Response>"
    )
    result = place_call(
        server.base + "/ivr/menu/start",
        keys="5",
        auth_token=TOKEN,
        status_callback="",
        out=io.StringIO(),
    )

    paths = [r["path"] for r in server.requests]
    assert paths == ["/ivr/menu/start", "/ivr/menu/next", "/ivr/other/place", "/abs/done"]
    assert server.requests[1]["query"] == {"step": "2"}
    # A GET carries Twilio's parameters in the query string, signed as part of the URL.
    assert server.requests[3]["query"]["CallSid"] == result.call_sid
    assert all(r["valid"] for r in server.requests)
    assert result.exit_code == 0


def test_gather_without_input_falls_through_to_the_next_verb(serve):
    server = serve(
        {
            "/twilio/voice": """<Response>
                <Gather numDigits="1" action="/choice"><Say>Choose.</Say></Gather>
                <Say>We did not hear you.</Say><Redirect>/again</Redirect></Response>""",
            "/again": """<Response>
                <Gather numDigits="1" action="/choice" actionOnEmptyResult="true"/></Response>""",
            "/choice": "<Response><Hangup/></Response>",
        }
    )
    result = call(server, keys="_ _")

    assert result.says == ["Choose.", "We did not hear you."]
    # The first silence never reaches /choice; the second does, because actionOnEmptyResult="true".
    assert [r["path"] for r in server.requests][:3] == ["/twilio/voice", "/again", "/choice"]
    assert [f["Digits"] for f in server.forms("/choice")] == [""]


def test_extra_digits_carry_over_to_the_next_gather_and_finish_key_is_stripped(serve):
    server = serve(
        {
            "/twilio/voice": """<Response><Gather numDigits="1" action="/one"/></Response>""",
            "/one": """<Response><Gather numDigits="4" action="/two"/></Response>""",
            "/two": """<Response><Gather action="/three"/></Response>""",
            "/three": """<Response><Gather action="/four"/></Response>""",
        }
    )
    result = call(server, keys="31234 12345001# 4567")

    digits = [
        (f["Digits"], f["FinishedOnKey"])
        for p in ("/one", "/two", "/three", "/four")
        for f in server.forms(p)
    ]
    assert digits == [("3", ""), ("1234", ""), ("12345001", "#"), ("4567", "")]
    assert result.steps[0].keys == ["3"] and result.steps[1].keys == ["1234"]


def test_caller_hangs_up_when_the_script_runs_out(serve):
    server = serve(MENU)
    result = call(server, keys="")

    assert result.end_reason == "caller-hung-up"
    assert [r["path"] for r in server.requests] == ["/twilio/voice", "/twilio/voice/status"]


def test_pay_posts_what_twilio_posts_and_never_the_card(serve):
    server = serve(
        {"/twilio/voice": PAY_TWIML, "/pay-done": "<Response><Say>Paid.</Say></Response>"}
    )
    out = io.StringIO()
    result = call(server, cards=[f"{CARD},12/34,{CVC},30301"], out=out)

    done = server.forms("/pay-done")[0]
    pay_params = {k: v for k, v in done.items() if k not in server.requests[0]["form"]}
    assert re.fullmatch(r"cus_\w+", pay_params.pop("ProfileId"))  # the Stripe connector's customer
    assert pay_params == {
        "Result": "success",
        "PaymentToken": "pm_card_visa",
        "PaymentMethod": "credit-card",
        "PaymentCardNumber": "xxxxxxxxxxxx4242",
        "PaymentCardType": "visa",
        "ExpirationDate": "1234",
        "SecurityCode": "***",
        "PaymentCardPostalCode": "30301",
    }
    progress = [(f["For"], f["Attempt"]) for f in server.forms("/pay-status")]
    assert progress == [
        ("payment-card-number", "1"),
        ("expiration-date", "1"),
        ("security-code", "1"),
        ("postal-code", "1"),
        ("payment-processing", "1"),
    ]
    assert all(r["valid"] for r in server.requests)
    for r in server.requests:
        assert CARD not in r["body"] and CVC not in r["form"].values()
    # Drop the random CallSid, port and timings, which could contain any three digits by chance.
    shown = re.sub(r'\d+ ms|"ms": \d+', "", out.getvalue() + result.to_json())
    shown = shown.replace(result.call_sid, "").replace(server.base, "")
    assert CARD not in shown and CVC not in shown
    assert "12/34" not in shown and "1234" not in shown
    assert result.says == ["Enter your card number.", "Paid."]


def test_the_same_card_keyed_on_two_calls_belongs_to_one_stripe_customer(serve):
    server = serve({"/twilio/voice": PAY_TWIML})
    call(server, cards=[f"{CARD},12/34,{CVC},30301"])
    call(server, cards=[f"{CARD},01/40,123,30301"])
    call(server, cards=["5555555555554444,01/40,123,30301"])

    first, again, other = (form["ProfileId"] for form in server.forms("/pay-done"))
    assert first == again and other != first
    assert CARD[-4:] not in first and CARD not in first


def test_unknown_luhn_valid_card_gets_its_brands_generic_token(serve):
    server = serve({"/twilio/voice": PAY_TWIML})
    call(server, cards=["5105105105105100,01/40,123,30301"])

    done = server.forms("/pay-done")[0]
    assert (done["PaymentToken"], done["PaymentCardType"]) == ("pm_card_mastercard", "mastercard")


def test_invalid_card_is_reprompted_then_too_many_failed_attempts(serve):
    server = serve({"/twilio/voice": PAY_TWIML})
    result = call(server, cards=["4242424242424241,12/34,123,30301"])

    done = server.forms("/pay-done")[0]
    assert done["Result"] == "too-many-failed-attempts"
    assert done["PaymentError"] == "invalid-card-number" and "PaymentToken" not in done
    errors = [
        (f["Attempt"], f.get("ErrorType"))
        for f in server.forms("/pay-status")
        if f.get("ErrorType")
    ]
    assert errors == [("1", "invalid-card-number"), ("2", "invalid-card-number")]
    assert result.says == ["Enter your card number.", "That card did not work. Try again."]


def test_retry_with_a_good_card_succeeds_on_the_second_attempt(serve):
    server = serve({"/twilio/voice": PAY_TWIML})
    call(server, cards=[f"4242424242424241|{CARD},12/34,123,30301"])

    assert server.forms("/pay-done")[0]["Result"] == "success"


@pytest.mark.parametrize(
    ("card", "error"),
    [
        ("4242424242424242,01/20,123,30301", "invalid-date"),
        ("378282246310005,12/34,123,30301", "invalid-security-code"),
        ("4242424242424242,12/34,123,3030", "invalid-postal-code"),
        ("4242424242424242,,123,30301", "input-timeout"),
        ("3566002020360505,12/34,123,30301", "invalid-card-type"),
    ],
)
def test_each_card_field_is_validated_like_twilio(serve, card, error):
    server = serve({"/twilio/voice": PAY_TWIML})
    call(server, cards=[card])

    assert server.forms("/pay-done")[0]["PaymentError"] == error


def test_hanging_up_during_pay_tells_the_action_then_completes_the_call(serve):
    server = serve({"/twilio/voice": PAY_TWIML, "/twilio/voice/status": ""})
    result = call(server, hangup_in_pay=True)

    assert [r["path"] for r in server.requests][-2:] == ["/pay-done", "/twilio/voice/status"]
    done = server.forms("/pay-done")[0]
    assert (done["Result"], done["CallStatus"]) == ("caller-hung-up", "completed")
    assert result.end_reason == "caller-hung-up" and result.exit_code == 0


def test_star_during_pay_interrupts_and_the_call_goes_on(serve):
    server = serve(
        {"/twilio/voice": PAY_TWIML, "/pay-done": "<Response><Say>Cancelled.</Say></Response>"}
    )
    result = call(server, cards=[f"{CARD},*"])

    assert server.forms("/pay-done")[0]["Result"] == "caller-interrupted-with-star"
    assert result.says[-1] == "Cancelled."


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            lambda r: xml("oops", status=500),
            "the server answered 500 to the Gather action of step 2",
        ),
        (lambda r: xml("<Response/>", content_type="text/html"), "text/html to the Gather action"),
        (lambda r: xml("<Response><Say>unclosed</Response>"), "not well-formed XML"),
        (lambda r: xml("<Response><Speak>hi</Speak></Response>"), "unknown verb <Speak>"),
        (lambda r: xml("<Response>" + "<Pause/>" * 10000 + "</Response>"), "(error 11750)"),
    ],
)
def test_bad_answers_exit_nonzero_with_a_plain_message(serve, answer, message):
    server = serve({**MENU, "/menu": answer})
    result = CliRunner().invoke(
        call_command, ["--url", server.base, "--keys", "1", "--auth-token", TOKEN]
    )

    assert result.exit_code == 1
    assert message in result.output
    assert "Twilio would say 'an application error has occurred'" in result.output
    # The call still ends the way Twilio ends it: with the status callback.
    assert server.requests[-1]["path"] == "/twilio/voice/status"


def test_slow_answer_is_an_application_error(serve):
    def slow(r):
        time.sleep(1.0)
        return xml("<Response/>")

    server = serve({"/twilio/voice": slow})
    result = call(server, keys="", timeout_s=0.3)

    assert result.exit_code == 1 and result.end_reason == "application-error"
    assert "did not answer within 0.3 s to the Voice URL of step 1" in result.problems[0]


def test_json_transcript(serve):
    server = serve(MENU)
    result = CliRunner().invoke(
        call_command, ["--url", server.base, "--keys", "1", "--auth-token", TOKEN, "--json"]
    )

    assert result.exit_code == 0
    transcript = json.loads(result.stdout)
    first = transcript["steps"][0]
    assert first["purpose"] == "Voice URL" and first["url"] == server.base + "/twilio/voice"
    assert first["status"] == 200 and isinstance(first["ms"], int)
    assert first["says"] == [{"language": "en-US", "text": "Press 1 to pay."}]
    assert first["keys"] == ["1"]
    assert transcript["steps"][1]["params"]["Digits"] == "1"
    assert transcript["end_reason"] == "hangup" and transcript["problems"] == []


def test_via_sends_round_robin_but_signs_the_public_url(serve):
    public = "https://pay.example.coop"
    a = serve(MENU, public_base=public, name="a")
    b = serve(MENU, public_base=public, name="b")
    result = place_call(
        public, via=[a.base, b.base + "/"], keys="1", auth_token=TOKEN, out=io.StringIO()
    )

    assert [r["path"] for r in a.requests] == ["/twilio/voice", "/twilio/voice/status"]
    assert [r["path"] for r in b.requests] == ["/menu"]
    assert all(r["valid"] for r in a.requests + b.requests)
    assert result.steps[1].url == public + "/menu" and result.steps[1].sent_to == b.base + "/menu"


def test_dial_with_action_reports_the_dialed_call(serve):
    server = serve(
        {
            "/twilio/voice": """<Response>
                <Dial action="/after"><Number>+15550001111</Number></Dial></Response>""",
            "/after": "<Response><Say>Back.</Say></Response>",
        }
    )
    result = call(server, keys="", dial_status="busy")

    assert server.forms("/after")[0]["DialCallStatus"] == "busy"
    assert result.says == ["Back."]


def test_reject_as_first_verb_leaves_the_call_unanswered(serve):
    server = serve({"/twilio/voice": "<Response><Reject reason='busy'/></Response>"})
    result = call(server, keys="")

    status = server.forms("/twilio/voice/status")[0]
    assert (status["CallStatus"], status["CallDuration"]) == ("busy", "0")
    assert result.end_reason == "rejected"


def test_interactive_caller_types_keys_and_empty_line_is_silence(serve):
    server = serve(
        {
            "/twilio/voice": """<Response><Gather numDigits="1" action="/menu"/>
                <Say>Nothing pressed.</Say><Redirect>/twilio/voice</Redirect></Response>""",
            "/menu": "<Response><Hangup/></Response>",
        }
    )
    out = io.StringIO()
    result = call(server, stdin=io.StringIO("\n7\n"), out=out)

    assert result.says == ["Nothing pressed."]
    assert server.forms("/menu")[0]["Digits"] == "7"
    assert "Enter = silence" in out.getvalue()


def test_card_checks_follow_twilio():
    assert cards.card_brand("378282246310005") == "amex"
    assert cards.check_security_code("1234", "amex") is None
    assert cards.check_security_code("123", "amex") == "invalid-security-code"
    assert cards.check_expiry("11/26", date(2026, 11, 30)) is None
    assert cards.check_expiry("10/26", date(2026, 11, 1)) == "invalid-date"
    assert cards.check_card_number("6011111111111117", ("visa",)) == "invalid-card-type"


# --- texts ----------------------------------------------------------------------------------------


def test_text_sends_each_message_signed_as_twilio_and_shows_the_replies(serve):
    def echo(r):
        return xml(f"<Response><Message>You said {r.form['Body']}.</Message></Response>")

    server = serve({"/twilio/sms": echo})
    result = CliRunner().invoke(call_command, ["--url", server.base + "/twilio/voice", "--from", "+12025550143",
                                               "--text", "PAY", "--text", "YES", "--auth-token", TOKEN])

    assert result.exit_code == 0, result.output
    assert "  > PAY\n  < You said PAY.\n  > YES\n  < You said YES.\n" in result.output
    forms = server.forms("/twilio/sms")
    assert [f["Body"] for f in forms] == ["PAY", "YES"]
    assert all(r["valid"] for r in server.requests) and [r["path"] for r in server.requests] == ["/twilio/sms"] * 2
    first = forms[0]
    assert (first["From"], first["To"], first["SmsStatus"], first["NumMedia"]) == (
        "+12025550143", "+15005550006", "received", "0")
    assert re.fullmatch(r"SM[0-9a-f]{32}", first["MessageSid"]) and first["MessageSid"] != forms[1]["MessageSid"]


def test_text_as_json_lists_each_message_and_its_replies(serve):
    server = serve({"/twilio/sms": "<Response><Message>One</Message><Message>Two</Message></Response>"})
    result = CliRunner().invoke(call_command, ["--url", server.base, "--text", "BAL", "--auth-token", TOKEN, "--json"])

    exchange = json.loads(result.stdout)
    assert exchange["steps"][0]["body"] == "BAL" and exchange["steps"][0]["replies"] == ["One", "Two"]
    assert exchange["url"] == server.base + "/twilio/sms" and exchange["exit_code"] == 0


@pytest.mark.parametrize(("answer", "message"), [
    (lambda r: Response("boom", status=500), "the server answered 500"),
    (lambda r: xml("<Response><Say>hi</Say></Response>"), "unknown verb <Say>"),
    (lambda r: xml("<Response><Message>x</Response>"), "not well-formed XML"),
])
def test_a_bad_answer_to_a_text_exits_nonzero(serve, answer, message):
    server = serve({"/twilio/sms": answer})
    result = CliRunner().invoke(call_command, ["--url", server.base, "--text", "PAY", "--auth-token", TOKEN])
    assert result.exit_code == 1 and message in result.output


def test_text_and_keys_together_are_refused(serve):
    server = serve({})
    result = CliRunner().invoke(call_command, ["--url", server.base, "--text", "PAY", "--keys", "1"])
    assert result.exit_code == 2 and "--text sends texts instead of placing a call" in result.output
    assert server.requests == []


def test_ssml_is_printed_as_the_words_heard_and_pauses_are_kept_apart(serve):
    server = serve({
        "/twilio/voice": """<Response><Say language="en-US" voice="Polly.Joanna-Neural">Approved.<break time="300ms"/>
            Confirmation number <say-as interpret-as="digits">48213375</say-as>. <break time="1s"/>Goodbye.</Say>
            <Hangup/></Response>""",
        "/twilio/voice/status": "",
    })
    result = call(server, keys="")

    (said,) = result.steps[0].says
    assert said["text"] == "Approved. Confirmation number 4 8 2 1 3 3 7 5. Goodbye."
    assert said["pause_ms"] == "1300"
