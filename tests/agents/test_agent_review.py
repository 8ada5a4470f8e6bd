"""What a security review of the console and assisted pay found (issue 14): sign-out ends the session
on the server, failed sign-ins cannot lock a name out from everywhere, and an assisted session is
driven by the agent who started it (or a supervisor or admin)."""

import re

import pytest
from agent_fixtures import _stripe, app_config, fake_twilio  # noqa: F401  (fixtures)
from agent_support import audit_rows, bearer

from ivr.agents.auth import SESSION_COOKIE
from ivr.agents.keys import create_agent
from ivr.extensions import db


def staff(app, name, role="agent"):
    with app.app_context():
        _agent, key = create_agent(name, role)
        db.session.commit()
        return key


def sign_in(client, name, key, address="198.51.100.7"):
    page = client.get("/agent", environ_base={"REMOTE_ADDR": address})
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    return client.post("/agent/login", data={"csrf_token": token, "name": name, "key": key},
                       environ_base={"REMOTE_ADDR": address})


def session_cookie(client):
    cookie = client.get_cookie(SESSION_COOKIE)
    return cookie.value if cookie else None


# --- sign-out ends the session on the server --------------------------------------------------


def test_a_session_cookie_kept_after_sign_out_opens_nothing(app, client):
    key = staff(app, "Robin")
    sign_in(client, "Robin", key)
    copied = session_cookie(client)  # what a shared computer's browser, or a thief, kept
    html = client.get("/agent").get_data(as_text=True)
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)
    assert client.post("/agent/logout", data={"csrf_token": csrf}).status_code == 303

    thief = app.test_client()
    thief.set_cookie(SESSION_COOKIE, copied)
    assert thief.get("/api/agent/calls").status_code == 401
    assert "Sign in" in thief.get("/agent").get_data(as_text=True)
    assert thief.get("/ops").get_data(as_text=True).count('name="key"') == 1  # the sign-in form


def test_signing_out_one_session_leaves_the_agents_other_sessions_open(app):
    key = staff(app, "Robin")
    desk, phone = app.test_client(), app.test_client()
    sign_in(desk, "Robin", key)
    sign_in(phone, "Robin", key)
    html = desk.get("/agent").get_data(as_text=True)
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)
    desk.post("/agent/logout", data={"csrf_token": csrf})
    assert desk.get("/api/agent/calls").status_code == 401
    assert phone.get("/api/agent/calls").status_code == 200


# --- failed sign-ins count per name and address together ------------------------------------------


def test_wrong_keys_for_a_name_from_one_address_do_not_lock_that_name_out_elsewhere(app, client):
    key = staff(app, "Robin")
    attacker = app.test_client()
    for _ in range(10):
        assert sign_in(attacker, "Robin", "ivrak_guess", address="203.0.113.66").status_code == 401
    refused = sign_in(attacker, "Robin", key, address="203.0.113.66")
    assert refused.status_code == 429 and "Too many failed sign-ins" in refused.get_data(as_text=True)

    robin = sign_in(client, "Robin", key, address="198.51.100.7")  # Robin at the office
    assert robin.status_code == 303
    assert client.get("/api/agent/calls").status_code == 200


def test_one_address_guessing_many_names_is_still_stopped(app):
    staff(app, "Robin")
    app.config["AGENT_LOGIN_FAILURES_PER_10_MINUTES"] = 3
    guesser = app.test_client()
    codes = [sign_in(guesser, f"name{i}", "ivrak_guess", address="203.0.113.66").status_code for i in range(4)]
    assert codes == [401, 401, 401, 429]


# --- who may act on an assisted session -------------------------------------------------------------


def start_assisted(client, key, fake):
    call_sid = fake.add_call()
    response = client.post("/api/agent/assisted",
                           json={"call_sid": call_sid, "account_number": "12345001", "amount": "40.00"},
                           headers=bearer(key))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


@pytest.mark.parametrize(("action", "body"), [("capture", {"field": "payment-card-number"}),
                                              ("complete", {}), ("cancel", {})])
def test_another_agent_cannot_capture_complete_or_cancel_a_session_they_did_not_start(
    app, client, make_account, fake_twilio, action, body
):
    make_account()
    robin, blake = staff(app, "Robin"), staff(app, "Blake")
    session_id = start_assisted(client, robin, fake_twilio)
    sent_to_twilio = len(fake_twilio.payments)

    refused = client.post(f"/api/agent/assisted/{session_id}/{action}", json=body, headers=bearer(blake))
    assert refused.status_code == 403
    problem = refused.get_json()
    assert problem["error"] == "not_your_payment"
    assert problem["message"] == "This payment was started by Robin. Only they, a supervisor or an admin can change it."
    assert len(fake_twilio.payments) == sent_to_twilio  # nothing asked of Twilio
    state = client.get(f"/api/agent/assisted/{session_id}", headers=bearer(blake)).get_json()
    assert state["status"] == "ready" and state["agent"] == "Robin"  # reading is open to every agent
    assert [(e.agent_name, e.action, e.outcome) for e in audit_rows(app)][-1] == ("Blake", f"assisted.{action}", "403")


@pytest.mark.parametrize("role", ["supervisor", "admin"])
def test_a_supervisor_or_admin_may_take_over_or_cancel_a_session(app, client, make_account, fake_twilio, role):
    make_account()
    robin, lead = staff(app, "Robin"), staff(app, "Lee", role)
    session_id = start_assisted(client, robin, fake_twilio)
    asked = client.post(f"/api/agent/assisted/{session_id}/capture", json={"field": "payment-card-number"},
                        headers=bearer(lead))
    assert asked.status_code == 200 and asked.get_json()["status"] == "capturing"
    cancelled = client.post(f"/api/agent/assisted/{session_id}/cancel", json={}, headers=bearer(lead))
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"


def test_the_agent_who_started_a_session_drives_it(app, client, make_account, fake_twilio):
    make_account()
    robin = staff(app, "Robin")
    session_id = start_assisted(client, robin, fake_twilio)
    asked = client.post(f"/api/agent/assisted/{session_id}/capture", json={"field": "payment-card-number"},
                        headers=bearer(robin))
    assert asked.status_code == 200
    assert client.post(f"/api/agent/assisted/{session_id}/cancel", json={}, headers=bearer(robin)).status_code == 200
