"""bench/later_worker.py keeps working as the schema moves on: tiny sizes, every due row charged once, the figures printed."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Opt-in (IVR_TEST_BENCH=1), as bench/ops_scale.py's test: migrations and three processes take tens of seconds.
pytestmark = [
    pytest.mark.skipif(os.environ.get("IVR_TEST_BENCH") != "1", reason="opt-in: IVR_TEST_BENCH=1"),
    pytest.mark.skipif("postgresql" not in os.environ.get("IVR_TEST_DATABASES", "sqlite,postgresql"),
                       reason="the benchmark is of PostgreSQL"),
]


def test_the_worker_benchmark_charges_every_due_row_once_and_prints_rates_and_memory(postgres_database):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "STRIPE_", "DATABASE_URL"))}
    env["IVR_TEST_POSTGRES_URL"] = postgres_database  # the script makes and drops its own database beside it
    done = subprocess.run([sys.executable, "bench/later_worker.py", "--charges", "200", "--baseline", "20"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = {label: re.search(r"([\d,]+) +[\d.]+ +[\d.]+ +\d+ MiB", line)
            for line in done.stdout.splitlines()
            for label in ("baseline", "worker: day one", "worker: day two") if line.startswith(label)}
    assert {label: int(m.group(1).replace(",", "")) for label, m in rows.items()} == {
        "baseline": 20, "worker: day one": 20, "worker: day two": 200}
    assert "(198 paid, 2 declined and texted)" in done.stdout  # 1 card in 100 declines: texted, not retried
    assert "PROBLEM" not in done.stdout
