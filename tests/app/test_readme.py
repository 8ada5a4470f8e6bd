"""The README's "Try it" section is exactly what a newcomer types, and it works."""

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from live import free_port

ROOT = Path(__file__).resolve().parents[2]
# Set-up lines the test environment has already done the same way (scripts/test runs them).
SETUP = {
    "python3 -m venv .venv && . .venv/bin/activate",
    "pip install -e .",
    ". .venv/bin/activate",
}


def try_it_commands():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- try-it -->")[1].split("<!-- /try-it -->")[0]
    lines = []
    for code in re.findall(r"```sh\n(.*?)```", block, re.S):
        lines += [line.strip() for line in code.splitlines() if line.strip()]
    return [line for line in lines if line not in SETUP], [line for line in lines if line in SETUP]


def test_try_it_block_only_has_setup_demo_and_call():
    commands, setup = try_it_commands()
    assert setup and commands[0] == "ivr demo" and commands[1].startswith("ivr call ")


@pytest.mark.e2e
def test_try_it_runs_as_written(tmp_path):
    commands, _ = try_it_commands()
    port = free_port()
    bin_dir = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "STRIPE_", "DATABASE_URL"))}
    env.update(PORT=str(port), PATH=bin_dir + os.pathsep + env.get("PATH", ""), PYTHONUNBUFFERED="1")
    env.pop("PUBLIC_BASE_URL", None)
    demo = subprocess.Popen(shlex.split(commands[0]), cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            output.append(line)
            if "Ctrl-C stops the server" in line or demo.poll() is not None:
                break
        assert "Place a call:" in "".join(output), "".join(output)
        call = subprocess.run(shlex.split(commands[1]), cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=60)
        assert call.returncode == 0, call.stdout + call.stderr
        assert "Approved:" in call.stdout and "Confirmation number" in call.stdout
        confirmation = re.search(r"Confirmation number ((?:\d ){7}\d)", call.stdout).group(1).replace(" ", "")
        # the worker started by the demo prints the receipt as it sends it
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and f"Confirmation {confirmation}" not in "".join(output):
            output.append(demo.stdout.readline())
        assert f"Confirmation {confirmation}" in "".join(output)
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        try:
            demo.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
    assert (tmp_path / "instance" / "ivr.sqlite3").exists()
