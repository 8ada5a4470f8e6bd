"""Twilio's REST API faked on loopback (``TWILIO_API_BASE``) for tests that run real server processes.

Response bodies follow the resources in Twilio's OpenAPI description (api.v2010 call, message,
payments). Tests read ``calls``, ``updates``, ``payments`` and ``messages`` to see what was asked.
"""

import itertools
import threading
import uuid
from datetime import UTC, datetime

from flask import Flask, jsonify, request
from werkzeug.serving import make_server

_counter = itertools.count(1)


def _now() -> str:
    return datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


class FakeTwilio:
    """A threaded loopback server; ``with FakeTwilio() as fake: fake.url``."""

    def __init__(self, account_sid: str) -> None:
        self.account_sid = account_sid
        self.calls: dict[str, dict] = {}
        self.updates: list[dict] = []
        self.payments: list[dict] = []
        self.messages: list[dict] = []
        self.message_resources: list[dict] = []  # as Twilio holds them, newest first
        self.created_calls: list[dict] = []
        # (HTTP status, Twilio code, message) answered by the next Calls.json creates, in order.
        self.fail_calls: list[tuple[int, int, str]] = []
        self.app = self._build()

    def add_call(self, sid: str | None = None, status: str = "in-progress", **fields) -> str:
        """Pretend a call exists (e.g. the member's inbound leg)."""
        sid = sid or "CA" + uuid.uuid4().hex
        self.calls[sid] = self._call_resource(sid, status=status, **fields)
        return sid

    def _call_resource(self, sid: str, **fields) -> dict:
        base = {
            "sid": sid, "account_sid": self.account_sid, "status": "in-progress", "direction": "inbound",
            "from": "+12025550143", "to": "+18005550100", "from_formatted": None, "to_formatted": None,
            "date_created": _now(), "date_updated": _now(), "start_time": _now(), "end_time": None,
            "duration": None, "price": None, "price_unit": "USD", "api_version": "2010-04-01",
            "parent_call_sid": None, "phone_number_sid": None, "answered_by": None, "caller_name": None,
            "forwarded_from": None, "group_sid": None, "queue_time": "0", "trunk_sid": None,
            "annotation": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{sid}.json",
            "subresource_uris": {},
        }
        base.update(fields)
        return base

    def _error(self, code: int, message: str, status: int):
        body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status}
        return jsonify(body), status

    def _build(self) -> Flask:
        app = Flask("fake_twilio")
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
            return jsonify(self.calls[sid]), 201

        @app.get(prefix + "/Calls/<sid>.json")
        def fetch_call(account, sid):
            if account != self.account_sid or sid not in self.calls:
                return self._error(20404, f"The requested resource /Calls/{sid}.json was not found", 404)
            return jsonify(self.calls[sid])

        @app.post(prefix + "/Calls/<sid>.json")
        def update_call(account, sid):
            if account != self.account_sid or sid not in self.calls:
                return self._error(20404, f"The requested resource /Calls/{sid}.json was not found", 404)
            if self.calls[sid]["status"] not in ("in-progress", "ringing", "queued"):
                return self._error(21220, "Call is not in-progress. Cannot redirect.", 400)
            form = request.form.to_dict()
            self.updates.append({"sid": sid, **form})
            if form.get("Status") in ("completed", "canceled"):
                self.calls[sid]["status"] = form["Status"]
            return jsonify(self.calls[sid])

        @app.post(prefix + "/Calls/<sid>/Payments.json")
        def create_payment(account, sid):
            form = request.form.to_dict()
            self.payments.append({"call_sid": sid, **form})
            pk = "PK" + uuid.uuid4().hex
            return jsonify({"account_sid": self.account_sid, "call_sid": sid, "sid": pk,
                            "date_created": _now(), "date_updated": _now(),
                            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{sid}/Payments/{pk}.json"}), 201

        @app.post(prefix + "/Calls/<sid>/Payments/<pk>.json")
        def update_payment(account, sid, pk):
            form = request.form.to_dict()
            self.payments.append({"call_sid": sid, "payment_sid": pk, **form})
            return jsonify({"account_sid": self.account_sid, "call_sid": sid, "sid": pk,
                            "date_created": _now(), "date_updated": _now(),
                            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{sid}/Payments/{pk}.json"})

        @app.post(prefix + "/Messages.json")
        def create_message(account):
            form = request.form.to_dict()
            self.messages.append(form)
            sid = "SM" + uuid.uuid4().hex
            self.message_resources.insert(0, {"sid": sid, "account_sid": self.account_sid, "to": form.get("To"),
                            "from": form.get("From"), "body": form.get("Body"), "status": "queued",
                            "num_segments": "1", "direction": "outbound-api", "api_version": "2010-04-01",
                            "date_created": _now(), "date_updated": _now(), "date_sent": None,
                            "error_code": None, "error_message": None, "price": None, "price_unit": "USD",
                            "messaging_service_sid": None, "num_media": "0",
                            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
                            "subresource_uris": {}})
            return jsonify(self.message_resources[0]), 201

        @app.get(prefix + "/Messages.json")
        def list_messages(account):
            # Newest first, filtered by To and From as Twilio's list is.
            wanted = [m for m in self.message_resources
                      if all(m[field] == request.args[arg] for arg, field in (("To", "to"), ("From", "from"))
                             if arg in request.args)]
            return jsonify({"messages": wanted, "end": max(len(wanted) - 1, 0), "first_page_uri": "",
                            "next_page_uri": None, "page": 0, "page_size": len(wanted),
                            "previous_page_uri": None, "start": 0, "uri": ""})

        return app

    def __enter__(self) -> "FakeTwilio":
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
