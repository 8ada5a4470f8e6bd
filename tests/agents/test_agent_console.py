"""The agent console's sign-in, session cookie and CSRF protection, via the Flask test client."""

import re

import pytest
import sqlalchemy as sa
from agent_fixtures import app_config, fake_twilio  # noqa: F401  (fixtures)
from agent_support import audit_rows, new_agent

from ivr.agents.models import Agent
from ivr.extensions import db


@pytest.fixture
def key(app):
    return new_agent(app, "Robin")


def login_form(client):
    page = client.get("/agent")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1), html


def sign_in(client, name, key):
    token, _ = login_form(client)
    return client.post("/agent/login", data={"csrf_token": token, "name": name, "key": key})


def console_csrf(client):
    html = client.get("/agent").get_data(as_text=True)
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)


def test_login_page_has_labelled_fields_and_strict_headers(client):
    _, html = login_form(client)
    assert (
        '<label for="name">Agent name</label>' in html
        and '<label for="key">API key</label>' in html
    )
    response = client.get("/agent")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


def test_sign_in_with_name_and_key_gives_a_strict_session_cookie(app, client, key):
    response = sign_in(client, "robin", key)  # names are not case sensitive
    assert response.status_code == 303 and response.headers["Location"] == "/agent"
    cookie = next(
        h for h in response.headers.getlist("Set-Cookie") if h.startswith("ivr_agent_session=")
    )
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" in cookie
    assert key not in cookie
    page = client.get("/agent").get_data(as_text=True)
    assert "Signed in as <strong>Robin</strong>" in page
    assert (
        '<label for="call-sid">Call SID</label>' in page
        and '<label for="amount">Amount in dollars</label>' in page
    )
    assert [(e.agent_name, e.action) for e in audit_rows(app)] == [("Robin", "console.login")]


@pytest.mark.parametrize(("name", "given"), [("Robin", "ivrak_wrong"), ("Blake", None), ("", None)])
def test_wrong_name_or_key_is_refused(client, key, name, given):
    response = sign_in(client, name, given or key)
    assert response.status_code == 401
    assert "do not match an active agent" in response.get_data(as_text=True)
    assert not any(
        h.startswith("ivr_agent_session=") for h in response.headers.getlist("Set-Cookie")
    )
    assert "Sign in" in client.get("/agent").get_data(as_text=True)


def test_sign_in_form_needs_its_csrf_token(client, key):
    login_form(client)
    response = client.post(
        "/agent/login", data={"csrf_token": "guess", "name": "Robin", "key": key}
    )
    assert response.status_code == 400
    assert not any(
        h.startswith("ivr_agent_session=") for h in response.headers.getlist("Set-Cookie")
    )


def test_repeated_failed_sign_ins_are_rate_limited(app, client, key):
    app.config["AGENT_LOGIN_FAILURES_PER_10_MINUTES"] = 3
    for _ in range(3):
        assert sign_in(client, "Robin", "ivrak_guess").status_code == 401
    blocked = sign_in(client, "Robin", key)  # even the right key waits now
    assert blocked.status_code == 429 and "Too many failed sign-ins" in blocked.get_data(
        as_text=True
    )


def test_console_api_calls_need_the_pages_csrf_token(client, make_account, key, fake_twilio):
    make_account()
    sign_in(client, "Robin", key)
    number = {"account_number": "12345001"}
    assert client.post("/api/agent/accounts/lookup", json=number).status_code == 403
    lookup = client.post(
        "/api/agent/accounts/lookup", json=number, headers={"X-CSRF-Token": console_csrf(client)}
    )
    assert lookup.status_code == 200 and lookup.get_json()["balance"] == "123.45"
    body = {"call_sid": fake_twilio.add_call(), "account_number": "12345001", "amount": "10"}
    assert client.post("/api/agent/transfers", json=body).status_code == 403
    assert (
        client.post(
            "/api/agent/transfers", json=body, headers={"X-CSRF-Token": "x" * 64}
        ).status_code
        == 403
    )
    assert fake_twilio.updates == []
    created = client.post(
        "/api/agent/transfers", json=body, headers={"X-CSRF-Token": console_csrf(client)}
    )
    assert created.status_code == 201


def test_sign_out_and_disabling_the_agent_end_the_session(app, client, key):
    sign_in(client, "Robin", key)
    token = console_csrf(client)
    assert client.post("/agent/logout", data={"csrf_token": "nope"}).status_code == 403
    assert client.post("/agent/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/api/agent/calls").status_code == 401

    sign_in(client, "Robin", key)
    assert client.get("/api/agent/calls").status_code == 200
    with app.app_context():
        db.session.scalar(sa.select(Agent)).active = False
        db.session.commit()
    assert client.get("/api/agent/calls").status_code == 401
    assert "Sign in" in client.get("/agent").get_data(as_text=True)


def test_calls_list_shows_calls_connected_to_agents_masked(app, client, make_account, key):
    from ivr.models import CallSession

    make_account()
    with app.app_context():
        db.session.add_all(
            [
                CallSession(
                    call_sid="CA" + "1" * 32, from_number="+12025550143", state="AGENT", seq=3
                ),
                CallSession(
                    call_sid="CA" + "2" * 32,
                    from_number="+12025550144",
                    state="AGENT",
                    seq=3,
                    call_status="completed",
                ),
                CallSession(
                    call_sid="CA" + "3" * 32, from_number="+12025550145", state="SUMMARY", seq=3
                ),
            ]
        )
        db.session.commit()
    sign_in(client, "Robin", key)
    calls = client.get("/api/agent/calls").get_json()["calls"]
    assert [(c["call_sid"], c["from"]) for c in calls] == [("CA" + "1" * 32, "…0143")]


def test_behind_a_load_balancer_sign_in_limits_count_the_forwarded_client(app, app_config, key):
    from ivr import create_app

    proxied = create_app({**app_config, "TRUSTED_PROXIES": 1})
    proxied.config["AGENT_LOGIN_FAILURES_PER_10_MINUTES"] = 2
    client = proxied.test_client()

    def attempt(name, client_address):
        token, _ = login_form(client)
        return client.post(
            "/agent/login",
            data={"csrf_token": token, "name": name, "key": "ivrak_guess"},
            headers={"X-Forwarded-For": client_address},
            environ_base={"REMOTE_ADDR": "10.0.0.2"},  # every request arrives from the balancer
        ).status_code

    assert [attempt(f"nobody{i}", "203.0.113.5") for i in range(3)] == [401, 401, 429]
    assert attempt("someone", "198.51.100.7") == 401  # another member of staff is not locked out
    with proxied.app_context():
        db.session.remove()
