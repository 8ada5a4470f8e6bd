"""With the database out of reach nothing answers 500: members hear or read an apology in their
words, the APIs answer 503 with Retry-After so their callers try again."""

import re
import uuid
from datetime import UTC, datetime

import pytest
from helpers import ACCOUNT_SID, BASE, TOKEN, CallActions, send_event
from lxml import etree

from ivr.reminders import tokens
from ivr.twilio.adapter import compute_signature

ORG = "Riverbend Electric Cooperative"


@pytest.fixture
def down(app_config, database_url, tmp_path):
    """The app pointed at a database that does not answer: a file it cannot open, a port nobody serves."""
    from ivr import create_app
    from ivr.extensions import db

    if database_url.startswith("sqlite"):
        unreachable = f"sqlite:///{tmp_path / 'no-such-directory' / 'ivr.sqlite3'}"
    else:
        unreachable = re.sub(r"@[^/]+/", "@127.0.0.1:9/", database_url)  # nothing listens on port 9
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": unreachable, "SQLALCHEMY_BINDS": {}})
    yield app
    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()


def sms(client, body):
    params = {"MessageSid": "SM" + "1" * 32, "AccountSid": ACCOUNT_SID, "From": "+12025550143",
              "To": "+15005550006", "Body": body, "NumMedia": "0"}
    response = client.post("/twilio/sms", data=params,
                           headers={"X-Twilio-Signature": compute_signature(BASE + "/twilio/sms", params, TOKEN)})
    assert response.status_code == 200 and response.mimetype == "text/xml"
    return [m.text for m in etree.fromstring(response.data).findall("Message")]


def test_a_text_gets_an_apology_in_the_members_words_not_silence(down):
    client = down.test_client()
    (both,) = sms(client, "BAL")
    assert both == (f"{ORG}: sorry, we can't answer texts right now. Please try again in a few minutes, or call (500) 555-0006.\n"
                    f"{ORG}: lo sentimos, no podemos responder mensajes en este momento. Intente de nuevo en unos minutos "
                    "o llame al (500) 555-0006.")
    (spanish,) = sms(client, "saldo")
    assert spanish.startswith(f"{ORG}: lo sentimos") and "sorry" not in spanish


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_the_reminder_page_says_sorry_in_the_members_language_with_503(down, method):
    client = down.test_client()
    token = tokens.issue(down.config["SECRET_KEY"], 1, "+12025550143", datetime.now(UTC))
    response = client.open(f"/r/{token}", method=method, headers={"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"})
    assert response.status_code == 503 and response.headers["Retry-After"]
    html = response.get_data(as_text=True)
    spanish, english = html.index("No podemos mostrar su factura"), html.index("We can&#39;t show your bill right now")
    assert spanish < english  # the browser's language first
    assert "Traceback" not in html and "OperationalError" not in html


def test_the_agents_api_answers_503_json(down):
    client = down.test_client()
    headers = {"Authorization": "Bearer ivrak_" + "x" * 43}
    for response in (client.get("/api/agent/calls", headers=headers),
                     client.post("/api/agent/accounts/lookup", json={"account_number": "12345001"}, headers=headers)):
        assert response.status_code == 503 and response.headers["Retry-After"] == "30"
        assert response.get_json() == {"error": "unavailable",
                                       "message": "The service cannot reach its database just now; try again shortly."}


def test_stripe_is_asked_to_retry_its_event(down):
    response = send_event(down.test_client(), "payment_intent.succeeded",
                          {"id": "pi_1", "object": "payment_intent", "amount": 100, "metadata": {}})
    assert response.status_code == 503 and response.get_json()["error"] == "unavailable"


def test_staff_signing_in_are_told_plainly(down):
    client = down.test_client()
    page = client.get("/agent").get_data(as_text=True)  # the sign-in form needs no database
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/agent/login", data={"csrf_token": csrf, "name": "Robin", "key": "ivrak_" + "x" * 43})
    assert response.status_code == 503
    assert response.get_data(as_text=True) == "The service cannot reach its database just now. Please try again in a minute."


def test_a_caller_hears_the_apology_and_the_load_balancer_sees_503(down):
    client = down.test_client()
    call = CallActions(client, call_sid="CA" + uuid.uuid4().hex)
    call.start()
    assert call.last_status == 200 and "Sorry, something went wrong on our end." in call.said()
    assert call.root.xpath("./Hangup")
    assert client.get("/healthz").status_code == 503
