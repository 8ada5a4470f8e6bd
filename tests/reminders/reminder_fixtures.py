"""Fixtures and helpers shared by the reminder tests (this module holds no tests of its own)."""

import re
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from ivr.softphone.twilio_api import TwilioStandIn as FakeTwilio
from helpers import ACCOUNT_SID, BASE, TOKEN, CallActions
from lxml import etree

from ivr.extensions import db
from ivr.models import Account
from ivr.reminders import tokens
from ivr.reminders.models import Callback
from ivr.twilio.adapter import compute_signature

# 10:00 in New York on Thursday 3 December 2026: inside quiet hours' window everywhere in the US.
NOON_UTC = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
TODAY = date(2026, 12, 3)
MEMBER = "+12025550143"
ORG = "Riverbend Electric Cooperative"


class Clock:
    """The one "now" of the reminders and the worker, moved by tests."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def set(self, now: datetime) -> None:
        self.now = now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):
    """Freeze reminders' and the outbox worker's clock at ``NOON_UTC``; tests move it."""
    c = Clock(NOON_UTC)
    monkeypatch.setattr("ivr.reminders.clock.now", lambda: c.now)
    monkeypatch.setattr("ivr.outbox.engine.utcnow", lambda: c.now)
    return c


@pytest.fixture
def fake_twilio(app):
    """Twilio's REST API on loopback; the app's TwilioRest is pointed at it."""
    with FakeTwilio(ACCOUNT_SID) as fake:
        app.config["TWILIO_API_BASE"] = fake.url
        app.extensions.pop("ivr.twilio", None)
        yield fake


def signed_post(
    client, path: str, params: dict, *, token: str = TOKEN, signature: str | None = None
):
    """POST ``params`` to ``path`` as Twilio would, signed against the public URL."""
    sig = compute_signature(BASE + path, params, token) if signature is None else signature
    return client.post(path, data=params, headers={"X-Twilio-Signature": sig})


def text_in(client, body: str, *, from_: str = MEMBER) -> tuple[int, list[str]]:
    """Text ``body`` to our number from ``from_``; returns the status and the reply messages.

    The response is closed as a real server closes it, which runs work queued for after the reply.
    """
    params = {
        "MessageSid": "SM" + "1" * 32,
        "SmsSid": "SM" + "1" * 32,
        "AccountSid": ACCOUNT_SID,
        "From": from_,
        "To": "+15005550006",
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }
    response = signed_post(client, "/twilio/sms", params)
    response.close()
    if response.status_code != 200:
        return response.status_code, []
    root = etree.fromstring(response.data)
    return response.status_code, [m.text or "" for m in root.findall("Message")]


def callback_query(created_call: dict) -> str:
    """The ``c`` parameter of the voice URL we gave Twilio for a created call."""
    return parse_qs(urlsplit(created_call["Url"]).query)["c"][0]


def token_from(body: str) -> str:
    """The token of the ``/r/<token>`` link in a reminder text."""
    return body.split("/r/", 1)[1].split()[0]


# --- the link page and the callback, as a member uses them ------------------------------------

SECRET = "test-secret"
OUR_NUMBER = "+12025550100"  # a geographic number, so a receipt sent to it by mistake would show


@pytest.fixture
def app_config(app_config):
    """The app of the callback tests: a link secret, and our number placing the calls."""
    app_config["SECRET_KEY"] = SECRET
    app_config["TWILIO_FROM_NUMBER"] = OUR_NUMBER
    return app_config


def link(app, account_id: int, at: datetime = NOON_UTC) -> str:
    with app.app_context():
        account = db.session.get(Account, account_id)
        return "/r/" + tokens.issue(SECRET, account.id, account.phone, at)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


_forms: dict[tuple[int, str], str] = {}


def call_me_now(client, path: str, **extra):
    """Press "Call me now" on the page, as opened in this browser (perhaps a while ago)."""
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    if 'name="csrf_token"' in page.text:
        _forms[id(client), path] = csrf_of(page.text)
    return client.post(path, data={"csrf_token": _forms[id(client), path], **extra})


def requested_callback(app, client, make_account, fake_twilio, **fields):
    """A member pressed "Call me now": returns (page path, Twilio's side of the call)."""
    path = link(app, make_account(**fields))
    assert call_me_now(client, path).status_code == 303
    created = fake_twilio.created_calls[-1]
    with app.app_context():
        callback = db.session.get(Callback, int(callback_query(created)))
        call = CallActions(client, from_=OUR_NUMBER, to=MEMBER, call_sid=callback.call_sid)
    call.created = created
    return path, call


def answer(call, answered_by="human"):
    """Twilio requests the call's Url once the member's phone answers."""
    return call.post(
        call.created["Url"], call.params(Direction="outbound-api", AnsweredBy=answered_by)
    )
