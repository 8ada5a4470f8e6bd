"""The Twilio stand-in and the adapter against Twilio's OpenAPI description: what is sent, what comes back."""

import json
import time
from pathlib import Path

import pytest
import requests

from ivr.softphone.twilio_api import TwilioStandIn
from ivr.twilio.adapter import TwilioRest

SPEC_FILE = Path("/work/shared/specs/twilio_api_v2010.json")
ACCOUNT = "AC" + "c" * 32
ACCOUNTS = "/2010-04-01/Accounts/{AccountSid}"

pytestmark = pytest.mark.skipif(not SPEC_FILE.exists(), reason="Twilio's OpenAPI description is not here")


@pytest.fixture(scope="module")
def spec():
    return json.loads(SPEC_FILE.read_text())


def form_schema(spec, path, method="post"):
    schema = spec["paths"][path][method]["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    return set(schema["properties"]), set(schema.get("required", []))


def resource_properties(spec, name):
    return set(spec["components"]["schemas"][name]["properties"])


def assert_sent_fits(spec, path, form):
    allowed, required = form_schema(spec, path)
    assert set(form) <= allowed, set(form) - allowed
    assert required <= set(form), required - set(form)


def test_what_the_adapter_sends_is_in_twilios_description_and_the_answers_have_its_fields(spec):
    with TwilioStandIn(ACCOUNT) as twilio:
        rest = TwilioRest(ACCOUNT, "token", from_number="+18005550100", api_base=twilio.url)
        live = twilio.add_call()
        placed = rest.create_call("+12025550143", "https://ivr.example/twilio/voice/callback?c=1",
                                  status_callback="https://ivr.example/s", status_callback_events=["answered"],
                                  machine_detection="DetectMessageEnd")
        rest.redirect_call(live, "https://ivr.example/twilio/voice/transfer?t=tr_1")
        pk = rest.create_payment(live, idempotency_key="ap_1:create", status_callback="https://ivr.example/p",
                                 payment_connector="Stripe_Connector")
        rest.update_payment(live, pk, idempotency_key="ap_1:1:capture", status_callback="https://ivr.example/p",
                            capture="payment-card-number")
        rest.send_sms("+12025550143", "Receipt 1")
        assert rest.fetch_call(placed.sid).status == "queued"

        assert_sent_fits(spec, f"{ACCOUNTS}/Calls.json", twilio.created_calls[0])
        assert_sent_fits(spec, f"{ACCOUNTS}/Calls/{{Sid}}.json", {k: v for k, v in twilio.updates[0].items() if k != "sid"})
        assert_sent_fits(spec, f"{ACCOUNTS}/Calls/{{CallSid}}/Payments.json",
                         {k: v for k, v in twilio.payments[0].items() if k != "call_sid"})
        assert_sent_fits(spec, f"{ACCOUNTS}/Calls/{{CallSid}}/Payments/{{Sid}}.json",
                         {k: v for k, v in twilio.payments[1].items() if k not in ("call_sid", "payment_sid")})
        assert_sent_fits(spec, f"{ACCOUNTS}/Messages.json", twilio.messages[0])

        base = f"{twilio.url}/2010-04-01/Accounts/{ACCOUNT}"
        call = requests.get(f"{base}/Calls/{placed.sid}.json", timeout=5).json()
        assert set(call) == resource_properties(spec, "api.v2010.account.call")
        payment = requests.post(f"{base}/Calls/{live}/Payments.json", timeout=5,
                                data={"IdempotencyKey": "k", "StatusCallback": "https://ivr.example/p"}).json()
        assert set(payment) == resource_properties(spec, "api.v2010.account.call.payments")
        message = requests.get(f"{base}/Messages.json", timeout=5).json()["messages"][0]
        assert set(message) == resource_properties(spec, "api.v2010.account.message")


def test_a_redirect_and_a_payments_session_wait_for_the_softphone_on_that_call_only():
    with TwilioStandIn(ACCOUNT) as twilio:
        rest = TwilioRest(ACCOUNT, "token", from_number="+18005550100", api_base=twilio.url)
        mine, other = twilio.add_call(), twilio.add_call()
        rest.redirect_call(mine, "https://ivr.example/twilio/voice/transfer?t=tr_1")
        events = requests.get(f"{twilio.url}/_softphone/calls/{mine}/events", timeout=5).json()["events"]
        assert [(e["kind"], e["url"]) for e in events] == [("redirect", "https://ivr.example/twilio/voice/transfer?t=tr_1")]
        assert requests.get(f"{twilio.url}/_softphone/calls/{other}/events", timeout=5).json()["events"] == []
        # once the softphone says the call ended, Twilio refuses to redirect it
        requests.post(f"{twilio.url}/_softphone/calls/{mine}/ended", data={"CallStatus": "completed"}, timeout=5)
        with pytest.raises(Exception) as refused:
            rest.redirect_call(mine, "https://ivr.example/x")
        assert refused.value.code == 21220


def test_a_placed_call_nobody_answers_ends_no_answer_with_a_signed_status_callback():
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from urllib.parse import parse_qsl

    from ivr.twilio.adapter import validate_signature

    received = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            received.append((self.path, dict(parse_qsl(body)), self.headers["X-Twilio-Signature"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    app = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    status_url = f"http://127.0.0.1:{app.server_port}/twilio/voice/callback/status?c=7"
    try:
        with TwilioStandIn(ACCOUNT, auth_token="the-token") as twilio:
            rest = TwilioRest(ACCOUNT, "the-token", from_number="+18005550100", api_base=twilio.url)
            answered = rest.create_call("+12025550143", "https://ivr.example/a", status_callback=status_url, timeout=1)
            unanswered = rest.create_call("+12025550178", "https://ivr.example/b", status_callback=status_url,
                                          timeout=1)
            assert requests.post(f"{twilio.url}/_softphone/answer", timeout=5).json()["call"]["sid"] == answered.sid
            deadline = time.monotonic() + 10
            while not received and time.monotonic() < deadline:
                time.sleep(0.1)
            assert rest.fetch_call(unanswered.sid).status == "no-answer"
            assert rest.fetch_call(answered.sid).status == "in-progress"
    finally:
        app.shutdown()
    [(path, params, signature)] = received
    assert params["CallSid"] == unanswered.sid and params["CallStatus"] == "no-answer"
    assert validate_signature(status_url, params, signature, "the-token")
