"""GET /metrics: the token, the format, and that calls, payments, requests and the outbox move the numbers."""

import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import ZIP, CallActions
from live import (
    LiveServer,
    live_env,  # noqa: F401  (a migrated database with the demo accounts)
)
from live import ivr as run_ivr
from prometheus_client.parser import text_string_to_metric_families

from ivr.agents.keys import create_agent
from ivr.agents.models import CallbackDelivery, Transfer
from ivr.config import load_config
from ivr.extensions import db
from ivr.models import utcnow
from ivr.monitoring import multiproc
from ivr.outbox import engine, texts
from ivr.outbox.models import OutboxMessage

ROOT = Path(__file__).resolve().parents[2]
METRICS_TOKEN = "metrics-token-for-tests"
BEARER = {"Authorization": f"Bearer {METRICS_TOKEN}"}


@pytest.fixture
def app_config(app_config):
    return {**app_config, "METRICS_TOKEN": METRICS_TOKEN}


def samples_in(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a metrics page by (sample name, labels); the text must parse."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def scrape(client) -> dict[tuple[str, frozenset], float]:
    """The samples of ``GET /metrics`` through the test client."""
    response = client.get("/metrics", headers=BEARER)
    assert response.status_code == 200, response.data
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return samples_in(response.get_data(as_text=True))


def value(samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series has not been counted yet in this process."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before, after, name: str, **labels: str) -> float:
    """How much a counter moved between two scrapes (counters are per process, shared by every test)."""
    return value(after, name, **labels) - value(before, name, **labels)


# --- the token -------------------------------------------------------------------------------------


def test_the_token_is_read_from_the_environment_and_unset_by_default():
    assert load_config({"METRICS_TOKEN": "  s3cret "})["METRICS_TOKEN"] == "s3cret"
    assert load_config({})["METRICS_TOKEN"] is None


def test_metrics_do_not_exist_without_a_token(app, client):
    app.config["METRICS_TOKEN"] = None
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers=BEARER).status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", f"Bearer {METRICS_TOKEN}x", f"Bearer {METRICS_TOKEN[:-1]}", f"Basic {METRICS_TOKEN}", "Bearer"],
    ids=["none", "wrong", "longer", "shorter", "basic", "empty"],
)
def test_metrics_refuse_a_missing_or_wrong_token(client, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"ivr_" not in response.data


def test_the_text_parses_and_holds_every_documented_metric(client):
    response = client.get("/metrics", headers=BEARER)
    families = {family.name for family in text_string_to_metric_families(response.get_data(as_text=True))}
    ours = {name for name in families if name.startswith("ivr_")}
    assert ours == {  # counters' families are named without the _total of their samples
        "ivr_calls_started", "ivr_payments", "ivr_payment_declines", "ivr_request_duration_seconds",
        "ivr_worker_passes", "ivr_outbox_due_messages", "ivr_outbox_oldest_due_seconds", "ivr_outbox_failed_messages",
    }
    documented = (ROOT / "docs" / "operations.md").read_text()
    assert [name for name in sorted(ours) if name not in documented] == []


# --- what moves the numbers ------------------------------------------------------------------------


def pay_by_phone(client, payment_method):
    """A member identified by caller ID pays the full balance with ``payment_method``."""
    call = CallActions(client)
    call.start()
    call.silence()
    call.press("1")
    call.press(ZIP)
    call.press("1")
    call.pay(payment_method)
    return call


def test_a_whole_call_moves_the_calls_payments_and_latency_counts(client, make_account, stripe_api):
    make_account()
    before = scrape(client)
    call = pay_by_phone(client, "pm_card_visa")
    assert "Approved:" in call.said()
    after = scrape(client)

    assert moved(before, after, "ivr_calls_started_total", entry="self_service") == 1
    assert moved(before, after, "ivr_calls_started_total", entry="transfer") == 0
    assert moved(before, after, "ivr_payments_total", channel="ivr", outcome="approved") == 1
    assert moved(before, after, "ivr_payments_total", channel="ivr", outcome="declined") == 0
    # One observation per request: the greeting, four menu steps and the <Pay> result.
    count = "ivr_request_duration_seconds_count"
    assert moved(before, after, count, endpoint="voice.incoming_call") == 1
    assert moved(before, after, count, endpoint="voice.step") == 4
    assert moved(before, after, count, endpoint="voice.pay_result") == 1
    # Every observation falls in some bucket up to 2 s or beyond it (+Inf equals the count).
    assert moved(before, after, "ivr_request_duration_seconds_bucket", endpoint="voice.step", le="+Inf") == 4
    assert value(after, "ivr_request_duration_seconds_sum", endpoint="voice.step") > 0


def test_a_decline_counts_under_its_reason(client, make_account, stripe_api):
    make_account()
    before = scrape(client)
    call = pay_by_phone(client, "pm_card_visa_chargeDeclinedInsufficientFunds")
    assert "declined for insufficient funds" in call.said()
    after = scrape(client)

    assert moved(before, after, "ivr_payment_declines_total", reason="insufficient_funds") == 1
    assert moved(before, after, "ivr_payment_declines_total", reason="generic_decline") == 0
    assert moved(before, after, "ivr_payments_total", channel="ivr", outcome="declined") == 1
    assert moved(before, after, "ivr_payments_total", channel="ivr", outcome="approved") == 0


def test_an_unreachable_processor_counts_as_unavailable_not_declined(client, make_account, stripe_api):
    make_account()
    stripe_api.fail_next = 10
    before = scrape(client)
    pay_by_phone(client, "pm_card_visa")
    after = scrape(client)

    assert moved(before, after, "ivr_payments_total", channel="ivr", outcome="unavailable") == 1
    assert moved(before, after, "ivr_payments_total", channel="ivr", outcome="declined") == 0


def test_a_request_no_route_matches_is_timed_as_unmatched(client):
    before = scrape(client)
    assert client.get("/no-such-page").status_code == 404
    after = scrape(client)
    assert moved(before, after, "ivr_request_duration_seconds_count", endpoint="unmatched") == 1


def test_backlog_and_the_oldest_due_age_reflect_queued_outbox_rows(app, client, make_account):
    account_id = make_account()
    now = utcnow()

    def text(key, kind, status="queued", due_in=timedelta(0)):
        return OutboxMessage(dedupe_key=key, kind=kind, to_number="+12025550143", body="…", status=status,
                             next_attempt_at=now + due_in, account_id=account_id)

    with app.app_context():
        agent, _ = create_agent("Robin")
        transfer = Transfer(id="tr_metrics", agent_id=agent.id, account_id=account_id, call_sid="CA1",
                            amount_cents=100, status_callback="https://crm.example.coop/hook")
        db.session.add_all([
            text("receipt:1", "receipt", due_in=-timedelta(minutes=7)),
            text("receipt:2", "receipt", due_in=-timedelta(minutes=1)),
            text("receipt:3", "receipt", status="failed", due_in=-timedelta(hours=3)),
            # Refused by a landline, then sent to the phone on file: the member has it, no failure.
            text("receipt:6", "receipt", status="failed", due_in=-timedelta(hours=3)),
            text("receipt:6" + texts.PHONE_ON_FILE, "receipt", status="sent", due_in=-timedelta(hours=3)),
            text("receipt:4", "receipt", status="sent", due_in=-timedelta(hours=1)),
            text("receipt:5", "receipt", status="sending", due_in=-timedelta(hours=2)),
            text("reminder:1", "reminder", due_in=timedelta(hours=9)),  # held for quiet hours: not due
            transfer,
        ])
        db.session.flush()
        db.session.add(CallbackDelivery(transfer_id=transfer.id, version=1, url=transfer.status_callback, body="{}",
                                        status="queued", next_attempt_at=now - timedelta(seconds=90)))
        db.session.commit()

    samples = scrape(client)

    assert value(samples, "ivr_outbox_due_messages", kind="receipt") == 2
    assert 7 * 60 <= value(samples, "ivr_outbox_oldest_due_seconds", kind="receipt") < 7 * 60 + 60
    assert value(samples, "ivr_outbox_failed_messages", kind="receipt") == 1
    assert value(samples, "ivr_outbox_due_messages", kind="reminder") == 0
    assert value(samples, "ivr_outbox_oldest_due_seconds", kind="reminder") == 0
    assert ("ivr_outbox_due_messages", frozenset({("kind", "reminder")})) in samples  # 0, not missing
    assert value(samples, "ivr_outbox_due_messages", kind="agent_callback") == 1
    assert 90 <= value(samples, "ivr_outbox_oldest_due_seconds", kind="agent_callback") < 90 + 60


# --- the worker and gunicorn's processes -----------------------------------------------------------


def test_worker_passes_count_by_kind_and_outcome(client):
    stop = threading.Event()

    def texts():
        return engine.Report(sent=1)

    def callbacks():
        stop.set()  # the last pass of the first round
        raise RuntimeError("database went away")

    before = scrape(client)
    engine.run_forever({"texts": texts, "callbacks": callbacks}, stop_event=stop, pause=lambda seconds: None)
    after = scrape(client)

    assert moved(before, after, "ivr_worker_passes_total", kind="texts", outcome="ok") == 1
    assert moved(before, after, "ivr_worker_passes_total", kind="texts", outcome="error") == 0
    assert moved(before, after, "ivr_worker_passes_total", kind="callbacks", outcome="error") == 1
    assert moved(before, after, "ivr_worker_passes_total", kind="callbacks", outcome="ok") == 0


def test_serve_makes_a_fresh_metrics_directory_unless_the_operator_chose_one(tmp_path):
    made = multiproc.serve_environment({"PATH": "/usr/bin"})
    try:
        directory = Path(made[multiproc.DIR_VARIABLE])
        assert directory.is_dir() and list(directory.iterdir()) == []
        assert made[multiproc.MADE_FOR_THIS_RUN] == "1" and made["PATH"] == "/usr/bin"
        again = multiproc.serve_environment({})
        assert again[multiproc.DIR_VARIABLE] != str(directory)  # a new one every run
        Path(again[multiproc.DIR_VARIABLE]).rmdir()
    finally:
        directory.rmdir()

    chosen = str(tmp_path / "metrics")
    kept = multiproc.serve_environment({multiproc.DIR_VARIABLE: chosen, multiproc.MADE_FOR_THIS_RUN: "1"})
    assert kept[multiproc.DIR_VARIABLE] == chosen
    assert multiproc.MADE_FOR_THIS_RUN not in kept  # gunicorn must never remove the operator's directory


def scrape_live(url: str) -> dict[tuple[str, frozenset], float]:
    """``scrape`` over a new connection to a running ``ivr serve`` (any of its workers may answer)."""
    request = urllib.request.Request(f"{url}/metrics", headers=BEARER)
    with urllib.request.urlopen(request, timeout=10) as response:
        return samples_in(response.read().decode())


def counting_processes(directory: Path) -> set[str]:
    """The processes that have timed a request: prometheus-client's histogram file of each, by pid."""
    return {path.stem.rsplit("_", 1)[1] for path in directory.glob("histogram_*.db")}


@pytest.mark.e2e
def test_serve_with_two_workers_adds_up_both_workers_counts(live_env):
    env = {**live_env, "METRICS_TOKEN": METRICS_TOKEN}
    env.pop(multiproc.DIR_VARIABLE, None)  # ivr serve makes its own

    with LiveServer(env, workers=2) as server:
        environ = Path(f"/proc/{server.process.pid}/environ").read_bytes().split(b"\0")
        directory = Path(dict(item.decode().split("=", 1) for item in environ if b"=" in item)[multiproc.DIR_VARIABLE])
        before = scrape_live(server.url)
        call = run_ivr("call", "--url", server.url, "--from", "+12025550143", "--keys", "_ 1 20011 1",
                       "--card", "4242424242424242,12/30,123,30301", env=server.env)
        assert call.returncode == 0 and "Approved:" in call.stdout, call.stdout + call.stderr
        # Parallel requests on new connections until both workers have answered some.
        sent = 0
        with ThreadPoolExecutor(max_workers=16) as pool:
            for _ in range(50):
                statuses = list(pool.map(lambda _: urllib.request.urlopen(f"{server.url}/healthz").status, range(16)))
                assert statuses == [200] * 16
                sent += 16
                if len(counting_processes(directory)) >= 2:
                    break
        assert len(counting_processes(directory)) == 2, "one worker answered every request"
        scrapes = [scrape_live(server.url) for _ in range(8)]

    for after in scrapes:  # whichever worker answered the scrape, it reports both workers' counts
        assert moved(before, after, "ivr_request_duration_seconds_count", endpoint="health.healthz") == sent
        assert moved(before, after, "ivr_calls_started_total", entry="self_service") == 1
        assert moved(before, after, "ivr_payments_total", channel="ivr", outcome="approved") == 1
    assert not directory.exists()  # the directory serve made is gone with the server
