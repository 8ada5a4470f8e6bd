"""``ivr demo``: a busy port is refused before anything starts; the banner's hints all work."""

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from live import free_port

ROOT = Path(__file__).resolve().parents[2]


def demo_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "STRIPE_", "DATABASE_URL"))}
    for name in ("PORT", "PUBLIC_BASE_URL"):
        env.pop(name, None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def test_a_busy_port_is_refused_with_one_line_before_anything_is_created(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "ivr.cli", "demo", "--port", str(port)], cwd=tmp_path,
                                env=demo_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"Error: port {port} is already in use; stop what uses it or run ivr demo --port <another>"
    ]
    assert not (tmp_path / "instance").exists()


def read_banner(demo: subprocess.Popen, until: str, timeout: float = 150) -> str:
    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = demo.stdout.readline()
        lines.append(line)
        if until in line or demo.poll() is not None:
            break
    return "".join(lines)


@pytest.mark.e2e
def test_banner_hints_use_the_port_given_and_each_one_works(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    demo = subprocess.Popen([sys.executable, "-m", "ivr.cli", "demo", "--port", str(port), "--send-reminders"],
                            cwd=tmp_path, env=demo_env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        banner = read_banner(demo, "Ctrl-C stops the server")
        assert f"Web address:    {base}\n" in banner, banner
        agent = re.search(rf"Agent console:  {re.escape(base)}/agent   name: (.+?)   key: (ivrak_\S+)", banner)
        assert agent, banner
        assert f"Operations:     {base}/ops" in banner
        link = re.search(rf"Reminder link:  ({re.escape(base)}/r/\S+)", banner).group(1)
        assert f"ivr call --url {base} --from +12025550143" in banner
        # every address printed names this port, never the default one
        assert ":5000" not in banner

        # the agent's name and key open the console and the operations page
        session = requests.Session()
        page = session.get(f"{base}/agent", timeout=30).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        signed = session.post(f"{base}/agent/login", data={"csrf_token": token, "name": agent.group(1),
                                                            "key": agent.group(2), "next": "/ops"}, timeout=30)
        assert signed.status_code == 200 and "/agent/login" not in signed.url
        assert session.get(f"{base}/ops", timeout=30).status_code == 200
        assert "Call me now" in requests.get(link, timeout=30).text

        # --send-reminders: the worker texts the reminders now, whatever the hour
        # (the worker may send them before the banner is printed, or just after)
        texts = banner if "outbox texts pass" in banner else banner + read_banner(demo, "outbox texts pass", 60)
        assert re.search(rf"\[sms to …0143\] .*{re.escape(base)}/r/", texts), texts
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        try:
            demo.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
    with sqlite3.connect(tmp_path / "instance" / "ivr.sqlite3") as database:
        held = database.execute("select count(*) from outbox_messages where kind = 'reminder' "
                                "and respect_quiet_hours").fetchone()[0]
        sent = database.execute("select count(*) from outbox_messages where kind = 'reminder'").fetchone()[0]
    assert sent >= 1 and held == 0
