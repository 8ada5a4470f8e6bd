"""TwilioRest at the HTTP wire: exact paths and form params, documented bodies, errors."""

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from ivr.outbox.sms import SandboxSmsSender, TwilioSmsSender, build_sms_sender
from ivr.twilio.adapter import CallInfo, SentMessage, TwilioApiError, TwilioRest

AC = "AC" + "a" * 32
TOKEN = "test-auth-token"
FROM = "+15005550006"
MEMBER = "+14155552671"
CA = "CA" + "b" * 32
PK = "PK" + "c" * 32
SM = "SM" + "d" * 32
API = f"https://api.twilio.com/2010-04-01/Accounts/{AC}"
CALLBACK = "https://c.test/s"
SPEC = Path("/work/shared/specs/twilio_api_v2010.json")

# Response bodies shaped like the examples in Twilio's OpenAPI description (twilio_api_v2010).
MESSAGE = {
    "account_sid": AC,
    "api_version": "2010-04-01",
    "body": "Payment received",
    "date_created": "Thu, 24 Aug 2023 05:01:45 +0000",
    "date_sent": None,
    "date_updated": "Thu, 24 Aug 2023 05:01:45 +0000",
    "direction": "outbound-api",
    "error_code": None,
    "error_message": None,
    "from": FROM,
    "messaging_service_sid": None,
    "num_media": "0",
    "num_segments": "1",
    "price": None,
    "price_unit": None,
    "sid": SM,
    "status": "queued",
    "subresource_uris": {"media": f"/2010-04-01/Accounts/{AC}/Messages/{SM}/Media.json"},
    "to": MEMBER,
    "uri": f"/2010-04-01/Accounts/{AC}/Messages/{SM}.json",
}


def call_body(status: str = "queued", direction: str = "outbound-api") -> dict:
    return {
        "account_sid": AC,
        "answered_by": None,
        "api_version": "2010-04-01",
        "caller_name": None,
        "date_created": "Tue, 31 Aug 2010 20:36:28 +0000",
        "date_updated": "Tue, 31 Aug 2010 20:36:44 +0000",
        "direction": direction,
        "duration": None,
        "end_time": None,
        "forwarded_from": None,
        "from": FROM,
        "from_formatted": "(500) 555-0006",
        "group_sid": None,
        "parent_call_sid": None,
        "phone_number_sid": "PN" + "a" * 32,
        "price": None,
        "price_unit": "USD",
        "sid": CA,
        "start_time": None,
        "status": status,
        "subresource_uris": {"payments": f"/2010-04-01/Accounts/{AC}/Calls/{CA}/Payments.json"},
        "to": MEMBER,
        "to_formatted": "(415) 555-2671",
        "trunk_sid": None,
        "uri": f"/2010-04-01/Accounts/{AC}/Calls/{CA}.json",
        "queue_time": "0",
    }


PAYMENT = {
    "account_sid": AC,
    "call_sid": CA,
    "date_created": "Wed, 18 Dec 2019 20:02:01 +0000",
    "date_updated": "Wed, 18 Dec 2019 20:02:01 +0000",
    "sid": PK,
    "uri": f"/2010-04-01/Accounts/{AC}/Calls/{CA}/Payments/{PK}.json",
}


def error_body(code: int, status: int, message: str) -> dict:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def form_is(expected: dict[str, str | list[str]]):
    """A responses matcher: the form body holds exactly these parameters (repeats as lists)."""
    want = {key: value if isinstance(value, list) else [value] for key, value in expected.items()}

    def match(request):
        body = request.body or ""
        got = parse_qs(body.decode() if isinstance(body, bytes) else body, keep_blank_values=True)
        return got == want, f"form {got} != {want}"

    return match


@pytest.fixture
def rest():
    return TwilioRest(AC, TOKEN, from_number=FROM)


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


def test_send_sms_posts_to_from_body_and_returns_sid(rest, mocked):
    mocked.post(
        f"{API}/Messages.json",
        json=MESSAGE,
        status=201,
        match=[form_is({"To": MEMBER, "From": FROM, "Body": "Payment received"})],
    )
    assert rest.send_sms(MEMBER, "Payment received") == SentMessage(sid=SM, status="queued")
    sent = mocked.calls[0].request
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent.headers["Authorization"].startswith("Basic ")


def test_send_sms_with_status_callback(rest, mocked):
    mocked.post(
        f"{API}/Messages.json",
        json=MESSAGE,
        status=201,
        match=[
            form_is(
                {"To": MEMBER, "From": FROM, "Body": "hi", "StatusCallback": "https://x.test/s"}
            )
        ],
    )
    assert rest.send_sms(MEMBER, "hi", status_callback="https://x.test/s").sid == SM


def test_create_call_sends_url_method_callback_events_timeout(rest, mocked):
    mocked.post(
        f"{API}/Calls.json",
        json=call_body(),
        status=201,
        match=[
            form_is(
                {
                    "To": MEMBER,
                    "From": FROM,
                    "Url": "https://coop.test/twilio/voice/callback",
                    "Method": "POST",
                    "StatusCallback": "https://coop.test/twilio/voice/status",
                    "StatusCallbackMethod": "POST",
                    "StatusCallbackEvent": ["initiated", "answered", "completed"],
                    "Timeout": "25",
                    "MachineDetection": "Enable",
                }
            )
        ],
    )
    info = rest.create_call(
        MEMBER,
        "https://coop.test/twilio/voice/callback",
        status_callback="https://coop.test/twilio/voice/status",
        status_callback_events=["initiated", "answered", "completed"],
        timeout=25,
        machine_detection="Enable",
    )
    assert info == CallInfo(
        sid=CA, status="queued", direction="outbound-api", from_=FROM, to=MEMBER, account_sid=AC
    )


def test_create_call_minimal_sends_no_optional_params(rest, mocked):
    mocked.post(
        f"{API}/Calls.json",
        json=call_body(),
        status=201,
        match=[
            form_is(
                {
                    "To": MEMBER,
                    "From": FROM,
                    "Url": "https://coop.test/v",
                    "Method": "POST",
                    "Timeout": "30",
                }
            )
        ],
    )
    assert rest.create_call(MEMBER, "https://coop.test/v").sid == CA


def test_fetch_call(rest, mocked):
    mocked.get(f"{API}/Calls/{CA}.json", json=call_body("in-progress", "inbound"))
    info = rest.fetch_call(CA)
    assert (info.status, info.direction) == ("in-progress", "inbound")


def test_redirect_call_updates_url_with_post(rest, mocked):
    mocked.post(
        f"{API}/Calls/{CA}.json",
        json=call_body("in-progress", "inbound"),
        match=[form_is({"Url": "https://coop.test/twilio/voice/agent-pay", "Method": "POST"})],
    )
    info = rest.redirect_call(CA, "https://coop.test/twilio/voice/agent-pay")
    assert info.status == "in-progress"


def test_redirect_call_not_in_progress_is_permanent_21220(rest, mocked):
    mocked.post(
        f"{API}/Calls/{CA}.json",
        json=error_body(21220, 400, "Call is not in-progress. Cannot redirect."),
        status=400,
    )
    with pytest.raises(TwilioApiError) as caught:
        rest.redirect_call(CA, "https://coop.test/x")
    assert (caught.value.http_status, caught.value.code) == (400, 21220)
    assert caught.value.permanent and not caught.value.retryable
    assert caught.value.message == "Call is not in-progress. Cannot redirect."


def test_create_payment_tokenizes_with_idempotency_key_and_callback(rest, mocked):
    mocked.post(
        f"{API}/Calls/{CA}/Payments.json",
        json=PAYMENT,
        status=201,
        match=[
            form_is(
                {
                    "IdempotencyKey": "transfer-7-1",
                    "StatusCallback": "https://coop.test/twilio/pay/status",
                    "PaymentConnector": "Stripe_Connector",
                    "TokenType": "payment-method",
                    "ValidCardTypes": "visa mastercard amex discover",
                    "PostalCode": "true",
                    "SecurityCode": "true",
                }
            )
        ],
    )
    sid = rest.create_payment(
        CA,
        idempotency_key="transfer-7-1",
        status_callback="https://coop.test/twilio/pay/status",
        payment_connector="Stripe_Connector",
    )
    assert sid == PK
    # Tokenize mode: no amount is ever sent to Twilio.
    assert "ChargeAmount" not in parse_qs(mocked.calls[0].request.body)


def test_create_payment_optional_flags(rest, mocked):
    mocked.post(
        f"{API}/Calls/{CA}/Payments.json",
        json=PAYMENT,
        status=201,
        match=[
            form_is(
                {
                    "IdempotencyKey": "k",
                    "StatusCallback": "https://coop.test/s",
                    "PaymentConnector": "Default",
                    "TokenType": "one-time",
                    "ValidCardTypes": "visa",
                    "PostalCode": "false",
                    "SecurityCode": "false",
                    "Timeout": "10",
                }
            )
        ],
    )
    rest.create_payment(
        CA,
        idempotency_key="k",
        status_callback="https://coop.test/s",
        payment_connector="Default",
        token_type="one-time",
        valid_card_types="visa",
        postal_code=False,
        security_code=False,
        timeout=10,
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"capture": "payment-card-number"}, "Capture"), ({"status": "complete"}, "Status")],
)
def test_update_payment_sends_capture_or_status(rest, mocked, kwargs, field):
    value = next(iter(kwargs.values()))
    mocked.post(
        f"{API}/Calls/{CA}/Payments/{PK}.json",
        json=PAYMENT,
        status=202,  # UpdatePayments answers 202 Accepted
        match=[form_is({"IdempotencyKey": "k2", "StatusCallback": CALLBACK, field: value})],
    )
    sid = rest.update_payment(CA, PK, idempotency_key="k2", status_callback=CALLBACK, **kwargs)
    assert sid == PK


@pytest.mark.parametrize("kwargs", [{}, {"capture": "security-code", "status": "cancel"}])
def test_update_payment_needs_exactly_one_of_capture_status(rest, mocked, kwargs):
    with pytest.raises(ValueError):
        rest.update_payment(CA, PK, idempotency_key="k", status_callback=CALLBACK, **kwargs)
    assert len(mocked.calls) == 0


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (400, 21610, False),  # member texted STOP
        (400, 21211, False),  # invalid To
        (400, 21614, False),  # not a mobile number
        (404, 20404, False),
        (429, 20429, True),
        (500, 20500, True),
        (503, 20503, True),
    ],
)
def test_errors_classified_retryable_or_permanent(rest, mocked, status, code, retryable):
    mocked.post(
        f"{API}/Messages.json", json=error_body(code, status, f"error {code}"), status=status
    )
    with pytest.raises(TwilioApiError) as caught:
        rest.send_sms(MEMBER, "hi")
    assert (caught.value.http_status, caught.value.code) == (status, code)
    assert caught.value.retryable is retryable
    assert caught.value.permanent is not retryable


def test_error_message_is_twilios_with_numbers_masked(rest, mocked):
    mocked.post(
        f"{API}/Messages.json",
        json=error_body(21211, 400, "The 'To' number +15005550001 is not a valid phone number."),
        status=400,
    )
    with pytest.raises(TwilioApiError) as caught:
        rest.send_sms("+15005550001", "hi")
    assert caught.value.message == "The 'To' number …0001 is not a valid phone number."
    assert TOKEN not in str(caught.value)


def test_network_error_is_retryable(rest, mocked):
    mocked.post(f"{API}/Messages.json", body=requests.ConnectionError("refused"))
    with pytest.raises(TwilioApiError) as caught:
        rest.send_sms(MEMBER, "hi")
    assert caught.value.http_status is None and caught.value.retryable


def test_api_base_sends_every_request_to_the_local_origin(mocked):
    local = "http://127.0.0.1:8099"
    rest = TwilioRest(AC, TOKEN, from_number=FROM, api_base=local)
    base = f"{local}/2010-04-01/Accounts/{AC}"
    mocked.post(f"{base}/Messages.json", json=MESSAGE, status=201)
    mocked.post(f"{base}/Calls.json", json=call_body(), status=201)
    mocked.get(f"{base}/Calls/{CA}.json", json=call_body("in-progress"))
    mocked.post(f"{base}/Calls/{CA}/Payments.json", json=PAYMENT, status=201)
    rest.send_sms(MEMBER, "hi")
    rest.create_call(MEMBER, "https://coop.test/v")
    rest.fetch_call(CA)
    rest.create_payment(CA, idempotency_key="k", status_callback=CALLBACK, payment_connector="X")
    assert {urlsplit(call.request.url).netloc for call in mocked.calls} == {"127.0.0.1:8099"}


def test_api_base_with_path_prefix(mocked):
    rest = TwilioRest(AC, TOKEN, from_number=FROM, api_base="http://fake.local:9000/twilio/")
    mocked.post(
        f"http://fake.local:9000/twilio/2010-04-01/Accounts/{AC}/Messages.json",
        json=MESSAGE,
        status=201,
    )
    assert rest.send_sms(MEMBER, "hi").sid == SM


def test_twilio_sms_sender_uses_rest(rest, mocked):
    mocked.post(
        f"{API}/Messages.json",
        json=MESSAGE,
        status=201,
        match=[form_is({"To": MEMBER, "From": FROM, "Body": "Receipt"})],
    )
    assert TwilioSmsSender(rest).send(MEMBER, "Receipt").sid == SM


def test_build_sms_sender_twilio_honours_api_base(mocked):
    sender = build_sms_sender(
        {
            "SMS_SENDER": "twilio",
            "TWILIO_ACCOUNT_SID": AC,
            "TWILIO_AUTH_TOKEN": TOKEN,
            "TWILIO_FROM_NUMBER": FROM,
            "TWILIO_API_BASE": "http://127.0.0.1:8098",
        }
    )
    mocked.post(
        f"http://127.0.0.1:8098/2010-04-01/Accounts/{AC}/Messages.json",
        json=MESSAGE,
        status=201,
        match=[form_is({"To": MEMBER, "From": FROM, "Body": "x"})],
    )
    assert sender.send(MEMBER, "x").sid == SM


def test_build_sms_sender_sandbox_prints_text(capsys):
    sender = build_sms_sender({"SMS_SENDER": "sandbox"})
    assert isinstance(sender, SandboxSmsSender)
    result = sender.send(MEMBER, "Thanks! Payment of $12.50 received.")
    out = capsys.readouterr().out
    assert "Thanks! Payment of $12.50 received." in out
    assert "…2671" in out and MEMBER not in out
    assert result.sid.startswith("SM") and len(result.sid) == 34


def test_build_sms_sender_rejects_unknown():
    with pytest.raises(ValueError):
        build_sms_sender({"SMS_SENDER": "carrier-pigeon"})


def test_repr_never_shows_token():
    assert TOKEN not in repr(TwilioRest(AC, TOKEN, from_number=FROM))


# --- every request above, checked against Twilio's OpenAPI description ------------------------


def _operations() -> list[tuple[str, str, dict]]:
    """(method, spec path, form) for each REST call TwilioRest makes, captured at the wire."""
    rest = TwilioRest(AC, TOKEN, from_number=FROM)
    captured = []
    with responses.RequestsMock() as rsps:
        rsps.post(f"{API}/Messages.json", json=MESSAGE, status=201)
        rsps.post(f"{API}/Calls.json", json=call_body(), status=201)
        rsps.get(f"{API}/Calls/{CA}.json", json=call_body())
        rsps.post(f"{API}/Calls/{CA}.json", json=call_body())
        rsps.post(f"{API}/Calls/{CA}/Payments.json", json=PAYMENT, status=201)
        rsps.post(f"{API}/Calls/{CA}/Payments/{PK}.json", json=PAYMENT, status=202)
        rest.send_sms(MEMBER, "hi", status_callback="https://c.test/s")
        rest.create_call(
            MEMBER,
            "https://c.test/v",
            status_callback="https://c.test/s",
            status_callback_events=["initiated", "completed"],
            machine_detection="Enable",
        )
        rest.fetch_call(CA)
        rest.redirect_call(CA, "https://c.test/r")
        rest.create_payment(
            CA, idempotency_key="k", status_callback=CALLBACK, payment_connector="X", timeout=9
        )
        rest.update_payment(
            CA, PK, idempotency_key="k2", status_callback=CALLBACK, capture="expiration-date"
        )
        rest.update_payment(CA, PK, idempotency_key="k3", status_callback=CALLBACK, status="cancel")
        for call in rsps.calls:
            path = urlsplit(call.request.url).path
            spec_path = (
                path.replace(AC, "{AccountSid}")
                .replace(f"Calls/{CA}/", "Calls/{CallSid}/")
                .replace(f"Calls/{CA}.json", "Calls/{Sid}.json")
                .replace(PK, "{Sid}")
            )
            body = call.request.body or ""
            captured.append((call.request.method.lower(), spec_path, parse_qs(body)))
    return captured


def _resolve(spec: dict, schema: dict) -> dict:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return spec["components"]["schemas"][name]
    return schema


def test_requests_match_openapi_spec():
    if not SPEC.exists():
        pytest.skip(f"{SPEC} not available")
    spec = json.loads(SPEC.read_text())
    operations = _operations()
    assert len(operations) == 7
    for method, path, form in operations:
        operation = spec["paths"][path][method]
        if method == "get":
            assert form == {}
            continue
        schema = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
        properties = schema["properties"]
        assert set(form) <= set(properties), (path, set(form) - set(properties))
        assert set(schema.get("required", [])) <= set(form), path
        for name, values in form.items():
            prop = _resolve(spec, properties[name])
            if prop.get("type") == "array":
                assert all(isinstance(v, str) for v in values)
            else:
                assert len(values) == 1, (path, name)
            if "enum" in prop:
                assert set(values) <= set(prop["enum"]), (path, name, values)
            if prop.get("type") == "boolean":
                assert values[0] in {"true", "false"}
            if prop.get("type") == "integer":
                assert values[0].isdigit()


def test_sdk_request_logging_is_silenced_so_numbers_and_texts_stay_out_of_logs():
    import logging

    import ivr.twilio.adapter  # noqa: F401

    assert logging.getLogger("twilio.http_client").getEffectiveLevel() >= logging.WARNING


def listed(*messages: dict) -> dict:
    """A Messages list page as Twilio answers it (newest first)."""
    return {"messages": list(messages), "end": len(messages) - 1, "first_page_uri": "", "next_page_uri": None,
            "page": 0, "page_size": 50, "previous_page_uri": None, "start": 0, "uri": ""}


@responses.activate
def test_find_sent_asks_twilio_for_our_texts_to_the_number_and_matches_body_and_time():
    from datetime import UTC, datetime

    older = {**MESSAGE, "sid": "SM" + "1" * 32, "date_created": "Wed, 23 Aug 2023 05:01:45 +0000"}
    other = {**MESSAGE, "sid": "SM" + "2" * 32, "body": "Another text"}
    responses.add(responses.GET, f"{API}/Messages.json", json=listed(other, MESSAGE, older))
    sender = TwilioSmsSender(TwilioRest(AC, TOKEN, from_number=FROM))

    queued_at = datetime(2023, 8, 24, 5, 0, tzinfo=UTC)
    assert sender.find_sent(MEMBER, "Payment received", queued_at) == SM
    assert sender.find_sent(MEMBER, "Payment received", datetime(2023, 8, 25, tzinfo=UTC)) is None
    assert sender.find_sent(MEMBER, "Never sent", queued_at) is None

    query = parse_qs(urlsplit(responses.calls[0].request.url).query)
    assert (query["To"], query["From"]) == ([MEMBER], [FROM])
    assert "DateSent" not in query  # a text Twilio holds but has not sent yet has no date_sent
    operation = json.loads(SPEC.read_text())["paths"]["/2010-04-01/Accounts/{AccountSid}/Messages.json"]["get"]
    assert set(query) <= {p["name"] for p in operation["parameters"]}


@responses.activate
def test_find_sent_reports_twilio_unreachable_as_an_error_not_as_not_sent():
    responses.add(responses.GET, f"{API}/Messages.json", json=error_body(20500, 500, "Internal Server Error"),
                  status=500)
    from datetime import UTC, datetime

    with pytest.raises(TwilioApiError):
        TwilioSmsSender(TwilioRest(AC, TOKEN, from_number=FROM)).find_sent(MEMBER, "x", datetime.now(UTC))
