"""Several ``ivr serve`` behind nginx on one PostgreSQL, one killed mid-run: is every call completed, charged and texted once?

    .venv/bin/python bench/cluster.py [--rate 3] [--seconds 60] [--servers 3] [--workers 2]

What runs, all on loopback (docs/deploy.md, "The cluster benchmark"):

- a fresh PostgreSQL database ``ivr_cluster``, brought up to date by ``ivr db upgrade`` as a
  release would, holding ``--accounts`` members;
- ``bench/stand_ins.py``: Stripe's PaymentIntents and Twilio's Messages, counting every charge and
  every text where it arrives (each server has its own Stripe path, so a charge is known by the
  server that made it);
- ``--servers`` ``ivr serve`` processes (``--workers`` gunicorn processes each) and ``--worker-processes``
  ``ivr worker`` processes sending receipts through the Twilio stand-in;
- Debian's nginx with the deployment example's configuration (``deploy/nginx/ivr.conf``'s upstream
  settings with these servers' ports, ``deploy/nginx/ivr-locations.conf`` unchanged), plain http;
- calls arriving open-loop (Poisson, ``--rate`` a second for ``--seconds``), each a whole call of
  ``bench/call_load.py``'s callers through nginx, with ``--think`` seconds of listening between
  webhooks. At ``--kill-at`` the next charge server 1 makes is held by the Stripe stand-in after
  the money has moved, and server 1 (gunicorn's master and workers) gets SIGKILL while that call
  waits for the answer: a crash between the charge and its commit. Server 1 starts again at
  ``--restart-at``.

Prints calls started, completed and failed, payments, Stripe's charges, receipts queued and sent,
what nginx did, and checks: no call failed, one charge and one receipt per payment (exit 1 if not).
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.call_load import TOKEN, Caller, add_members, create_database, member_phone, pct  # noqa: E402

DATABASE = "ivr_cluster"
NGINX_DIR = ROOT / "deploy" / "nginx"
# deploy/nginx/ivr.conf: the bench takes what is above this line and leaves the rest (TLS) out.
BENCH_LINE = "# --- bench/cluster.py uses everything above this line"
ACCOUNT_SID = "AC" + "c" * 32
FROM_NUMBER = "+18005550100"
# Twilio waits this long for a webhook's answer, then gives the caller an error and hangs up.
TWILIO_WAITS_MS = 15_000


# --- nginx ------------------------------------------------------------------------------------


def nginx_config(server_ports: list[int], listen_port: int, run_dir: Path) -> str:
    """nginx.conf for the bench: the deployment example with loopback servers and no TLS.

    From ``deploy/nginx/ivr.conf`` everything above the bench line (the log format and the
    upstream: keepalive, keepalive_timeout, the failure settings), with one server line per port
    in place of the example's, each with the example's parameters; ``ivr-locations.conf`` is
    included as it is. Only the addresses, the plain-http listener and the file paths differ.
    """
    example = (NGINX_DIR / "ivr.conf").read_text()
    shared, found, _ = example.partition(BENCH_LINE)
    if not found:
        raise SystemExit(f"{NGINX_DIR / 'ivr.conf'} has lost its bench line ({BENCH_LINE!r})")
    lines = shared.splitlines()
    at = [i for i, line in enumerate(lines) if re.match(r"\s*server\s+\S+", line)]
    if not at or at != list(range(at[0], at[-1] + 1)):
        raise SystemExit("deploy/nginx/ivr.conf: expected the upstream's server lines together")
    indent, params = re.match(r"(\s*)server\s+\S+?((?:\s+[^;]+)?);", lines[at[0]]).groups()
    ours = [f"{indent}server 127.0.0.1:{port}{params};" for port in server_ports]
    shared = "\n".join(lines[: at[0]] + ours + lines[at[-1] + 1 :])
    temp = run_dir / "nginx-temp"  # nginx makes the directories (nginx-temp-body, …) itself
    return f"""# Written by bench/cluster.py from deploy/nginx/ivr.conf (above its bench line) and
# deploy/nginx/ivr-locations.conf: only the server addresses, the listener (plain http on loopback,
# no TLS) and the paths differ from the deployment example.
worker_processes 2;
pid {run_dir}/nginx.pid;
events {{
    worker_connections 1024;
}}
http {{
    client_body_temp_path {temp}-body;
    proxy_temp_path {temp}-proxy;
    fastcgi_temp_path {temp}-fastcgi;
    uwsgi_temp_path {temp}-uwsgi;
    scgi_temp_path {temp}-scgi;

{shared}

    server {{
        listen 127.0.0.1:{listen_port};
        access_log {run_dir}/nginx-access.log ivr_upstream;
        error_log {run_dir}/nginx-error.log warn;
        include {NGINX_DIR / "ivr-locations.conf"};
    }}
}}
"""


def nginx_command(run_dir: Path, *extra: str) -> list[str]:
    """Debian's nginx on the bench's configuration (``extra``: ``-t`` to check it)."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    return [nginx, "-p", str(run_dir), "-c", str(run_dir / "nginx.conf"), "-e", str(run_dir / "nginx-error.log"), *extra]


# --- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A child in its own process group, so SIGKILL reaches gunicorn's master and workers at once."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], run_dir: Path) -> None:
        self.name = name
        self.log = open(run_dir / f"{name}.log", "a")
        self.proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def kill(self) -> None:
        """SIGKILL to the whole group: nothing is finished, nothing is said."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
            except ProcessLookupError:
                pass
        self.log.close()


def wait_http(port: int, path: str, process: Process, seconds: float = 90) -> None:
    """Until ``GET path`` on ``port`` answers 200 (or the process exits: its log says why)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise SystemExit(f"{process.name} exited; see {process.log.name}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{process.name} did not answer on port {port}; see {process.log.name}")


def stand_in(port: int, method: str, path: str) -> dict:
    """Ask the stand-ins' control endpoints."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


# --- the calls --------------------------------------------------------------------------------


class Load:
    """Open-loop arrivals: each call its own thread and connection, started at Poisson times."""

    def __init__(self, port: int, base: str, accounts: int, think: float) -> None:
        self.port, self.base, self.accounts, self.think = port, base, accounts, think
        self.results: dict[str, list[float]] = defaultdict(list)
        self.outcomes: dict[str, str] = {}  # CallSid -> completed | failed: reason
        self.threads: list[threading.Thread] = []
        self.never = threading.Event()  # a started call always runs to its end
        self.lock = threading.Lock()

    def call(self, number: int) -> None:
        sid = "CA" + uuid.uuid4().hex
        phone = member_phone(number % self.accounts)
        timings: dict[str, list[float]] = defaultdict(list)
        caller = Caller(self.port, self.base, phone, phone[-4:], False, timings, self.never, self.think)
        try:
            caller.one_call(sid)
            # An error is an answer other than 2xx or a <Pay> result that was not "approved".
            outcome = "completed" if caller.calls == 1 and not caller.errors else f"failed: {caller.errors} errors"
        except Exception as exc:  # a broken connection or a timeout ends the call: failed
            outcome = f"failed: {type(exc).__name__}"
        finally:
            caller.conn.close()
        slowest = max((ms for values in timings.values() for ms in values), default=0.0)
        if outcome == "completed" and slowest >= TWILIO_WAITS_MS:
            outcome = "failed: an answer took 15 s or more (Twilio would have hung up)"
        with self.lock:
            self.outcomes[sid] = outcome
            for kind, values in timings.items():
                self.results[kind] += values

    def run(self, rate: float, seconds: float) -> int:
        """Start calls at ``rate`` a second (exponential gaps) for ``seconds``; returns how many."""
        start = time.monotonic()
        at, number = 0.0, 0
        while True:
            at += random.expovariate(rate)
            if at >= seconds:
                return number
            time.sleep(max(0.0, start + at - time.monotonic()))
            thread = threading.Thread(target=self.call, args=(number,), daemon=True)
            thread.start()
            self.threads.append(thread)
            number += 1

    def wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        for thread in self.threads:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))


def sample_connections(url: str, stop: threading.Event, peak: list[int]) -> None:
    """The most connections the database had at once, sampled every half second."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = :db")
    while not stop.wait(0.5):
        try:
            with engine.connect() as conn:
                peak[0] = max(peak[0], conn.scalar(query, {"db": DATABASE}) - 1)  # not this sampler's own
        except sa.exc.OperationalError:
            pass
    engine.dispose()


# --- what happened ----------------------------------------------------------------------------


def nginx_figures(run_dir: Path) -> dict[str, int]:
    """Requests nginx answered, those it answered with an error, and those it sent to a second server."""
    figures: Counter[str] = Counter()
    pattern = re.compile(r'"[^"]*" (\d{3}) .* upstream=(.*) status=(.*) time=')
    for line in (run_dir / "nginx-access.log").read_text().splitlines():
        found = pattern.search(line)
        if not found:
            continue
        figures["requests"] += 1
        if not found.group(1).startswith("2"):
            figures["errors"] += 1
        if "," in found.group(2):
            figures["retried"] += 1
    for line in (run_dir / "nginx-error.log").read_text().splitlines():
        if "prematurely closed" in line or "reset by peer" in line:
            figures["cut_off"] += 1
        elif "Connection refused" in line:
            figures["refused"] += 1
        elif "timed out" in line:
            figures["timed_out"] += 1
    return dict(figures)


def database_figures(url: str) -> tuple[list[dict], list[dict]]:
    """Every payment, and every receipt in the outbox."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        payments = [dict(row._mapping) for row in conn.execute(sa.text(
            "SELECT id, call_sid, status, stripe_payment_intent, confirmation_number FROM payments"))]
        receipts = [dict(row._mapping) for row in conn.execute(sa.text(
            "SELECT payment_id, status FROM outbox_messages WHERE kind = 'receipt'"))]
    engine.dispose()
    return payments, receipts


def wait_for_receipts(url: str, seconds: float) -> None:
    """Until the workers have nothing queued or being sent (or ``seconds`` pass)."""
    engine = sa.create_engine(url)
    query = sa.text("SELECT count(*) FROM outbox_messages WHERE status IN ('queued', 'sending')")
    deadline = time.monotonic() + seconds
    with engine.connect() as conn:
        while time.monotonic() < deadline and conn.execute(query).scalar():
            conn.commit()
            time.sleep(0.5)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=3.0, help="calls arriving per second (Poisson)")
    parser.add_argument("--seconds", type=float, default=60, help="seconds during which calls arrive")
    parser.add_argument("--think", type=float, default=1.0, help="mean seconds a caller listens between webhooks")
    parser.add_argument("--servers", type=int, default=3, help="ivr serve processes behind nginx")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn processes of each ivr serve")
    parser.add_argument("--threads", type=int, default=4, help="threads of each gunicorn process")
    parser.add_argument("--worker-processes", type=int, default=2, help="ivr worker processes")
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--kill-at", type=float, help="seconds into the run server 1 is killed (default: 40%%)")
    parser.add_argument("--restart-at", type=float, help="seconds into the run server 1 restarts (default: 70%%)")
    parser.add_argument("--stripe-latency", default="0.2,0.6", help="seconds a charge takes at the stand-in: low,high")
    parser.add_argument("--keep", action="store_true", help="keep the run directory (logs, nginx.conf)")
    args = parser.parse_args()
    kill_at = args.seconds * 0.4 if args.kill_at is None else args.kill_at
    restart_at = args.seconds * 0.7 if args.restart_at is None else args.restart_at
    if not shutil.which("nginx") and not os.path.exists("/usr/sbin/nginx"):
        raise SystemExit("nginx is not installed: apt-get install nginx (Debian's package)")

    run_dir = Path(tempfile.mkdtemp(prefix="ivr-cluster-"))
    run_dir.chmod(0o755)  # nginx's worker processes (not root) reach their temporary directories in it
    url = create_database(DATABASE)
    nginx_port, stand_in_port = free_port(), free_port()
    server_ports = [free_port() for _ in range(args.servers)]
    base = f"http://127.0.0.1:{nginx_port}"
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("TWILIO_", "STRIPE_", "PROMETHEUS_"))}
    env.update(
        DATABASE_URL=url, PUBLIC_BASE_URL=base, PYTHONUNBUFFERED="1",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=TOKEN, TWILIO_FROM_NUMBER=FROM_NUMBER,
        TWILIO_API_BASE=f"http://127.0.0.1:{stand_in_port}", SMS_SENDER="twilio", SMS_RATE_PER_SECOND="50",
        PAYMENT_GATEWAY="stripe", STRIPE_SECRET_KEY="sk_test_bench_cluster",
        STRIPE_API_BASE=f"http://127.0.0.1:{stand_in_port}",
        # nginx is the one proxy in front; the app keeps idle connections longer than nginx does.
        TRUSTED_PROXIES="1", KEEPALIVE_SECONDS="75",
    )
    ivr = [sys.executable, "-m", "ivr.cli"]
    upgrade = subprocess.run([*ivr, "db", "upgrade"], env=env, cwd=ROOT, capture_output=True, text=True)
    if upgrade.returncode:
        raise SystemExit(f"ivr db upgrade failed:\n{upgrade.stderr}")
    add_members(url, args.accounts)

    processes: list[Process] = []
    servers: list[Process] = []

    def start_server(i: int) -> Process:
        # Each server has its own path at the Stripe stand-in, so a charge is known by its server.
        server_env = {**env, "STRIPE_API_BASE": f"http://127.0.0.1:{stand_in_port}/s{i + 1}"}
        server = Process(f"serve-{i + 1}", [*ivr, "serve", "--host", "127.0.0.1", "--port", str(server_ports[i]),
                                            "--workers", str(args.workers), "--threads", str(args.threads),
                                            "--no-access-log"], server_env, run_dir)
        processes.append(server)
        wait_http(server_ports[i], "/healthz", server)
        return server

    stop_sampling = threading.Event()
    peak_connections = [0]
    events: list[str] = []
    load = Load(nginx_port, base, args.accounts, args.think)
    try:
        stand_ins = Process("stand-ins", [sys.executable, str(ROOT / "bench" / "stand_ins.py"), "--port",
                                          str(stand_in_port), "--stripe-latency", args.stripe_latency], env, run_dir)
        processes.append(stand_ins)
        wait_http(stand_in_port, "/_held", stand_ins)
        servers = [start_server(i) for i in range(args.servers)]
        for i in range(args.worker_processes):
            processes.append(Process(f"worker-{i + 1}", [*ivr, "worker", "--poll", "1"], env, run_dir))
        (run_dir / "nginx.conf").write_text(nginx_config(server_ports, nginx_port, run_dir))
        check = subprocess.run(nginx_command(run_dir, "-t", "-q"), capture_output=True, text=True)
        if check.returncode:
            raise SystemExit(f"nginx -t refused the configuration:\n{check.stderr}")
        nginx = Process("nginx", nginx_command(run_dir, "-g", "daemon off;"), env, run_dir)
        processes.append(nginx)
        wait_http(nginx_port, "/healthz", nginx)
        threading.Thread(target=sample_connections, args=(url, stop_sampling, peak_connections), daemon=True).start()

        started = time.monotonic()

        def kill_and_restart() -> None:
            time.sleep(max(0.0, started + kill_at - time.monotonic()))
            # The next charge server 1 makes takes the money and then waits: server 1 dies before
            # it hears the answer, with the call's <Pay> result in the middle of its request.
            stand_in(stand_in_port, "POST", "/_hold?server=s1")
            held, deadline = None, time.monotonic() + 20
            while held is None and time.monotonic() < deadline:
                held = stand_in(stand_in_port, "GET", "/_held")["held"]
                time.sleep(0.02)
            servers[0].kill()
            stand_in(stand_in_port, "POST", "/_release")
            when = time.monotonic() - started
            if held:
                events.append(f"{when:5.1f} s  server 1 killed (SIGKILL) after Stripe charged call {held['call_sid']}, "
                              "before it heard the answer")
                events.append(f"held:{held['call_sid']}")
            else:
                events.append(f"{when:5.1f} s  server 1 killed (SIGKILL); no charge of it was held within 20 s")
            time.sleep(max(0.0, started + restart_at - time.monotonic()))
            events.append(f"{time.monotonic() - started:5.1f} s  server 1 started again")
            servers[0] = start_server(0)
            events.append(f"{time.monotonic() - started:5.1f} s  server 1 answers /healthz")

        chaos = threading.Thread(target=kill_and_restart, daemon=True)
        chaos.start()
        calls = load.run(args.rate, args.seconds)
        chaos.join(timeout=max(0.0, started + restart_at - time.monotonic()) + 120)  # a slow restart included
        load.wait(120)
        wait_for_receipts(url, 60)
        stop_sampling.set()
        counts = stand_in(stand_in_port, "GET", "/_counts")
    finally:
        stop_sampling.set()
        for process in reversed(processes):
            process.stop(signal.SIGINT if process.name.startswith("worker") else signal.SIGTERM)

    payments, receipts = database_figures(url)
    ok = report(args, calls, load, payments, receipts, counts, nginx_figures(run_dir), events, peak_connections[0])
    if args.keep or not ok:
        print(f"\nlogs and nginx.conf: {run_dir}")
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
    if not ok:
        raise SystemExit(1)


def report(args, calls: int, load: Load, payments: list[dict], receipts: list[dict], counts: dict,
           nginx: dict[str, int], events: list[str], peak_connections: int) -> bool:
    """Print what happened and whether each target was met; True when every one was."""
    completed = sum(1 for outcome in load.outcomes.values() if outcome == "completed")
    failures = Counter(outcome for outcome in load.outcomes.values() if outcome != "completed")
    unfinished = calls - len(load.outcomes)
    approved = [p for p in payments if p["status"] == "succeeded"]
    charges = [i for i in counts["intents"] if i["status"] == "succeeded"]
    charges_per_payment = Counter(i["payment_id"] for i in charges)
    approved_ids = {str(p["id"]) for p in approved}
    intent_of = {str(p["id"]): p["stripe_payment_intent"] for p in approved}
    texts = counts["messages"]
    texts_per_payment = Counter(p["confirmation_number"] for p in approved for t in texts
                                if p["confirmation_number"] and p["confirmation_number"] in t["body"])
    by_server = Counter(i["server"] for i in charges)

    print(f"\n{args.servers} x ivr serve ({args.workers} processes x {args.threads} threads) behind nginx, "
          f"{args.worker_processes} x ivr worker, PostgreSQL; calls arriving at {args.rate:g}/s for {args.seconds:g} s, "
          f"think time {args.think:g} s")
    for event in events:
        if not event.startswith("held:"):
            print(f"  {event}")
    print(f"\ncalls       started {calls}, completed {completed}, failed {sum(failures.values())}"
          + (f", unfinished {unfinished}" if unfinished else ""))
    for reason, n in failures.most_common():
        print(f"              {n} {reason}")
    print(f"payments    approved {len(approved)} (database), {len(payments) - len(approved)} not approved")
    print(f"charges     {len(charges)} at the Stripe stand-in ("
          + ", ".join(f"server {s[1:]}: {n}" for s, n in sorted(by_server.items()))
          + f"); {counts['replays']} answered again from the idempotency key, {counts['conflicts']} refused as in use")
    print(f"receipts    queued {len(receipts)}, sent {sum(1 for r in receipts if r['status'] == 'sent')} (database); "
          f"texts at the Twilio stand-in {len(texts)}")
    print(f"nginx       {nginx.get('requests', 0)} requests, {nginx.get('errors', 0)} answered with an error; "
          f"{nginx.get('retried', 0)} sent to another server after a failure "
          f"({nginx.get('cut_off', 0)} cut off mid-request, {nginx.get('refused', 0)} connections refused, "
          f"{nginx.get('timed_out', 0)} timed out)")
    print(f"PostgreSQL  at most {peak_connections} connections at once")

    print(f"\n  {'webhook':<8} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for kind in ("voice", "step", "pay", "status"):
        values = load.results.get(kind, [])
        if values:
            print(f"  {kind:<8} {len(values):>9} {pct(values, 50):>8.1f} {pct(values, 99):>8.1f} {max(values):>8.1f}")

    held = next((e[len("held:"):] for e in events if e.startswith("held:")), None)
    checks = [
        ("every call completed", completed == calls and calls > 0),
        ("one approved payment per completed call", len(approved) == completed
         and len({p["call_sid"] for p in approved}) == len(approved)),
        ("one charge per payment, and it is the payment's", charges_per_payment.keys() == approved_ids
         and set(charges_per_payment.values()) == {1}
         and all(intent_of[i["payment_id"]] == i["id"] for i in charges)),
        ("one receipt per payment, sent", len(receipts) == len(approved)
         and all(r["status"] == "sent" for r in receipts)
         and len(texts) == len(approved) and texts_per_payment.keys() == {p["confirmation_number"] for p in approved}
         and set(texts_per_payment.values()) <= {1}),
    ]
    if held:
        checks.append((f"the call cut off mid-charge ({held[:10]}…) completed, charged once",
                       load.outcomes.get(held) == "completed"
                       and sum(1 for i in charges if i["call_sid"] == held) == 1))
    print()
    for name, ok in checks:
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    return all(ok for _, ok in checks)


if __name__ == "__main__":
    main()
