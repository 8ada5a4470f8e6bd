"""bench/stand_ins.py, the cluster benchmark's Stripe and Twilio: the real adapters talk to it, and it counts
a charge once per idempotency key, as Stripe does, so the benchmark's "one charge per payment" means something."""

import importlib.util
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from ivr.twilio.adapter import TwilioRest
from payments import PaymentUnavailable
from payments.stripe_gateway import StripeGateway

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def stand_ins():
    """The stand-ins on a loopback port, their state and their origin."""
    spec = importlib.util.spec_from_file_location("bench_stand_ins", ROOT / "bench" / "stand_ins.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    state = module.StandIns((0.0, 0.0))
    server = make_server("127.0.0.1", 0, module.build_app(state), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def _gateway(origin: str) -> StripeGateway:
    # Network retries as the servers have them (the SDK's two): a connection the loopback server
    # dropped is asked again with the same key, as it would be in the benchmark.
    return StripeGateway("sk_test_stand_in", webhook_secret="whsec_x", api_base=origin)


def _charge(gateway: StripeGateway, key: str, token: str = "pm_card_visa"):
    return gateway.charge(token=token, amount_cents=100, currency="usd", idempotency_key=key,
                          metadata={"payment_id": "7", "call_sid": "CA1"})


def test_a_key_charged_twice_is_one_charge_with_one_payment_intent(stand_ins):
    state, origin = stand_ins
    gateway = _gateway(origin + "/s2")
    first, again = _charge(gateway, "CA1:8"), _charge(gateway, "CA1:8")
    assert first.approved and again.approved
    assert first.payment_intent_id == again.payment_intent_id
    assert (first.card_brand, first.card_last4) == ("visa", "4242")
    assert [(i["server"], i["payment_id"], i["call_sid"], i["status"]) for i in state.intents] == [
        ("s2", "7", "CA1", "succeeded")]
    assert state.replays >= 1


def test_a_new_key_is_a_new_charge_and_a_declined_card_is_declined(stand_ins):
    state, origin = stand_ins
    gateway = _gateway(origin)
    assert _charge(gateway, "CA1:8").approved
    declined = _charge(gateway, "CA1:10", token="pm_card_visa_chargeDeclinedInsufficientFunds")
    assert not declined.approved and declined.decline_code == "insufficient_funds"
    assert [i["status"] for i in state.intents] == ["succeeded", "declined"]


def test_a_key_still_running_is_refused_as_stripe_refuses_it(stand_ins):
    state, origin = stand_ins
    state.running.add("CA1:8")
    with pytest.raises(PaymentUnavailable):
        _charge(_gateway(origin), "CA1:8")
    assert state.conflicts >= 1 and state.intents == []


def test_a_held_charge_has_moved_the_money_before_its_answer_leaves(stand_ins):
    state, origin = stand_ins
    state.hold_server = "s1"
    answered = []
    waiting = threading.Thread(target=lambda: answered.append(_charge(_gateway(origin + "/s1"), "CA1:8")))
    waiting.start()
    for _ in range(200):
        if state.held:
            break
        threading.Event().wait(0.01)
    assert state.held == {"server": "s1", "key": "CA1:8", "call_sid": "CA1"}
    assert answered == []
    # Another server asking with the same key meanwhile gets the charge already made.
    replay = _charge(_gateway(origin + "/s2"), "CA1:8")
    assert replay.approved and len(state.intents) == 1
    state.release.set()
    waiting.join(timeout=10)
    assert answered[0].payment_intent_id == replay.payment_intent_id


def test_texts_sent_through_the_twilio_adapter_are_counted(stand_ins):
    state, origin = stand_ins
    rest = TwilioRest("AC" + "c" * 32, "token", from_number="+18005550100", api_base=origin)
    sent = rest.send_sms("+12025550143", "Receipt 76303010")
    assert sent.sid.startswith("SM")
    assert [(m["to"], m["body"]) for m in state.twilio.message_resources] == [("+12025550143", "Receipt 76303010")]
    assert [m.body for m in rest.messages_to("+12025550143")] == ["Receipt 76303010"]
