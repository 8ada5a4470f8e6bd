"""Request bodies are held to the largest Twilio and Stripe send, and refused (413) unread when larger."""

import io
import json
import uuid
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from helpers import ACCOUNT_SID, BASE, TOKEN, send_event
from werkzeug.test import EnvironBuilder, run_wsgi_app

from ivr.agents.keys import create_agent
from ivr.edge.request_size import MAX_BODY_BYTES, TWILIO_MAX_BODY_BYTES
from ivr.extensions import db
from ivr.models import CallSession
from ivr.reminders.models import SmsOptOut
from ivr.twilio.adapter import compute_signature

MB = 1024 * 1024


def sms_params(body, **extra):
    return {"MessageSid": "SM" + "1" * 32, "AccountSid": ACCOUNT_SID, "From": "+12025550143",
            "To": "+15005550006", "Body": body, "NumMedia": "0", **extra}


def signed(client, path, params):
    return client.post(path, data=params, headers={"X-Twilio-Signature": compute_signature(BASE + path, params, TOKEN)})


class CountingStream(io.RawIOBase):
    """A request body of ``size`` bytes that counts how much of it the app reads."""

    def __init__(self, size):
        self.left = size
        self.read_bytes = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.left)
        buffer[:n] = b"a" * n
        self.left -= n
        self.read_bytes += n
        return n


def test_a_signed_25_mb_form_is_refused_and_changes_nothing(app, client):
    params = sms_params("STOP", Padding="x" * (25 * MB))
    response = signed(client, "/twilio/sms", params)
    assert response.status_code == 413
    with app.app_context():  # the STOP inside was never read
        assert db.session.scalar(sa.select(sa.func.count()).select_from(SmsOptOut)) == 0


@pytest.mark.parametrize("path", ["/twilio/sms", "/twilio/voice", "/stripe/webhook", "/agent/login", "/api/agent/transfers"])
def test_an_oversized_body_is_refused_before_a_byte_of_it_is_read(app, client, path):
    with app.app_context():
        _agent, key = create_agent("Robin")
        db.session.commit()
    body = CountingStream(25 * MB)
    response = client.post(path, content_type="application/x-www-form-urlencoded",
                           headers={"X-Twilio-Signature": "x", "Authorization": f"Bearer {key}"},
                           environ_overrides={"wsgi.input": body, "CONTENT_LENGTH": str(25 * MB)})
    assert response.status_code == 413
    assert body.read_bytes == 0


def test_a_body_streamed_without_a_length_is_cut_off_at_the_limit(app):
    body = CountingStream(25 * MB)
    # Chunked, as gunicorn passes it on: no length, and the server marks where the body ends.
    environ = EnvironBuilder(path="/twilio/voice", method="POST", content_type="application/x-www-form-urlencoded",
                             headers={"X-Twilio-Signature": "x", "Transfer-Encoding": "chunked"}).get_environ()
    del environ["CONTENT_LENGTH"]
    environ.update({"wsgi.input": body, "wsgi.input_terminated": True})
    _body, status, _headers = run_wsgi_app(app, environ, buffered=True)
    assert status.startswith("413 ")
    assert body.read_bytes == MAX_BODY_BYTES + 1  # one byte past the limit, never the rest


def test_twilios_largest_text_is_taken_and_a_voice_webhook_past_twilios_size_is_not(app, client):
    # 1,600 characters of 4 UTF-8 bytes each (12 once percent-encoded) and ten pictures
    media = {f"MediaUrl{i}": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM{'a' * 32}/Media/ME{'b' * 32}"
             for i in range(10)}
    params = sms_params("HELP " + "\U0001F600" * 1595, NumMedia="10", **media)
    assert len(urlencode(params)) > 19_000
    response = signed(client, "/twilio/sms", params)
    assert response.status_code == 200 and b"<Message>" in response.data

    big = {"CallSid": "CA" + uuid.uuid4().hex, "AccountSid": ACCOUNT_SID, "From": "+12025550143",
           "To": "+18005550100", "Extra": "x" * TWILIO_MAX_BODY_BYTES}
    assert signed(client, "/twilio/voice", big).status_code == 413
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CallSession)) == 0


def test_stripes_largest_event_is_taken_and_a_larger_one_is_not(client):
    # A dispute with its 150,000 characters of evidence text, every one escaped as \uXXXX, and
    # 50 metadata values of 500 characters: the largest event Stripe sends us.
    evidence = {"uncategorized_text": "\u00e9" * 150_000}
    metadata = {f"key_{i:02d}_" + "k" * 33: "\u00e9" * 500 for i in range(50)}
    dispute = {"id": "dp_1", "object": "dispute", "amount": 5000, "charge": "ch_1", "status": "needs_response",
               "payment_intent": "pi_unknown", "evidence": evidence, "metadata": metadata}
    assert len(json.dumps({"data": {"object": dispute}})) > 1_000_000
    assert send_event(client, "charge.dispute.created", dispute).status_code == 200

    dispute["evidence"] = {"uncategorized_text": "x" * MAX_BODY_BYTES}
    assert send_event(client, "charge.dispute.created", dispute).status_code == 413


def test_a_streamed_body_within_the_limit_is_taken_as_any_other(app):
    params = sms_params("HELP")
    body = urlencode(params).encode()
    environ = EnvironBuilder(path="/twilio/sms", method="POST", content_type="application/x-www-form-urlencoded",
                             headers={"X-Twilio-Signature": compute_signature(BASE + "/twilio/sms", params, TOKEN),
                                      "Transfer-Encoding": "chunked"}).get_environ()
    del environ["CONTENT_LENGTH"]
    environ.update({"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True})
    answer, status, _headers = run_wsgi_app(app, environ, buffered=True)
    assert status.startswith("200 ") and b"Reply PAY for a call" in b"".join(answer)
