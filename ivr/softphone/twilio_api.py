"""Twilio's REST API stood in for on loopback (``TWILIO_API_BASE``): the demo's, the tests' and the bench's one copy.

Answers follow the resources in Twilio's OpenAPI description (api.v2010 call, message, payments).
What Twilio would then do on the phone is left to the softphone, which plays Twilio's media side:
``ivr call --twilio-api URL`` tells the stand-in its call is live, picks up the redirects and
Payments sessions asked for that call, and ``ivr call --answer`` answers the call the app asked
Twilio to place (Call me now). Those ``/_softphone/…`` endpoints are the stand-in's own, not Twilio's.
Tests read ``calls``, ``updates``, ``payments`` and ``messages`` to see what was asked.
"""

import threading
from collections.abc import Callable
import uuid
from datetime import UTC, datetime

import requests
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from ..masking import mask
from ..twilio.adapter import compute_signature

ACTIVE = ("in-progress", "ringing", "queued")


def _now() -> str:
    return datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


class TwilioStandIn:
    """A threaded loopback server; ``with TwilioStandIn(account_sid) as twilio: twilio.url``."""

    def __init__(
        self,
        account_sid: str,
        *,
        port: int = 0,
        announce: Callable[[str], None] | None = None,
        auth_token: str | None = None,
    ) -> None:
        self.account_sid = account_sid
        # With the auth token, a placed call nobody answers ends as Twilio's would: a signed
        # ``no-answer`` status callback once its Timeout has passed.
        self.auth_token = auth_token
        self.timers: list[threading.Timer] = []
        self.port = port
        self.announce = announce or (lambda text: None)  # the demo prints what Twilio was asked to do
        self.lock = threading.Lock()
        self.calls: dict[str, dict] = {}
        self.updates: list[dict] = []
        self.payments: list[dict] = []
        self.messages: list[dict] = []
        self.message_resources: list[dict] = []  # as Twilio holds them, newest first
        self.created_calls: list[dict] = []
        # (HTTP status, Twilio code, message) answered by the next Calls.json creates, in order.
        self.fail_calls: list[tuple[int, int, str]] = []
        # What the softphone is to do on a live call (redirects, Payments sessions), by call sid.
        self.pending: dict[str, list[dict]] = {}
        self.ringing: list[dict] = []  # outbound calls the app asked for, not yet answered
        self.app = Flask("twilio_stand_in")
        self.register(self.app)

    def add_call(self, sid: str | None = None, status: str = "in-progress", **fields) -> str:
        """Pretend a call exists (e.g. the member's inbound leg)."""
        sid = sid or "CA" + uuid.uuid4().hex
        self.calls[sid] = self._call_resource(sid, status=status, **fields)
        return sid

    def _call_resource(self, sid: str, **fields) -> dict:
        # Exactly the properties of api.v2010.account.call.
        base = {
            "sid": sid, "account_sid": self.account_sid, "status": "in-progress", "direction": "inbound",
            "from": "+12025550143", "to": "+18005550100", "from_formatted": None, "to_formatted": None,
            "date_created": _now(), "date_updated": _now(), "start_time": _now(), "end_time": None,
            "duration": None, "price": None, "price_unit": "USD", "api_version": "2010-04-01",
            "parent_call_sid": None, "phone_number_sid": None, "answered_by": None, "caller_name": None,
            "forwarded_from": None, "group_sid": None, "queue_time": "0", "trunk_sid": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{sid}.json",
            "subresource_uris": {},
        }
        base.update(fields)
        return base

    def _payment_resource(self, call_sid: str, pk: str) -> dict:
        # Exactly the properties of api.v2010.account.call.payments.
        return {"account_sid": self.account_sid, "call_sid": call_sid, "sid": pk,
                "date_created": _now(), "date_updated": _now(),
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{call_sid}/Payments/{pk}.json"}

    def _error(self, code: int, message: str, status: int):
        body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status}
        return jsonify(body), status

    def _live(self, account: str, sid: str):
        """None when ``sid`` is a live call of this account, else Twilio's error answer."""
        if account != self.account_sid or sid not in self.calls:
            return self._error(20404, f"The requested resource /Calls/{sid}.json was not found", 404)
        if self.calls[sid]["status"] not in ACTIVE:
            return self._error(21220, "Call is not in-progress. Cannot redirect.", 400)
        return None

    def _tell(self, sid: str, event: dict) -> None:
        with self.lock:
            self.pending.setdefault(sid, []).append(event)

    def _unanswered(self, sid: str) -> None:
        """The ring timeout passed: if the call is still ringing, it ends ``no-answer`` and the app is told."""
        with self.lock:
            call = next((c for c in self.ringing if c["sid"] == sid), None)
            if call is None:
                return
            self.ringing.remove(call)
        self.calls[sid].update(status="no-answer", end_time=_now())
        self.announce(f"Twilio stand-in: nobody answered {mask(call.get('To'))}; the call ends no-answer")
        params = {"AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "CallSid": sid,
                  "CallStatus": "no-answer", "Direction": "outbound-api", "From": call.get("From", ""),
                  "To": call.get("To", ""), "CallDuration": "0"}
        url = call["StatusCallback"]
        signature = compute_signature(url, params, self.auth_token or "")
        try:
            requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=15)
        except requests.RequestException:
            self.announce("Twilio stand-in: the app did not take the no-answer status callback")

    def register(self, app: Flask) -> None:
        """Add Twilio's routes (and the softphone's) to ``app``; the bench mounts them beside Stripe's."""
        prefix = "/2010-04-01/Accounts/<account>"

        @app.post(prefix + "/Calls.json")
        def create_call(account):
            form = request.form.to_dict()
            self.created_calls.append(form)
            if self.fail_calls:
                status, code, message = self.fail_calls.pop(0)
                return self._error(code, message, status)
            sid = "CA" + uuid.uuid4().hex
            self.calls[sid] = self._call_resource(sid, status="queued", direction="outbound-api",
                                                  **{"from": form.get("From"), "to": form.get("To")})
            with self.lock:
                self.ringing.append({"sid": sid, **form})
            if self.auth_token and form.get("StatusCallback"):
                timer = threading.Timer(float(form.get("Timeout") or 60), self._unanswered, args=(sid,))
                timer.daemon = True
                self.timers.append(timer)
                timer.start()
            self.announce(f"Twilio stand-in: the app asks to call {mask(form.get('To'))}; answer with "
                          f"ivr call --answer --twilio-api {self.url}")
            return jsonify(self.calls[sid]), 201

        @app.get(prefix + "/Calls/<sid>.json")
        def fetch_call(account, sid):
            if account != self.account_sid or sid not in self.calls:
                return self._error(20404, f"The requested resource /Calls/{sid}.json was not found", 404)
            return jsonify(self.calls[sid])

        @app.post(prefix + "/Calls/<sid>.json")
        def update_call(account, sid):
            refused = self._live(account, sid)
            if refused:
                return refused
            form = request.form.to_dict()
            self.updates.append({"sid": sid, **form})
            if form.get("Status") in ("completed", "canceled"):
                self.calls[sid]["status"] = form["Status"]
            elif form.get("Url"):
                self._tell(sid, {"kind": "redirect", "url": form["Url"], "method": form.get("Method", "POST")})
                self.announce(f"Twilio stand-in: call {sid} redirected by the app")
            return jsonify(self.calls[sid])

        @app.post(prefix + "/Calls/<sid>/Payments.json")
        def create_payment(account, sid):
            form = request.form.to_dict()
            self.payments.append({"call_sid": sid, **form})
            pk = "PK" + uuid.uuid4().hex
            self._tell(sid, {"kind": "payment", "sid": pk, **form})
            self.announce(f"Twilio stand-in: a Payments session on call {sid}")
            return jsonify(self._payment_resource(sid, pk)), 201

        @app.post(prefix + "/Calls/<sid>/Payments/<pk>.json")
        def update_payment(account, sid, pk):
            form = request.form.to_dict()
            self.payments.append({"call_sid": sid, "payment_sid": pk, **form})
            self._tell(sid, {"kind": "payment-update", "sid": pk, **form})
            return jsonify(self._payment_resource(sid, pk))

        @app.post(prefix + "/Messages.json")
        def create_message(account):
            form = request.form.to_dict()
            sid = "SM" + uuid.uuid4().hex
            resource = {"sid": sid, "account_sid": self.account_sid, "to": form.get("To"),
                        "from": form.get("From"), "body": form.get("Body"), "status": "queued",
                        "num_segments": "1", "direction": "outbound-api", "api_version": "2010-04-01",
                        "date_created": _now(), "date_updated": _now(), "date_sent": None,
                        "error_code": None, "error_message": None, "price": None, "price_unit": "USD",
                        "messaging_service_sid": None, "num_media": "0",
                        "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
                        "subresource_uris": {}}
            with self.lock:
                self.messages.append(form)
                self.message_resources.insert(0, resource)
            return jsonify(resource), 201

        @app.get(prefix + "/Messages.json")
        def list_messages(account):
            # Newest first, filtered by To and From as Twilio's list is.
            with self.lock:
                wanted = [m for m in self.message_resources
                          if all(m[field] == request.args[arg] for arg, field in (("To", "to"), ("From", "from"))
                                 if arg in request.args)]
            return jsonify({"messages": wanted, "end": max(len(wanted) - 1, 0), "first_page_uri": "",
                            "next_page_uri": None, "page": 0, "page_size": len(wanted),
                            "previous_page_uri": None, "start": 0, "uri": ""})

        # --- the softphone's side: Twilio's phone network, which Twilio's REST API does not show ---

        @app.post("/_softphone/calls")
        def call_started():
            form = request.form
            self.add_call(form["CallSid"], status="in-progress", direction=form.get("Direction", "inbound"),
                          **{"from": form.get("From"), "to": form.get("To")})
            return jsonify(ok=True), 201

        @app.post("/_softphone/calls/<sid>/ended")
        def call_ended(sid):
            if sid in self.calls:
                self.calls[sid].update(status=request.form.get("CallStatus", "completed"), end_time=_now())
            return jsonify(ok=True)

        @app.get("/_softphone/calls/<sid>/events")
        def call_events(sid):
            with self.lock:
                events = self.pending.pop(sid, [])
            return jsonify(events=events)

        @app.post("/_softphone/answer")
        def answer():
            # The oldest call still ringing is answered: it is in progress from now on.
            with self.lock:
                call = self.ringing.pop(0) if self.ringing else None
            if call is None:
                return jsonify(call=None), 404
            self.calls[call["sid"]].update(status="in-progress", start_time=_now())
            return jsonify(call=call)

    def __enter__(self) -> "TwilioStandIn":
        self.server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for timer in self.timers:
            timer.cancel()
        self.server.shutdown()
