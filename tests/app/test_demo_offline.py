"""``ivr demo`` with no network: a transfer, an assisted payment and Call me now, through its Twilio stand-in."""

import io
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from live import free_port
from test_demo import demo_env

from ivr.softphone.call import place_call

CARD = "4242424242424242,12/30,123,30301"
DANA = "+12025550143"
DEAD_PROXY = "http://127.0.0.1:9"  # anything that would leave this machine goes nowhere


class Output:
    """The demo's output, read as it comes (so its pipe never fills)."""

    def __init__(self, demo: subprocess.Popen) -> None:
        self.text = ""
        threading.Thread(target=self._read, args=(demo,), daemon=True).start()

    def _read(self, demo):
        for line in demo.stdout:
            self.text += line

    def wait_for(self, pattern: str, timeout: float = 150) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text)
            if found:
                return found
            time.sleep(0.2)
        raise AssertionError(f"{pattern!r} not in:\n{self.text}")


class Softphone:
    """One ``place_call`` in a thread; its live transcript is readable while it runs."""

    def __init__(self, **kwargs) -> None:
        self.out = io.StringIO()
        self.result = None
        self.thread = threading.Thread(target=self._run, kwargs=kwargs, daemon=True)
        self.thread.start()

    def _run(self, **kwargs):
        self.result = place_call(out=self.out, agent_wait_s=60, **kwargs)

    def call_sid(self) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = re.search(r"the agent's console can act on (CA\w+)", self.out.getvalue())
            if found:
                return found.group(1)
            time.sleep(0.1)
        raise AssertionError(self.out.getvalue())

    def done(self):
        self.thread.join(90)
        assert not self.thread.is_alive(), self.out.getvalue()
        return self.result


def approved(tmp_path: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(tmp_path / "instance" / "ivr.sqlite3") as database:
        return database.execute("select channel, amount_cents from payments where status = 'succeeded' "
                                "order by id").fetchall()


@pytest.mark.e2e
def test_transfer_assisted_payment_and_call_me_now_work_with_no_network(tmp_path, monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, DEAD_PROXY)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    demo = subprocess.Popen([sys.executable, "-m", "ivr.cli", "demo", "--port", str(port), "--workers", "1"],
                            cwd=tmp_path, env=demo_env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output = Output(demo)
    try:
        output.wait_for("Ctrl-C stops the server")
        key = re.search(r"key: (ivrak_\S+)", output.text).group(1)
        twilio = re.search(r"--agent --twilio-api (\S+)", output.text).group(1)
        agent = requests.Session()
        agent.headers["Authorization"] = f"Bearer {key}"

        # 1. Dana calls an agent, who transfers her to pay $12.34 by keypad.
        call = Softphone(url=base, from_=DANA, twilio_api=twilio, agent_line=True, keys="1", cards=[CARD])
        sid = call.call_sid()
        made = agent.post(f"{base}/api/agent/transfers", json={"call_sid": sid, "account_number": "12345001",
                                                                "amount": "12.34"}, timeout=30)
        assert made.status_code == 201, made.text
        call.done()
        assert "Redirect (Calls update)" in call.out.getvalue()
        assert ("agent", 1234) in approved(tmp_path), call.out.getvalue()

        # 2. Dana calls again; the agent takes her card on the call, field by field, for $5.00.
        call = Softphone(url=base, from_=DANA, twilio_api=twilio, agent_line=True, cards=[CARD])
        sid = call.call_sid()
        started = agent.post(f"{base}/api/agent/assisted", json={"call_sid": sid, "account_number": "12345001",
                                                                  "amount": "5.00"}, timeout=30)
        assert started.status_code == 201, started.text
        assisted = f"{base}/api/agent/assisted/{started.json()['id']}"
        for field in ("payment-card-number", "expiration-date", "security-code", "postal-code"):
            asked = agent.post(f"{assisted}/capture", json={"field": field}, timeout=30)
            assert asked.status_code == 200, asked.text
            deadline = time.monotonic() + 20
            while agent.get(assisted, timeout=30).json()["fields"][field]["state"] != "entered":
                assert time.monotonic() < deadline, agent.get(assisted, timeout=30).text
                time.sleep(0.2)
        assert agent.post(f"{assisted}/complete", timeout=30).status_code == 200
        call.done()
        deadline = time.monotonic() + 20
        while agent.get(assisted, timeout=30).json()["status"] != "approved":
            assert time.monotonic() < deadline, agent.get(assisted, timeout=30).text
            time.sleep(0.2)
        assert len([p for p in approved(tmp_path) if p[1] == 500]) == 1

        # 3. Dana asks for a call from her reminder link; the stand-in rings, she answers and pays it all.
        link = re.search(r"Reminder link:  (\S+)", output.text).group(1)
        member = requests.Session()
        page = member.get(link, timeout=30).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        assert member.post(link, data={"csrf_token": csrf}, timeout=30).status_code == 200
        output.wait_for(r"Twilio stand-in: the app asks to call …0143")
        answered = place_call(twilio_api=twilio, answer=True, keys="1", cards=[CARD], out=io.StringIO())
        assert answered.exit_code == 0
        assert any(channel == "callback" for channel, _ in approved(tmp_path)), approved(tmp_path)
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        try:
            demo.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
    assert "Twilio could not be reached" not in output.text
