"""Test helpers: a caller that signs like Twilio, and HTTP-level fakes of Stripe and Twilio for `responses`."""

import hashlib
import hmac
import json
import re
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import requests
from lxml import etree

from ivr.softphone.interpreter import spoken_text
from ivr.twilio.adapter import compute_signature
from payments.sandbox_cards import BY_PAYMENT_METHOD, sandbox_customer

BASE = "https://ivr.example.coop"
TOKEN = "test-auth-token"
# The service ZIP code ``make_account`` gives an account: the caller-ID path's second factor.
ZIP = "20005"
ACCOUNT_SID = "AC" + "a" * 32


class CallActions:
    """Play Twilio's part in a call: sign each request, follow the TwiML's action URLs."""

    def __init__(self, client, *, from_="+12025550143", to="+18005550100", call_sid=None, token=TOKEN):
        self.client = client
        self.token = token
        self.call_sid = call_sid or "CA" + uuid.uuid4().hex
        self.from_ = from_
        self.to = to
        self.root = None
        self.last_status = None

    def params(self, **extra):
        base = {
            "CallSid": self.call_sid,
            "AccountSid": ACCOUNT_SID,
            "From": self.from_,
            "To": self.to,
            "Direction": "inbound",
            "CallStatus": "in-progress",
            "ApiVersion": "2010-04-01",
        }
        base.update({k: v for k, v in extra.items() if v is not None})
        return base

    def post(self, url, params, *, signature=None):
        """POST ``params`` to the absolute public ``url`` as Twilio would; returns the parsed TwiML root."""
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        sig = compute_signature(url, params, self.token) if signature is None else signature
        response = self.client.post(path, data=params, headers={"X-Twilio-Signature": sig})
        self.last_status = response.status_code
        if response.status_code == 200 and response.data.strip().startswith(b"<?xml"):
            assert response.mimetype in ("text/xml", "application/xml")
            self.root = etree.fromstring(response.data)
            return self.root
        return response

    def start(self):
        return self.post(f"{BASE}/twilio/voice", self.params(CallStatus="ringing"))

    def gather_action(self):
        actions = self.root.xpath("./Gather/@action")
        assert len(actions) == 1, etree.tostring(self.root).decode()
        return actions[0]

    def press(self, digits):
        """Key ``digits`` into the current ``<Gather>``."""
        return self.post(self.gather_action(), self.params(Digits=digits))

    def say(self, words, confidence=0.93):
        """Say ``words`` to the current ``<Gather>``: Twilio posts ``SpeechResult`` and ``Confidence``."""
        return self.post(self.gather_action(), self.params(SpeechResult=words, Confidence=str(confidence)))

    def silence(self):
        """Let the ``<Gather>`` time out: Twilio follows the ``<Redirect>`` after it."""
        url = self.root.xpath("./Redirect/text()")[0]
        return self.post(url, self.params())

    def pay_action(self):
        actions = self.root.xpath("./Pay/@action")
        assert len(actions) == 1, etree.tostring(self.root).decode()
        return actions[0]

    def pay(self, payment_method="pm_card_visa", *, result="success", **extra):
        """Answer ``<Pay>`` the way Twilio's Stripe connector does (tokenize mode): the PaymentMethod
        in ``PaymentToken`` and its Stripe customer in ``ProfileId`` (``ProfileId=""`` sends none)."""
        card = BY_PAYMENT_METHOD.get(payment_method)
        fields = {"Result": result, "PaymentMethod": "credit-card"}
        if result == "success":
            fields.update(
                PaymentToken=payment_method,
                ProfileId=sandbox_customer(payment_method),
                PaymentCardNumber="xxxxxxxxxxxx" + (card.number[-4:] if card else "4242"),
                PaymentCardType=card.brand if card else "visa",
                ExpirationDate="1229",
                SecurityCode="***",
                PaymentCardPostalCode="30301",
            )
        fields.update(extra)
        params = self.params(**fields)
        self.last_pay_params = params
        return self.post(self.pay_action(), params)

    def status(self, status="completed"):
        return self.post(f"{BASE}/twilio/voice/status", self.params(CallStatus=status, CallDuration="42"))

    def said(self):
        """Everything said in the current answer, as one string, SSML read as the caller hears it
        (a ``<say-as interpret-as="digits">`` number digit by digit), as ``ivr call`` prints it."""
        return " ".join(spoken_text(say) for say in self.root.xpath("//Say"))


def _stripe_error(status, error):
    return (status, {"Content-Type": "application/json", "Request-Id": "req_test"}, json.dumps({"error": error}))


def _form(request):
    return {k: v[0] for k, v in parse_qs(request.body if isinstance(request.body, str) else request.body.decode()).items()}


class StripeFake:
    """Stripe's PaymentIntents, PaymentMethods and Refunds endpoints, stateful, with real idempotency.

    A saved card charged ``off_session`` behaves as Stripe documents for its test card (``0341``
    declines, ``3155`` wants authentication); ``detached`` lists the PaymentMethods detached.

    Response bodies follow the documented PaymentIntent, Refund and error objects. ``fail_next`` makes
    the next N requests answer 500 (and, as Stripe does, the saved result of a key is replayed).
    ``now`` is Stripe's clock (a Refund's ``created``); ``before_refund_answer(refund)`` runs after a
    refund exists and before its answer leaves, as a webhook may arrive first; ``drop_next`` loses
    the next N refund requests on the way (a network failure: Stripe never sees them).
    ``in_use[key] = N`` answers the next N PaymentIntent requests with that idempotency key as Stripe
    does while an earlier request with the key is still running (409 ``idempotency_key_in_use``,
    nothing saved); ``in_use_always`` answers every one so. A request arriving while another with
    its key is being answered gets that same 409, as at Stripe; ``hold`` (a ``threading.Event``)
    keeps the next PaymentIntent request waiting at "Stripe" until it is set.
    """

    def __init__(self, rsps, base="https://api.stripe.com"):
        self.rsps = rsps
        self.saved = {}
        self.intents = []  # every PaymentIntent actually created
        self.refunds = []  # every Refund actually created
        self.requests = []
        self.fail_next = 0
        self.now = lambda: int(time.time())
        self.before_refund_answer = None
        self.drop_next = 0
        self.detached = []
        self.in_use = {}
        self.in_use_always = False
        self.in_flight = set()
        self.hold = None
        rsps.add_callback("POST", re.compile(re.escape(base) + r"/v1/payment_intents$"), self._create_intent)
        rsps.add_callback("POST", re.compile(re.escape(base) + r"/v1/payment_methods/[^/]+/detach$"), self._detach)
        rsps.add_callback("POST", re.compile(re.escape(base) + r"/v1/payment_methods$"), self._create_pm)
        rsps.add_callback("POST", re.compile(re.escape(base) + r"/v1/refunds$"), self._create_refund)
        rsps.add_callback("GET", re.compile(re.escape(base) + r"/v1/refunds(\?.*)?$"), self._list_refunds)

    def _create_intent(self, request):
        key = request.headers.get("Idempotency-Key")
        if key in self.in_flight:
            self.requests.append(request)
            return _stripe_error(409, {"type": "idempotency_error", "code": "idempotency_key_in_use",
                                       "message": "There is currently another in-progress request using this "
                                                  "Idempotent Key. Please try again later."})
        self.in_flight.add(key)
        try:
            hold, self.hold = self.hold, None
            if hold is not None:
                assert hold.wait(20), "the test never let Stripe answer"
            return self._answer_intent(request, key)
        finally:
            self.in_flight.discard(key)

    def _answer_intent(self, request, key):
        self.requests.append(request)
        if self.in_use_always or self.in_use.get(key):
            if not self.in_use_always:
                self.in_use[key] -= 1
            return _stripe_error(409, {"type": "idempotency_error", "code": "idempotency_key_in_use",
                                       "message": "There is currently another in-progress request using this "
                                                  "Idempotent Key. Please try again later."})
        if key in self.saved:
            return self.saved[key]
        if self.fail_next:
            self.fail_next -= 1
            answer = _stripe_error(500, {"type": "api_error", "message": "An unknown error occurred"})
            self.saved[key] = answer
            return answer
        form = {k: v[0] for k, v in parse_qs(request.body if isinstance(request.body, str) else request.body.decode()).items()}
        pm = form.get("payment_method", "")
        card = BY_PAYMENT_METHOD.get(pm)
        intent_id = "pi_" + uuid.uuid4().hex[:24]
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": int(form["amount"]),
            "amount_received": 0,
            "currency": form["currency"],
            "metadata": {k[len("metadata["):-1]: v for k, v in form.items() if k.startswith("metadata[")},
            "customer": form.get("customer"),
            "payment_method": pm,
            "livemode": False,
            "status": "requires_payment_method",
            "latest_charge": None,
        }
        self.intents.append(intent)
        off_session = form.get("off_session") == "true"
        decline_code = card and ((card.off_session_decline_code or card.decline_code) if off_session else card.decline_code)
        if card is None:
            answer = _stripe_error(400, {"type": "invalid_request_error", "code": "resource_missing",
                                         "param": "payment_method", "message": f"No such PaymentMethod: '{pm}'"})
        elif off_session and not form.get("customer"):
            answer = _stripe_error(400, {"type": "invalid_request_error", "code": "parameter_missing",
                                         "param": "customer", "message": "A saved PaymentMethod needs its customer."})
        elif decline_code:
            intent["last_payment_error"] = {"type": "card_error", "code": "card_declined", "decline_code": decline_code}
            own_code = decline_code in ("expired_card", "incorrect_cvc", "processing_error", "authentication_required")
            code = decline_code if own_code else "card_declined"
            answer = _stripe_error(402, {"type": "card_error", "code": code, "decline_code": decline_code,
                                         "message": "Your card was declined.", "payment_intent": intent})
        else:
            intent.update(status="succeeded", amount_received=intent["amount"])
            intent["latest_charge"] = {
                "id": "ch_" + uuid.uuid4().hex[:24], "object": "charge", "amount": intent["amount"],
                "paid": True, "status": "succeeded",
                "payment_method_details": {"type": "card", "card": {"brand": card.brand, "last4": card.number[-4:]}},
            }
            intent["payment_method"] = {"id": pm, "object": "payment_method", "type": "card",
                                        "card": {"brand": card.brand, "last4": card.number[-4:]}}
            answer = (200, {"Content-Type": "application/json", "Request-Id": "req_test"}, json.dumps(intent))
        self.saved[key] = answer
        return answer

    def _create_pm(self, request):
        form = {k: v[0] for k, v in parse_qs(request.body if isinstance(request.body, str) else request.body.decode()).items()}
        tok = form.get("card[token]", "")
        card = BY_PAYMENT_METHOD.get(tok)
        if card is None:
            return _stripe_error(400, {"type": "invalid_request_error", "code": "resource_missing", "message": "No such token"})
        body = {"id": card.payment_method, "object": "payment_method", "type": "card",
                "card": {"brand": card.brand, "last4": card.number[-4:]}}
        return (200, {"Content-Type": "application/json"}, json.dumps(body))

    def _detach(self, request):
        pm = urlsplit(request.url).path.split("/")[-2]
        self.detached.append(pm)
        body = {"id": pm, "object": "payment_method", "type": "card", "customer": None}
        return (200, {"Content-Type": "application/json"}, json.dumps(body))

    def add_refund(self, payment_intent, amount, metadata=None):
        """A Refund as Stripe creates it (from the dashboard too), or None when more than remains is asked."""
        refunded = sum(r["amount"] for r in self.refunds if r["payment_intent"] == payment_intent)
        charged = next((i["amount"] for i in self.intents if i["id"] == payment_intent), None)
        if charged is not None and refunded + amount > charged:
            return None
        refund = {
            "id": "re_" + uuid.uuid4().hex[:24], "object": "refund", "amount": amount, "currency": "usd",
            "charge": "ch_" + payment_intent[3:], "payment_intent": payment_intent, "status": "succeeded",
            "reason": None, "created": self.now(), "metadata": dict(metadata or {}),
        }
        self.refunds.append(refund)
        return refund

    def _create_refund(self, request):
        if self.drop_next:
            self.drop_next -= 1
            raise requests.ConnectionError("connection reset before Stripe received the request")
        self.requests.append(request)
        key = request.headers.get("Idempotency-Key")
        if key in self.saved:
            return self.saved[key]
        if self.fail_next:
            self.fail_next -= 1
            answer = _stripe_error(500, {"type": "api_error", "message": "An unknown error occurred"})
            self.saved[key] = answer
            return answer
        form = _form(request)
        metadata = {k[len("metadata["):-1]: v for k, v in form.items() if k.startswith("metadata[")}
        refund = self.add_refund(form["payment_intent"], int(form["amount"]), metadata)
        if refund is None:
            answer = _stripe_error(400, {"type": "invalid_request_error", "code": "amount_too_large", "param": "amount",
                                         "message": "Refund amount is greater than unrefunded amount on charge"})
        else:
            if self.before_refund_answer is not None:
                self.before_refund_answer(refund)
            answer = (200, {"Content-Type": "application/json", "Request-Id": "req_test"}, json.dumps(refund))
        self.saved[key] = answer
        return answer

    def _list_refunds(self, request):
        wanted = parse_qs(urlsplit(request.url).query).get("payment_intent", [None])[0]
        data = sorted((r for r in self.refunds if r["payment_intent"] == wanted), key=lambda r: -r["created"])
        body = {"object": "list", "url": "/v1/refunds", "has_more": False, "data": data}
        return (200, {"Content-Type": "application/json"}, json.dumps(body))

    @property
    def successful_charges(self):
        return [i for i in self.intents if i["status"] == "succeeded"]


# --- Stripe events, signed as Stripe signs them -----------------------------------------------

STRIPE_WEBHOOK_SECRET = "whsec_test_secret"  # the app_config fixture's


def send_event(client, event_type, obj, *, secret=STRIPE_WEBHOOK_SECRET, event_id=None, timestamp=None):
    """POST a Stripe event to /stripe/webhook, signed with ``secret`` as Stripe signs it."""
    event = {
        "id": event_id or "evt_" + uuid.uuid4().hex[:24],
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "type": event_type,
        "data": {"object": obj},
    }
    payload = json.dumps(event)
    header = stripe_signature_header(payload, secret, timestamp)
    return client.post("/stripe/webhook", data=payload, headers={"Stripe-Signature": header,
                                                                  "Content-Type": "application/json"})


def stripe_signature_header(payload, secret, timestamp=None):
    """``Stripe-Signature`` as Stripe computes it: HMAC-SHA256 of "{t}.{payload}" with the endpoint secret."""
    ts = int(timestamp or time.time())
    sig = hmac.new(secret.encode(), f"{ts}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={ts},v1={sig}"
