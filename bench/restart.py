"""Restart to first answer: ``ivr serve`` stopped and started again, as ``systemctl restart ivr-web`` does.

    .venv/bin/python bench/restart.py [--rounds 3] [--workers 2] [--database-url URL]

For each mode (gunicorn's ``--preload`` on and off, alternating so both see the same machine), a
server is started and answering; then it is sent SIGTERM and a new one started on the same port
once the old one has exited. Printed per mode (median of the rounds): seconds from SIGTERM to the
old server's exit, from the new start to its first ``/healthz`` 200, and the first signed Twilio
webhook's own time in that new server (the first request a worker answers). Without
``--database-url`` a migrated SQLite file in a temporary directory is used.
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.config import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN  # noqa: E402
from ivr.twilio.adapter import compute_signature  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(env: dict[str, str], port: int, workers: int, preload: bool) -> subprocess.Popen:
    flag = "--preload" if preload else "--no-preload"
    return subprocess.Popen([sys.executable, "-m", "ivr.cli", "serve", "--port", str(port), "--workers", str(workers),
                             "--no-access-log", flag], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def first_answer(base: str, server: subprocess.Popen, timeout: float = 120) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if server.poll() is not None:
            raise SystemExit("the server stopped before answering")
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                return time.perf_counter() - started
        except requests.RequestException:
            pass
        time.sleep(0.01)
    raise SystemExit(f"no answer within {timeout} s")


def first_webhook(base: str) -> float:
    """A caller's first webhook (a new call), signed as Twilio signs it; its seconds."""
    params = {"AccountSid": DEV_ACCOUNT_SID, "CallSid": "CA" + os.urandom(16).hex(), "From": "+12025550111",
              "To": "+15005550006", "CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01"}
    url = f"{base}/twilio/voice"
    started = time.perf_counter()
    reply = requests.post(url, data=params, timeout=30,
                          headers={"X-Twilio-Signature": compute_signature(url, params, DEV_AUTH_TOKEN)})
    took = time.perf_counter() - started
    if reply.status_code != 200:
        raise SystemExit(f"the first webhook got {reply.status_code}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    url = args.database_url or f"sqlite:///{Path(tmp.name) / 'restart.sqlite3'}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "STRIPE_"))}
    env.update(DATABASE_URL=url, PAYMENT_GATEWAY="sandbox", SMS_SENDER="sandbox", PUBLIC_BASE_URL=base)
    subprocess.run([sys.executable, "-m", "ivr.cli", "db", "upgrade"], env=env, cwd=ROOT, check=True,
                   capture_output=True)
    figures: dict[bool, list[tuple[float, float, float]]] = {True: [], False: []}
    for _ in range(args.rounds):
        for preload in (False, True):
            server = start(env, port, args.workers, preload)
            first_answer(base, server)
            stopping = time.perf_counter()
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
            stopped = time.perf_counter() - stopping
            server = start(env, port, args.workers, preload)
            answered = first_answer(base, server)
            webhook = first_webhook(base)
            figures[preload].append((stopped, answered, webhook))
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
    print(f"ivr serve restart, {args.workers} workers, {args.rounds} rounds each, database {url.split(':')[0]}; "
          f"medians in seconds")
    print(f"{'mode':<12} {'stop':>6} {'start→/healthz':>15} {'first webhook':>14} {'restart→answer':>15}")
    for preload in (False, True):
        stop, answer, hook = (statistics.median(x[i] for x in figures[preload]) for i in range(3))
        print(f"{'preload' if preload else 'no preload':<12} {stop:>6.2f} {answer:>15.2f} {hook:>14.3f} "
              f"{stop + answer:>15.2f}")


if __name__ == "__main__":
    main()
