"""Load benchmark: complete simulated calls against ``ivr serve`` on PostgreSQL, then a bare baseline.

    .venv/bin/python bench/call_load.py [--calls-concurrent 50] [--seconds 20] [--workers 4]

Each virtual caller places whole calls (greeting, caller-ID offer, last four, amount, <Pay> result,
confirmation, status callback), every request signed like Twilio's, with the sandbox gateway so no
network is involved. The same request mix is also sent to a bare Flask app returning fixed TwiML
under the same gunicorn settings. Both servers run side by side and the load alternates between
them in rounds (``--rounds``), so a slow spell of a shared machine weighs on both alike. Prints
per-webhook p50/p99, calls per second and the ratio.
"""

import argparse
import http.client
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import sqlalchemy as sa
from lxml import etree

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.twilio.adapter import compute_signature  # noqa: E402

TOKEN = "bench-auth-token"
CALL_WEBHOOKS = 11  # webhooks in one simulated call (each followed by the think time)
ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def create_database(name: str) -> str:
    """An empty PostgreSQL database ``name`` (an earlier run's is dropped first); returns its URL."""
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def member_phone(i: int) -> str:
    """The phone on file of the ``i``-th bench member (the caller ID its calls come from)."""
    return f"+1202{5550000 + i:07d}"[:12]


def add_members(url: str, accounts: int) -> None:
    """``accounts`` members in a migrated database, each with its own phone and a balance no run uses up."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO accounts (account_number, name, phone, balance_cents, past_due_cents, due_date,"
                " language, status, created_at, updated_at) VALUES (:n, 'Bench Member', :p, 100000000, 0,"
                " '2026-12-05', 'en', 'active', now(), now())"
            ),
            [{"n": f"9{i:07d}", "p": member_phone(i)} for i in range(accounts)],
        )
    engine.dispose()


def prepare_database(accounts: int) -> str:
    """A fresh PostgreSQL database with migrations applied and ``accounts`` members."""
    url = create_database("ivr_bench")
    from ivr.migrate import upgrade

    upgrade(url)
    add_members(url, accounts)
    return url


def start_server(args: list[str], env: dict[str, str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server on port {port} did not start")


class RunOver(Exception):
    """The measuring window closed in the middle of a call."""


class Caller:
    """One virtual phone: places whole calls in a loop, recording latency per webhook."""

    def __init__(self, port: int, base: str, phone: str, last4: str, bare: bool, results, stop, think: float):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        self.base, self.phone, self.last4, self.bare = base, phone, last4, bare
        self.results, self.stop = results, stop
        self.calls = 0
        self.errors = 0
        self.think = think

    def post(self, kind: str, url: str, params: dict[str, str]) -> etree._Element | None:
        body = urllib.parse.urlencode(params)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": compute_signature(url, params, TOKEN),
        }
        path = url[len(self.base):]
        if self.stop.is_set():
            # The run is over: hang up instead of firing the rest of the call with no pauses,
            # which would measure a burst no real caller makes.
            raise RunOver
        start = time.perf_counter()
        self.conn.request("POST", path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        self.results[kind].append((time.perf_counter() - start) * 1000)
        if self.think:
            # The caller listens to the prompt before the next webhook; jitter keeps callers out of step.
            self.stop.wait(self.think * random.uniform(0.5, 1.5))
        if response.status >= 300:
            self.errors += 1
            return None
        return etree.fromstring(data) if data.startswith(b"<?xml") else None

    def one_call(self, sid: str | None = None) -> None:
        """Place one whole call (CallSid ``sid``, else a new one)."""
        sid = sid or "CA" + uuid.uuid4().hex
        common = {"CallSid": sid, "AccountSid": "AC" + "b" * 32, "From": self.phone, "To": "+18005550100",
                  "Direction": "inbound", "CallStatus": "in-progress", "ApiVersion": "2010-04-01"}
        base = self.base

        def action(root, xpath, fallback):
            if self.bare or root is None:
                return fallback
            found = root.xpath(xpath)
            return found[0] if found else fallback

        step = f"{base}/twilio/voice/step?seq=1"
        root = self.post("voice", f"{base}/twilio/voice", common)
        root = self.post("step", action(root, "./Redirect/text()", step), common)  # silence: English
        root = self.post("step", action(root, "./Gather/@action", step), {**common, "Digits": "1"})
        root = self.post("step", action(root, "./Gather/@action", step), {**common, "Digits": self.last4})
        root = self.post("step", action(root, "./Gather/@action", step), {**common, "Digits": "2"})
        root = self.post("step", action(root, "./Gather/@action", step), {**common, "Digits": "1"})
        root = self.post("step", action(root, "./Gather/@action", step), {**common, "Digits": "1"})
        pay = {**common, "Result": "success", "PaymentToken": "pm_card_visa", "PaymentMethod": "credit-card",
               "PaymentCardNumber": "xxxxxxxxxxxx4242", "PaymentCardType": "visa", "ExpirationDate": "1229",
               "SecurityCode": "***", "PaymentCardPostalCode": "30301"}
        root = self.post("pay", action(root, "./Pay/@action", f"{base}/twilio/voice/pay?seq=8"), pay)
        if not self.bare and (root is None or "approved" not in "".join(root.xpath("//Say/text()"))):
            self.errors += 1
        self.post("step", action(root, "./Redirect/text()", step), common)
        self.post("status", f"{base}/twilio/voice/status", {**common, "CallStatus": "completed"})
        self.calls += 1

    def run(self) -> None:
        # Independent callers do not all dial at the same instant: spread the first calls over one
        # call's length, so the measured window is a steady state rather than 50 calls in lockstep.
        self.stop.wait(random.uniform(0, self.think * CALL_WEBHOOKS))
        while not self.stop.is_set():
            try:
                self.one_call()
            except RunOver:
                break
            except Exception:  # a broken connection counts as an error; reconnect and go on
                self.errors += 1
                self.conn.close()


def _drive_share(port: int, base: str, numbers: list[int], bare: bool, think: float, warmup: float,
                 seconds: float) -> tuple[dict[str, list[float]], int, int, float]:
    """One load process: a thread per caller in ``numbers``; returns its latencies and counts."""
    results: dict[str, list[float]] = defaultdict(list)
    stop = threading.Event()
    callers = []
    for i in numbers:
        phone = member_phone(i)
        callers.append(Caller(port, base, phone, phone[-4:], bare, results, stop, think))
    threads = [threading.Thread(target=c.run, daemon=True) for c in callers]
    for t in threads:
        t.start()
    # Warm-up: each server process compiles its SQL and loads its prompts on first use; not measured.
    time.sleep(warmup)
    for c in callers:
        c.calls = c.errors = 0
    results.clear()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    elapsed = time.perf_counter() - started
    return dict(results), sum(c.calls for c in callers), sum(c.errors for c in callers), elapsed


def drive(port: int, base: str, concurrency: int, seconds: float, bare: bool, think: float,
          warmup: float | None = None, processes: int = 5):
    """Run ``concurrency`` callers spread over ``processes`` load processes (one GIL each, so the
    load generator's own thread scheduling does not show up as server latency)."""
    if warmup is None:  # long enough for every caller to be in the middle of a call
        warmup = 5.0 + think * CALL_WEBHOOKS * 1.5
    shares = [list(range(concurrency))[k::processes] for k in range(processes)]
    shares = [share for share in shares if share]
    results: dict[str, list[float]] = defaultdict(list)
    calls = errors = 0
    elapsed = seconds
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=len(shares), mp_context=context) as pool:
        futures = [pool.submit(_drive_share, port, base, share, bare, think, warmup, seconds) for share in shares]
        for future in futures:
            part, part_calls, part_errors, part_elapsed = future.result()
            for kind, values in part.items():
                results[kind] += values
            calls += part_calls
            errors += part_errors
            elapsed = max(elapsed, part_elapsed)
    return results, calls / elapsed, calls, errors


def combine(runs: list) -> tuple[dict[str, list[float]], float, int, int]:
    """The rounds of one server as a single run: latencies pooled, calls per second averaged."""
    results: dict[str, list[float]] = defaultdict(list)
    for part, _, _, _ in runs:
        for kind, values in part.items():
            results[kind] += values
    calls = sum(run[2] for run in runs)
    errors = sum(run[3] for run in runs)
    return results, statistics.mean(run[1] for run in runs), calls, errors


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def report(title: str, results, cps: float, calls: int, errors: int) -> dict[str, float]:
    print(f"\n{title}: {calls} calls, {cps:.1f} calls/s, {errors} errors")
    print(f"  {'webhook':<8} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8}")
    everything = []
    for kind in ("voice", "step", "pay", "status"):
        values = results.get(kind, [])
        if values:
            everything += values
            print(f"  {kind:<8} {len(values):>9} {pct(values, 50):>8.1f} {pct(values, 99):>8.1f}")
    print(f"  {'all':<8} {len(everything):>9} {pct(everything, 50):>8.1f} {pct(everything, 99):>8.1f}")
    return {"p50": statistics.median(everything), "p99": pct(everything, 99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls-concurrent", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30, help="measured seconds per server, over all rounds")
    parser.add_argument("--rounds", type=int, default=3, help="alternations between the two servers")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--load-processes", type=int, default=5, help="processes the callers are spread over")
    parser.add_argument("--think", type=float, default=1.0,
                        help="mean seconds a caller listens between webhooks (0: back-to-back saturation)")
    args = parser.parse_args()

    url = prepare_database(args.calls_concurrent)
    port, bare_port = 5791, 5792
    base = f"http://127.0.0.1:{port}"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "STRIPE_"))},
           "DATABASE_URL": url, "PUBLIC_BASE_URL": base, "TWILIO_AUTH_TOKEN": TOKEN,
           "PAYMENT_GATEWAY": "sandbox", "SMS_SENDER": "sandbox"}
    settings = ["--workers", str(args.workers), "--threads", str(args.threads)]
    ivr = start_server([sys.executable, "-m", "ivr.cli", "serve", "--port", str(port), *settings, "--no-access-log"], env, port)
    bare = start_server(
        [sys.executable, "-m", "gunicorn", "bench.bare_app:app", "--bind", f"127.0.0.1:{bare_port}",
         "--worker-class", "gthread", *settings, "--timeout", "20"], env, bare_port)
    window = args.seconds / args.rounds
    runs: dict[str, list] = {"ours": [], "bare": []}
    try:
        for _ in range(args.rounds):
            runs["ours"].append(drive(port, base, args.calls_concurrent, window, False, args.think,
                                      processes=args.load_processes))
            runs["bare"].append(drive(bare_port, f"http://127.0.0.1:{bare_port}", args.calls_concurrent, window,
                                      True, args.think, processes=args.load_processes))
    finally:
        for proc in (ivr, bare):
            proc.terminate()
            proc.wait()
    ours = report("ivr serve (PostgreSQL, sandbox gateway)", *combine(runs["ours"]))
    theirs = report("bare Flask, fixed TwiML (same gunicorn settings)", *combine(runs["bare"]))
    ratio = ours["p50"] / theirs["p50"]
    print(f"\n{args.calls_concurrent} concurrent calls, think time {args.think:g} s, gunicorn {args.workers} workers x "
          f"{args.threads} threads, {args.rounds} rounds of {window:g} s per server")
    print(f"ratio of p50 (ours / bare): {ratio:.2f}x   target: p99 < 50 ms ({ours['p99']:.1f}), p50 ratio <= 3x")


if __name__ == "__main__":
    main()
