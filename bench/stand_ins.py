"""Stripe's PaymentIntents and Twilio's Messages on loopback for bench/cluster.py: charges and texts counted where they arrive.

    .venv/bin/python bench/stand_ins.py --port 5800 [--stripe-latency 0.2,0.6]

Several ``ivr serve`` and ``ivr worker`` processes point ``STRIPE_API_BASE`` and ``TWILIO_API_BASE``
here, so the charges and texts of every process are counted in one place, by the side that receives
them, not by the database the processes write. Stripe's idempotency is kept as Stripe keeps it: a
key already answered gets the same answer again, and a key whose first request is still running
gets 409 ``idempotency_key_in_use``. Each server may be given its own path prefix
(``STRIPE_API_BASE=http://127.0.0.1:5800/s1``), so a charge is known by the server that asked.

Control, for the benchmark: ``POST /_hold?server=s1`` makes the next charge from that server take
the money and then not answer until ``POST /_release`` (a server killed meanwhile never learns the
outcome: a crash between the charge and its commit); ``GET /_held`` says whether one is held;
``GET /_counts`` returns every PaymentIntent and Message. Test data only: no card data ever.
"""

import argparse
import random
import sys
import threading
import time
import uuid
from pathlib import Path

from flask import Flask, jsonify, request
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.softphone.twilio_api import TwilioStandIn  # noqa: E402
from payments.sandbox_cards import BY_PAYMENT_METHOD  # noqa: E402

HOLD_SECONDS = 30.0  # a held answer is let go after this even without /_release


class StandIns:
    """The state behind the endpoints: PaymentIntents by idempotency key, Messages, and one hold."""

    def __init__(self, latency: tuple[float, float]) -> None:
        self.latency = latency
        self.lock = threading.Lock()
        self.answers: dict[str, tuple[int, dict]] = {}  # idempotency key -> (status, body)
        self.running: set[str] = set()
        self.intents: list[dict] = []
        self.replays = 0
        self.conflicts = 0
        self.twilio = TwilioStandIn(account_sid="-")  # any account's texts are counted
        self.hold_server: str | None = None
        self.held: dict | None = None
        self.release = threading.Event()

    def charge(self, server: str, key: str, form: dict[str, str]) -> tuple[int, dict]:
        """One PaymentIntents create: replayed, refused as in use, or made (and maybe held)."""
        with self.lock:
            if key in self.answers:
                self.replays += 1
                return self.answers[key]
            if key in self.running:
                self.conflicts += 1
                return 409, {"error": {"type": "idempotency_error", "code": "idempotency_key_in_use",
                                       "message": "There is currently another in-progress request using this "
                                                  "Stripe-Idempotency-Key."}}
            self.running.add(key)
        time.sleep(random.uniform(*self.latency))  # Stripe's own time to confirm a card
        status, body = self._confirm(server, key, form)
        with self.lock:
            # The money has moved and the answer is Stripe's from now on, whoever asks with this key.
            self.answers[key] = (status, body)
            self.running.discard(key)
            hold = self.hold_server == server and self.held is None
            if hold:
                self.held = {"server": server, "key": key, "call_sid": body.get("metadata", {}).get("call_sid")}
                self.hold_server = None
        if hold:
            self.release.wait(HOLD_SECONDS)
        return status, body

    def _confirm(self, server: str, key: str, form: dict[str, str]) -> tuple[int, dict]:
        pm = form.get("payment_method", "")
        card = BY_PAYMENT_METHOD.get(pm)
        metadata = {k[len("metadata["):-1]: v for k, v in form.items() if k.startswith("metadata[")}
        if card is None:
            return 400, {"error": {"type": "invalid_request_error", "code": "resource_missing",
                                   "param": "payment_method", "message": f"No such PaymentMethod: '{pm}'"}}
        intent = {
            "id": "pi_" + uuid.uuid4().hex[:24], "object": "payment_intent", "amount": int(form["amount"]),
            "amount_received": 0, "currency": form.get("currency", "usd"), "metadata": metadata,
            "payment_method": pm, "livemode": False, "status": "requires_payment_method", "latest_charge": None,
        }
        record = {"id": intent["id"], "key": key, "server": server, "amount": intent["amount"],
                  "call_sid": metadata.get("call_sid"), "payment_id": metadata.get("payment_id")}
        if card.decline_code:
            record["status"] = "declined"
            with self.lock:
                self.intents.append(record)
            intent["last_payment_error"] = {"type": "card_error", "code": "card_declined",
                                            "decline_code": card.decline_code}
            return 402, {"error": {"type": "card_error", "code": "card_declined", "decline_code": card.decline_code,
                                   "message": "Your card was declined.", "payment_intent": intent}}
        details = {"brand": card.brand, "last4": card.number[-4:]}
        intent.update(status="succeeded", amount_received=intent["amount"])
        intent["latest_charge"] = {"id": "ch_" + uuid.uuid4().hex[:24], "object": "charge", "amount": intent["amount"],
                                   "paid": True, "status": "succeeded",
                                   "payment_method_details": {"type": "card", "card": details}}
        intent["payment_method"] = {"id": pm, "object": "payment_method", "type": "card", "card": details}
        record["status"] = "succeeded"
        with self.lock:
            self.intents.append(record)
        return 200, intent


def build_app(state: StandIns) -> Flask:
    """The loopback app: Stripe under ``/<server>/v1`` (or ``/v1``), Twilio under ``/2010-04-01``."""
    app = Flask("stand_ins")

    def intents(server: str):
        key = request.headers.get("Idempotency-Key", "")
        if not key:
            return jsonify(error={"type": "invalid_request_error", "message": "an idempotency key is expected"}), 400
        status, body = state.charge(server, key, request.form.to_dict())
        return jsonify(body), status, {"Request-Id": "req_" + uuid.uuid4().hex[:14]}

    app.add_url_rule("/<server>/v1/payment_intents", "server_intents", intents, methods=["POST"])
    app.add_url_rule("/v1/payment_intents", "intents", lambda: intents("-"), methods=["POST"])

    # Twilio's Messages: the package's one stand-in for Twilio's REST API, mounted beside Stripe's.
    state.twilio.register(app)

    @app.post("/_hold")
    def hold():
        with state.lock:
            state.hold_server, state.held = request.args["server"], None
            state.release.clear()
        return jsonify(armed=state.hold_server)

    @app.get("/_held")
    def held():
        with state.lock:
            return jsonify(held=state.held)

    @app.post("/_release")
    def release():
        with state.lock:
            state.hold_server = None
        state.release.set()
        return jsonify(released=True)

    @app.get("/_counts")
    def counts():
        with state.lock:
            return jsonify(intents=list(state.intents), replays=state.replays, conflicts=state.conflicts,
                           messages=[{"to": m["to"], "body": m["body"], "sid": m["sid"]}
                                     for m in state.twilio.message_resources])

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--stripe-latency", default="0.2,0.6", help="seconds a charge takes: low,high (uniform)")
    args = parser.parse_args()
    low, high = (float(x) for x in args.stripe_latency.split(","))
    server = make_server("127.0.0.1", args.port, build_app(StandIns((low, high))), threaded=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
