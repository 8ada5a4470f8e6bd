"""Agent transfers: the API redirects a live call into secure pay, the call is driven like Twilio
would, and the transfer's status, audit trail and status callbacks follow it.

Twilio's REST API is the loopback FakeTwilio; Stripe is faked at the HTTP layer.
"""

import hashlib
import hmac
import json
import re
import time

import pytest
import requests
import responses
import sqlalchemy as sa
from agent_fixtures import _stripe, app_config, fake_twilio  # noqa: F401  (fixtures)
from agent_support import audit_rows, bearer, new_agent
from helpers import BASE, CallActions
from live import ivr_env

from ivr.agents import callbacks
from ivr.agents.models import Agent, CallbackDelivery, Transfer
from ivr.extensions import db
from ivr.models import Payment
from ivr.outbox.models import OutboxMessage

AGENT_PHONE = "+12025550111"
HOOK = "https://crm.example.coop/ivr-hook"


@pytest.fixture
def key(app):
    return new_agent(app)


def transfer(client, key, **body):
    return client.post("/api/agent/transfers", json=body, headers=bearer(key))


def lookup(client, number, headers):
    return client.post("/api/agent/accounts/lookup", json={"account_number": number}, headers=headers)


def status_of(client, key, transfer_id):
    response = client.get(f"/api/agent/transfers/{transfer_id}", headers=bearer(key))
    assert response.status_code == 200
    return response.get_json()


def enter_secure_pay(client, fake_twilio, call_sid):
    """Play Twilio after the redirect: fetch the URL the API gave in the Calls update."""
    (update,) = [u for u in fake_twilio.updates if u["sid"] == call_sid][-1:]
    call = CallActions(client, call_sid=call_sid)
    call.post(update["Url"], call.params())
    return call


def start_transfer(client, key, fake_twilio, *, amount="50.25", **extra):
    call_sid = fake_twilio.add_call()
    body = {"call_sid": call_sid, "account_number": "12345-001", "amount": amount, **extra}
    response = transfer(client, key, **body)
    assert response.status_code == 201, response.get_json()
    return call_sid, response.get_json()["id"]


def test_transfer_happy_path_pays_and_sends_caller_back_to_agent(
    app, client, make_account, key, fake_twilio, stripe_api
):
    make_account()
    call_sid = fake_twilio.add_call()
    response = transfer(
        client,
        key,
        call_sid=call_sid,
        account_number="12345-001",
        amount="50.25",
        return_to="(202) 555-0111",
        status_callback=HOOK,
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "waiting" and body["amount"] == "50.25" and body["account"] == "…5001"
    assert response.headers["Location"] == f"/api/agent/transfers/{body['id']}"
    (update,) = fake_twilio.updates
    assert update == {
        "sid": call_sid,
        "Url": f"{BASE}/twilio/voice/transfer?t={body['id']}",
        "Method": "POST",
    }

    call = enter_secure_pay(client, fake_twilio, call_sid)
    assert (
        "You're paying fifty dollars and twenty-five cents to Riverbend Electric Cooperative"
        in call.said()
    )
    assert "press 1" in call.said()
    assert status_of(client, key, body["id"])["status"] == "waiting"

    call.press("1")
    pay = call.root.xpath("./Pay")[0]
    assert pay.get("chargeAmount") is None and pay.get("tokenType") == "payment-method"
    assert status_of(client, key, body["id"])["status"] == "in_pay"
    call.post(pay.get("statusCallback"), call.params(For="expiration-date", Attempt="1"))
    progress = status_of(client, key, body["id"])
    assert (progress["status"], progress["field"]) == ("in_pay", "expiration-date")

    call.pay("pm_card_visa")
    said = call.said()
    confirmation = (
        re.search(r"Confirmation number ((?:\d ){7}\d)", said).group(1).replace(" ", "")
    )
    approved = status_of(client, key, body["id"])
    assert approved["status"] == "approved"
    assert approved["confirmation_number"] == confirmation
    assert (approved["amount"], approved["card_brand"], approved["card_last4"]) == (
        "50.25",
        "visa",
        "4242",
    )
    assert "pm_card_visa" not in json.dumps(approved) and "12345001" not in json.dumps(approved)
    # A <Pay> status callback Twilio delivers again late never reopens the finished card entry.
    call.post(pay.get("statusCallback"), call.params(For="expiration-date", Attempt="1"))
    assert status_of(client, key, body["id"]) == approved

    with app.app_context():
        payment = db.session.scalar(sa.select(Payment))
        assert (payment.channel, payment.amount_cents, payment.call_sid) == (
            "agent",
            5025,
            call_sid,
        )
        assert (
            db.session.scalar(
                sa.select(OutboxMessage).where(OutboxMessage.kind == "receipt")
            ).payment_id
            == payment.id
        )
    (charge,) = stripe_api.successful_charges
    assert charge["amount"] == 5025 and charge["metadata"]["channel"] == "agent"

    call.silence()  # the caller does not ask to hear the number again
    assert call.root.xpath("./Dial/Number/text()") == [AGENT_PHONE]
    assert "Connecting you back" in call.said()
    assert status_of(client, key, body["id"])["returned"] is True

    entries = [(e.agent_name, e.action, e.account, e.outcome) for e in audit_rows(app)]
    assert ("Alex Agent", "transfer.create", "…5001", "created") in entries
    assert ("Alex Agent", "transfer.outcome", "…5001", "approved") in entries
    assert all(e.account in (None, "…5001") for e in audit_rows(app))


def test_status_callbacks_carry_each_change_signed_with_the_agents_key(
    app, client, make_account, key, fake_twilio
):
    make_account()
    call_sid, transfer_id = start_transfer(client, key, fake_twilio, status_callback=HOOK)
    call = enter_secure_pay(client, fake_twilio, call_sid)
    call.press("1")
    with app.app_context(), responses.RequestsMock() as hook:
        hook.add(responses.POST, HOOK, status=204)
        report = callbacks.run_once()
        assert report.sent == 1
        sent = hook.calls[0].request
        payload = json.loads(sent.body)
        assert payload["id"] == transfer_id and payload["status"] == "in_pay"
        # The receiver derives the signing secret from the key it holds (README, "Status callbacks").
        secret = hmac.new(key.encode(), b"ivr-status-callback", hashlib.sha256).hexdigest()
        expected = "sha256=" + hmac.new(secret.encode(), sent.body, hashlib.sha256).hexdigest()
        assert sent.headers["X-IVR-Signature"] == expected
        assert sent.headers["X-IVR-Event-Id"] == f"{transfer_id}.{payload['version']}"
        # The key itself is nowhere in the database.
        agent = db.session.scalar(sa.select(Agent))
        assert key not in (agent.key_hash, agent.signing_secret)


def test_ivr_worker_sends_agent_status_callbacks_too(
    app, client, make_account, key, fake_twilio, database_url, monkeypatch
):
    from click.testing import CliRunner

    from ivr.cli import main

    make_account()
    call_sid, transfer_id = start_transfer(client, key, fake_twilio, status_callback=HOOK)
    enter_secure_pay(client, fake_twilio, call_sid).press("1")
    for name, value in ivr_env(database_url).items():
        monkeypatch.setenv(name, value)
    with responses.RequestsMock() as hook:
        hook.add(responses.POST, HOOK, status=204)
        result = CliRunner().invoke(main, ["worker", "--once"])
        assert result.exit_code == 0, result.output
        assert "Sent 1 status callback to agents' systems" in result.stdout
        assert [json.loads(c.request.body)["id"] for c in hook.calls] == [transfer_id]


def test_ivr_agents_callbacks_keeps_going_after_a_failed_pass(
    app, client, make_account, key, fake_twilio, database_url, monkeypatch
):
    from click.testing import CliRunner

    import ivr.agents.cli as agents_cli
    from ivr.cli import main

    make_account()
    call_sid, transfer_id = start_transfer(client, key, fake_twilio, status_callback=HOOK)
    enter_secure_pay(client, fake_twilio, call_sid).press("1")
    for name, value in ivr_env(database_url).items():
        monkeypatch.setenv(name, value)
    real_run_once, passes, pauses = callbacks.run_once, [], []

    def database_blip_first(*args, **kwargs):
        passes.append(len(passes) + 1)
        if len(passes) == 1:
            raise sa.exc.OperationalError("SELECT", {}, Exception("server closed the connection"))
        return real_run_once(*args, **kwargs)

    def sleep(seconds):
        pauses.append(seconds)
        if len(pauses) == 2:
            raise KeyboardInterrupt  # Ctrl-C after the second pass

    monkeypatch.setattr(callbacks, "run_once", database_blip_first)
    monkeypatch.setattr(agents_cli.time, "sleep", sleep)
    with responses.RequestsMock() as hook:
        hook.add(responses.POST, HOOK, status=204)
        result = CliRunner().invoke(main, ["agents", "callbacks", "--poll", "0.5"])
        assert result.exit_code == 0, result.output
        assert (passes, pauses) == ([1, 2], [0.5, 0.5])
        assert [json.loads(c.request.body)["id"] for c in hook.calls] == [transfer_id]


def test_failed_callback_is_retried_and_an_older_queued_state_is_superseded(
    app, client, make_account, key, fake_twilio
):
    make_account()
    call_sid, _ = start_transfer(client, key, fake_twilio, status_callback=HOOK)
    call = enter_secure_pay(client, fake_twilio, call_sid)
    call.press("1")
    with app.app_context(), responses.RequestsMock() as hook:
        hook.add(responses.POST, HOOK, status=503)
        assert callbacks.run_once().retried == 1
        retry = db.session.scalar(sa.select(CallbackDelivery))
        assert retry.status == "queued" and retry.last_error == "HTTP 503"
        due = retry.next_attempt_at
    call.pay("pm_card_visa")  # a newer state while the old one waits
    with app.app_context(), responses.RequestsMock() as hook:
        hook.add(responses.POST, HOOK, status=200)
        report = callbacks.run_once(now=due)
        statuses = [json.loads(c.request.body)["status"] for c in hook.calls]
        assert statuses == ["approved"] and report.sent == 1
        kinds = sorted(d.status for d in db.session.scalars(sa.select(CallbackDelivery)))
        assert kinds == ["sent", "superseded"]


def queue_in_pay_callbacks(client, key, fake_twilio, count):
    """``count`` transfers whose callers reached card entry: one status callback due for each."""
    ids = []
    for _ in range(count):
        call_sid, transfer_id = start_transfer(client, key, fake_twilio, status_callback=HOOK)
        enter_secure_pay(client, fake_twilio, call_sid).press("1")
        ids.append(transfer_id)
    return ids


def test_a_silent_agent_url_cannot_hold_up_the_worker_for_long(
    app, client, make_account, key, fake_twilio
):
    make_account()
    queue_in_pay_callbacks(client, key, fake_twilio, 3)
    clock = [0.0]

    def silent(request):  # the receiver never answers: each POST waits out its whole timeout
        clock[0] += request.req_kwargs["timeout"]
        return requests.exceptions.ReadTimeout("no answer")

    with app.app_context(), responses.RequestsMock() as hook:
        hook.add_callback(responses.POST, HOOK, callback=silent)
        report = callbacks.run_once(clock=lambda: clock[0])
        # 5 s per request and no new row claimed after 10 s: two tries, the third waits.
        assert (report.retried, clock[0]) == (2, 10.0)
        assert [c.request.req_kwargs["timeout"] for c in hook.calls] == [5, 5]
        rows = db.session.scalars(sa.select(CallbackDelivery).order_by(CallbackDelivery.id)).all()
        assert [(r.status, r.attempts) for r in rows] == [("queued", 1), ("queued", 1), ("queued", 0)]
        assert rows[2].next_attempt_at < rows[0].next_attempt_at  # untouched: due next pass
        hook.replace(responses.POST, HOOK, status=204)
        assert callbacks.run_once(clock=lambda: clock[0]).sent == 1


PUBLIC_V4, PUBLIC_V6 = "93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


@pytest.mark.parametrize(
    ("production", "addresses", "sent"),
    [
        (True, ["127.0.0.1"], False),
        (True, [PUBLIC_V4, "10.0.0.5"], False),  # any internal address refuses the host
        (True, ["::ffff:169.254.169.254"], False),
        (True, ["fd00::1"], False),
        (True, [PUBLIC_V4, PUBLIC_V6], True),
        (False, ["127.0.0.1"], True),  # development: a callback to a local test receiver works
    ],
)
def test_status_callback_host_resolving_to_an_internal_address_is_never_called(
    app, client, make_account, key, fake_twilio, monkeypatch, production, addresses, sent
):
    import socket

    make_account()
    app.config["PRODUCTION"] = production
    queue_in_pay_callbacks(client, key, fake_twilio, 1)
    real_getaddrinfo, looked_up = socket.getaddrinfo, []

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "crm.example.coop":
            return real_getaddrinfo(host, port, *args, **kwargs)
        looked_up.append((host, port))
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with app.app_context(), responses.RequestsMock(assert_all_requests_are_fired=False) as hook:
        hook.add(responses.POST, HOOK, status=204)
        report = callbacks.run_once()
        row = db.session.scalar(sa.select(CallbackDelivery))
        assert looked_up == ([("crm.example.coop", 443)] if production else [])
        if sent:
            assert (report.sent, len(hook.calls), row.status) == (1, 1, "sent")
        else:
            assert (report.failed, len(hook.calls), row.status) == (1, 0, "failed")
            assert "not a public address" in row.last_error and "crm.example.coop" in row.last_error


def test_decline_then_another_card_is_approved(client, make_account, key, fake_twilio):
    make_account()
    call_sid, transfer_id = start_transfer(client, key, fake_twilio, return_to=AGENT_PHONE)
    call = enter_secure_pay(client, fake_twilio, call_sid)
    call.press("1")
    call.pay("pm_card_visa_chargeDeclinedInsufficientFunds")
    assert "declined" in call.said().lower()
    declined = status_of(client, key, transfer_id)
    assert (declined["status"], declined["reason"]) == ("declined", "insufficient_funds")
    call.press("1")  # try another card
    assert status_of(client, key, transfer_id)["status"] == "in_pay"
    call.pay("pm_card_mastercard")
    approved = status_of(client, key, transfer_id)
    assert (approved["status"], approved["card_brand"]) == ("approved", "mastercard")


def test_decline_and_give_up_still_goes_back_to_the_agent_as_failed(
    client, make_account, key, fake_twilio
):
    make_account()
    call_sid, transfer_id = start_transfer(
        client, key, fake_twilio, return_to="sip:desk7@pbx.example.coop"
    )
    call = enter_secure_pay(client, fake_twilio, call_sid)
    call.press("1")
    call.pay("pm_card_visa_chargeDeclined")
    call.press("9")  # no other card
    assert call.root.xpath("./Dial/Sip/text()") == ["sip:desk7@pbx.example.coop"]
    final = status_of(client, key, transfer_id)
    assert (final["status"], final["reason"], final["returned"]) == (
        "failed",
        "generic_decline",
        True,
    )


def test_without_return_to_the_caller_is_thanked_and_the_call_ends(
    client, make_account, key, fake_twilio
):
    make_account()
    call_sid, transfer_id = start_transfer(client, key, fake_twilio)
    call = enter_secure_pay(client, fake_twilio, call_sid)
    call.press("1")
    call.pay("pm_card_visa")
    call.silence()
    assert call.root.xpath("./Hangup") and not call.root.xpath("./Dial")
    assert "Goodbye" in call.said()
    assert status_of(client, key, transfer_id)["status"] == "approved"


def test_caller_hanging_up_during_card_entry(client, make_account, key, fake_twilio, stripe_api):
    make_account()
    call_sid, transfer_id = start_transfer(client, key, fake_twilio, return_to=AGENT_PHONE)
    call = enter_secure_pay(client, fake_twilio, call_sid)
    call.press("1")
    call.pay(result="caller-hung-up")
    call.status("completed")
    assert status_of(client, key, transfer_id)["status"] == "caller_hung_up"
    assert stripe_api.requests == []


def test_caller_hanging_up_before_confirming_the_amount(client, make_account, key, fake_twilio):
    make_account()
    call_sid, transfer_id = start_transfer(client, key, fake_twilio)
    call = enter_secure_pay(client, fake_twilio, call_sid)
    call.status("completed")
    hung_up = status_of(client, key, transfer_id)
    assert (hung_up["status"], hung_up["reason"]) == ("caller_hung_up", "call completed")


def test_caller_hanging_up_while_still_with_the_agent_ends_the_waiting_transfer(
    app, client, make_account, key, fake_twilio
):
    from ivr.models import CallSession

    make_account()
    call_sid = fake_twilio.add_call()
    with app.app_context():  # the IVR connected the caller to the agent ("press 0")
        db.session.add(
            CallSession(call_sid=call_sid, from_number="+12025550143", state="AGENT", seq=4)
        )
        db.session.commit()
    response = transfer(client, key, call_sid=call_sid, account_number="12345001", amount="20")
    assert response.status_code == 201
    # The caller hangs up before Twilio fetches the redirect: the session is still the agent's.
    CallActions(client, call_sid=call_sid).status("completed")
    hung_up = status_of(client, key, response.get_json()["id"])
    assert (hung_up["status"], hung_up["reason"]) == ("caller_hung_up", "call completed")


def test_an_ordinary_call_hanging_up_never_touches_agent_transfers(app, client, make_account):
    from ivr.models import CallSession

    make_account()
    call = CallActions(client)
    call.start()
    call.press("1")  # self-service, never near an agent
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        call.status("completed")
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert call.last_status == 204
    assert statements and not [s for s in statements if "agent_transfers" in s]
    assert not [s for s in statements if "SAVEPOINT" in s.upper()]
    with app.app_context():
        assert db.session.scalar(sa.select(CallSession.call_status)) == "completed"


def test_twilio_fetching_the_transfer_twice_gets_the_same_answer(
    app, client, make_account, key, fake_twilio
):
    make_account()
    call_sid, transfer_id = start_transfer(client, key, fake_twilio)
    first = enter_secure_pay(client, fake_twilio, call_sid)
    again = enter_secure_pay(client, fake_twilio, call_sid)
    assert first.gather_action() == again.gather_action()
    again.press("1")
    assert again.root.xpath("./Pay")


def test_transfer_entry_needs_twilios_signature(app, client, make_account, key, fake_twilio):
    make_account()
    call_sid, transfer_id = start_transfer(client, key, fake_twilio)
    url = fake_twilio.updates[-1]["Url"]
    call = CallActions(client, call_sid=call_sid)
    response = call.post(url, call.params(), signature="forged")
    assert response.status_code == 403
    with app.app_context():
        assert db.session.get(Transfer, transfer_id).entered_at is None


def test_amount_defaults_to_the_balance(client, make_account, key, fake_twilio):
    make_account(balance_cents=8000)
    call_sid = fake_twilio.add_call()
    response = transfer(client, key, call_sid=call_sid, account_number="12345001")
    assert response.status_code == 201 and response.get_json()["amount"] == "80.00"
    call = enter_secure_pay(client, fake_twilio, call_sid)
    assert "eighty dollars" in call.said()


# --- bad keys, bad input, and the order of the checks --------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer ivrak_not-a-real-key"},
        {"Authorization": "Basic YWxleDpzZWNyZXQ="},
        {"Authorization": "Bearer "},
    ],
    ids=["missing", "wrong", "basic", "empty"],
)
def test_missing_or_wrong_key_is_401_and_nothing_changes(
    app, client, make_account, key, fake_twilio, headers
):
    make_account()
    call_sid = fake_twilio.add_call()
    body = {"call_sid": call_sid, "account_number": "12345001", "amount": "bad"}  # would be 422
    response = client.post("/api/agent/transfers", json=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/api/agent/transfers/tr_0000", headers=headers).status_code == 401
    assert lookup(client, "12345001", headers).status_code == 401
    assert fake_twilio.updates == []
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Transfer)) == 0
        assert db.session.scalar(sa.select(Agent.last_used_at)) is None
    assert audit_rows(app) == []


def test_a_disabled_agents_key_stops_working(app, client, make_account, key, fake_twilio):
    make_account()
    with app.app_context():
        db.session.scalar(sa.select(Agent)).active = False
        db.session.commit()
    response = transfer(client, key, call_sid=fake_twilio.add_call(), account_number="12345001")
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "abc"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": -5}, "amount"),
        ({"amount": "10.125"}, "amount"),
        ({"amount": 10.125}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": "123.46"}, "amount"),  # one cent above the balance
        ({"ammount": "10"}, "ammount"),  # a typo must never fall back to the full balance
        ({"call_sid": "CA123"}, "call_sid"),
        ({"account_number": "12-34-5"}, "account_number"),
        ({"return_to": "call me"}, "return_to"),
        ({"status_callback": "ftp://x"}, "status_callback"),
    ],
)
def test_malformed_body_or_amount_is_422(client, make_account, key, fake_twilio, body, field):
    make_account()
    request = {"call_sid": fake_twilio.add_call(), "account_number": "12345001", "amount": "10.00"}
    request.update(body)
    response = transfer(client, key, **request)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]
    assert fake_twilio.updates == []


@pytest.mark.parametrize(
    ("production", "hosts", "url", "accepted"),
    [
        (True, (), "https://127.0.0.1/hook", False),
        (True, (), "https://[::1]/hook", False),
        (True, (), "https://10.1.2.3/hook", False),
        (True, (), "https://169.254.169.254/latest/meta-data", False),
        (True, (), "https://localhost/hook", False),
        (True, (), "http://crm.example.coop/hook", False),  # https only in production
        (True, (), "https://crm.example.coop/hook", True),
        (False, ("example.coop",), "https://crm.example.coop/hook", True),
        (False, ("example.coop",), "https://attacker.example/hook", False),
    ],
)
def test_status_callback_cannot_point_into_the_coops_network(
    app, client, make_account, key, fake_twilio, production, hosts, url, accepted
):
    make_account()
    app.config.update(PRODUCTION=production, AGENT_CALLBACK_HOSTS=hosts)
    response = transfer(
        client, key, call_sid=fake_twilio.add_call(), account_number="12345001", status_callback=url
    )
    if accepted:
        assert response.status_code == 201, response.get_json()
    else:
        assert response.status_code == 422
        assert "status_callback" in response.get_json()["errors"]
        assert fake_twilio.updates == []


@pytest.mark.parametrize(
    ("amount", "cents"), [("123.45", 12345), (123.45, 12345), (50, 5000), ("1", 100), ("7.5", 750)]
)
def test_amounts_within_the_rules_are_accepted(app, client, make_account, key, fake_twilio, amount, cents):
    make_account()
    response = transfer(
        client, key, call_sid=fake_twilio.add_call(), account_number="12345001", amount=amount
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["amount_cents"] == cents
    with app.app_context():
        assert db.session.get(Transfer, response.get_json()["id"]).amount_cents == cents


def test_body_that_is_not_json_is_422(client, key):
    response = client.post(
        "/api/agent/transfers",
        data="call_sid=CA1",
        headers=bearer(key),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 422


def test_unknown_account_is_404_after_amount_checks(client, make_account, key, fake_twilio):
    make_account()
    unknown = {"call_sid": "CA" + "0" * 32, "account_number": "99999999"}
    assert (
        transfer(client, key, **unknown, amount="-1").status_code == 422
    )  # amount is checked first
    response = transfer(client, key, **unknown, amount="10")
    assert response.status_code == 404 and response.get_json()["error"] == "unknown_account"
    assert "99999999" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (None, "call_unknown"),
        ({"status": "completed"}, "call_not_live"),
        ({"status": "ringing"}, "call_not_live"),
        ({"account_sid": "AC" + "b" * 32}, "call_not_ours"),
        ({"direction": "outbound-dial"}, "agent_leg"),
    ],
    ids=["unknown", "completed", "ringing", "other-account", "agent-leg"],
)
def test_call_that_is_unknown_not_live_or_not_ours_is_409(
    app, client, make_account, key, fake_twilio, call, error
):
    make_account()
    call_sid = "CA" + "1" * 32 if call is None else fake_twilio.add_call(**call)
    response = transfer(client, key, call_sid=call_sid, account_number="12345001", amount="10")
    assert response.status_code == 409
    assert response.get_json()["error"] == error and response.get_json()["message"]
    assert fake_twilio.updates == []
    assert [(e.action, e.outcome, e.detail) for e in audit_rows(app)] == [
        ("transfer.create", "409", error)
    ]


def test_second_transfer_on_a_busy_call_is_409(client, make_account, key, fake_twilio):
    make_account()
    call_sid, transfer_id = start_transfer(client, key, fake_twilio)
    response = transfer(client, key, call_sid=call_sid, account_number="12345001", amount="5")
    assert response.status_code == 409 and response.get_json()["busy"] == transfer_id


def test_call_ending_between_the_check_and_the_redirect_is_409_and_failed(
    app, client, make_account, key, fake_twilio, monkeypatch
):
    from ivr.twilio.adapter import TwilioApiError, TwilioRest

    def ended(self, sid, url):
        raise TwilioApiError(400, 21220, "Call is not in-progress. Cannot redirect.")

    monkeypatch.setattr(TwilioRest, "redirect_call", ended)
    make_account()
    response = transfer(
        client, key, call_sid=fake_twilio.add_call(), account_number="12345001", amount="5"
    )
    assert response.status_code == 409 and response.get_json()["error"] == "call_not_live"
    with app.app_context():
        (row,) = db.session.scalars(sa.select(Transfer)).all()
        assert (row.status, row.reason) == ("failed", "call_not_live")


def test_any_agent_may_read_any_transfer(app, client, make_account, key, fake_twilio):
    make_account()
    _, transfer_id = start_transfer(client, key, fake_twilio)
    other = new_agent(app, "Blake")
    seen = status_of(client, other, transfer_id)
    assert seen["agent"] == "Alex Agent"
    assert client.get("/api/agent/transfers/tr_unknown", headers=bearer(other)).status_code == 404


# --- look-ups and rate limits ---------------------------------------------------------------------


def test_account_lookup_shows_masked_phone_balance_and_due_date(app, client, make_account, key):
    make_account(past_due_cents=2000)
    response = lookup(client, "12345-001", bearer(key))
    assert response.status_code == 200
    facts = response.get_json()
    assert (
        facts["account"],
        facts["phone"],
        facts["balance"],
        facts["due_date"],
        facts["past_due"],
    ) == ("…5001", "…0143", "123.45", "2026-12-05", "20.00")
    assert "+12025550143" not in response.get_data(as_text=True)
    assert lookup(client, "55555555", bearer(key)).status_code == 404
    assert [(e.action, e.account, e.outcome) for e in audit_rows(app)] == [
        ("account.lookup", "…5001", "found"),
        ("account.lookup", "…5555", "404"),
    ]


def test_account_numbers_never_travel_in_the_url_or_reach_the_log(
    app, client, make_account, key, caplog
):
    make_account()
    # The old URL form is gone: a request line with the number in it is not an API call.
    assert client.get("/api/agent/accounts/12345001", headers=bearer(key)).status_code in (404, 405)
    refused = client.post("/api/agent/accounts/lookup", json={"acount": "12345001"}, headers=bearer(key))
    assert refused.status_code == 422 and set(refused.get_json()["errors"]) == {"acount", "account_number"}
    assert lookup(client, "12-34-5", bearer(key)).status_code == 422
    with caplog.at_level("INFO"):
        assert lookup(client, "12345-001", bearer(key)).status_code == 200
        assert lookup(client, "12345001", {"Authorization": "Bearer ivrak_wrong"}).status_code == 401
        assert client.get("/api/agent/transfers/tr_7c1e55ab", headers={}).status_code == 401
    logged = caplog.text
    assert "12345001" not in logged and "12345-001" not in logged
    # A wrong key is logged with the endpoint's name, not the path (ids stay out of the log).
    assert "agent_api.get_transfer" in logged and "tr_7c1e55ab" not in logged
    assert [(e.action, e.account, e.outcome) for e in audit_rows(app)][-1] == (
        "account.lookup",
        "…5001",
        "found",
    )


def test_rate_limits_can_be_set_in_the_environment(app_config, make_account, key, monkeypatch):
    from ivr import create_app
    from ivr.agents.limits import LIMITS
    from ivr.config import AGENT_RATE_LIMITS, load_config

    assert set(AGENT_RATE_LIMITS) == {name for name, _, _ in LIMITS.values()}
    assert load_config({"AGENT_LOOKUPS_PER_MINUTE": "7"})["AGENT_LOOKUPS_PER_MINUTE"] == 7
    assert "AGENT_LOOKUPS_PER_MINUTE" not in load_config({"AGENT_LOOKUPS_PER_MINUTE": "lots"})
    make_account()
    monkeypatch.setenv("AGENT_LOOKUPS_PER_MINUTE", "1")
    limited = create_app({**app_config, "PAYMENT_GATEWAY": "sandbox"})
    client = limited.test_client()
    assert lookup(client, "12345001", bearer(key)).status_code == 200
    assert lookup(client, "12345001", bearer(key)).status_code == 429
    with limited.app_context():
        db.session.remove()
        db.engine.dispose()


def test_rate_limit_per_key_holds_across_server_processes(
    app, app_config, client, make_account, key, fake_twilio
):
    from ivr import create_app

    app.config["AGENT_LOOKUPS_PER_MINUTE"] = 2
    make_account()
    assert lookup(client, "12345001", bearer(key)).status_code == 200
    # A second app on the same database stands for another gunicorn worker.
    other = create_app(
        {**app_config, "GATEWAY": app.extensions["ivr.gateway"], "AGENT_LOOKUPS_PER_MINUTE": 2}
    )
    other_client = other.test_client()
    assert lookup(other_client, "12345001", bearer(key)).status_code == 200
    refused = lookup(client, "12345001", bearer(key))
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    # Another agent's key has its own allowance.
    assert lookup(other_client, "12345001", bearer(new_agent(app, "Blake"))).status_code == 200
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


def test_transfers_are_rate_limited_per_key(app, client, make_account, key, fake_twilio):
    app.config["AGENT_PAYMENTS_PER_MINUTE"] = 1
    make_account()
    start_transfer(client, key, fake_twilio)
    refused = transfer(
        client, key, call_sid=fake_twilio.add_call(), account_number="12345001", amount="5"
    )
    assert refused.status_code == 429
    assert len(fake_twilio.updates) == 1
    assert audit_rows(app)[-1].action == "rate_limited.pay"


def test_a_double_click_opens_one_transfer_not_two(app, make_account, key, fake_twilio, database_url, monkeypatch):
    if not database_url.startswith("postgresql"):
        pytest.skip("the per-call advisory lock is PostgreSQL's; SQLite is the single-user demo")
    import threading

    from ivr.agents import transfers as transfers_module

    make_account()
    call_sid = fake_twilio.add_call()
    both_checked_the_call = threading.Barrier(2, timeout=10)
    real_live_call, real_record = transfers_module.live_call, transfers_module.audit.record

    def live_call(sid):
        real_live_call(sid)
        both_checked_the_call.wait()  # the two requests reach the "busy?" check together

    def slow_record(*args, **kwargs):
        if args[2] == "created":
            time.sleep(0.3)  # widen the gap between "not busy" and the commit
        return real_record(*args, **kwargs)

    monkeypatch.setattr(transfers_module, "live_call", live_call)
    monkeypatch.setattr(transfers_module.audit, "record", slow_record)
    answers = []

    def click():
        with app.test_client() as client:
            answers.append(transfer(client, key, call_sid=call_sid, account_number="12345001").status_code)

    clicks = [threading.Thread(target=click) for _ in range(2)]
    for thread in clicks:
        thread.start()
    for thread in clicks:
        thread.join(timeout=30)
    assert sorted(answers) == [201, 409]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Transfer)) == 1


def test_a_convenience_fee_is_not_charged_on_an_agents_transfer(app, client, make_account, key, fake_twilio, stripe_api):
    app.config["CONVENIENCE_FEE_CENTS"] = 250  # the co-op charges callers who pay on their own
    make_account()
    call_sid, transfer_id = start_transfer(client, key, fake_twilio)
    call = enter_secure_pay(client, fake_twilio, call_sid)
    call.press("1")
    assert call.root.xpath("./Pay") and "fee" not in call.said()
    call.pay("pm_card_visa")
    assert "Approved:" in call.said() and "fee" not in call.said()
    assert status_of(client, key, transfer_id)["status"] == "approved"
    (charge,) = stripe_api.successful_charges
    assert charge["amount"] == 5025 and "fee_cents" not in charge["metadata"]
    with app.app_context():
        assert db.session.scalar(sa.select(Payment.fee_cents)) == 0
