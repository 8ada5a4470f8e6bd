"""Real processes on loopback: ``ivr serve`` (gunicorn) and ``ivr worker``, for end-to-end tests."""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

import ivr.all_models  # noqa: F401
from ivr.demo import demo_accounts_csv
from ivr.extensions import db

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ivr_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment for ``ivr`` subprocesses: sandbox adapters, this database, no real secrets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "STRIPE_"))}
    env.update(
        DATABASE_URL=database_url,
        PAYMENT_GATEWAY="sandbox",
        SMS_SENDER="sandbox",
        ORG_NAME="Riverbend Electric Cooperative",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def ivr(*args: str, env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    """Run one ``ivr`` command to completion."""
    return subprocess.run([sys.executable, "-m", "ivr.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=kwargs.pop("timeout", 120), **kwargs)


class LiveServer:
    """``ivr serve`` on a free loopback port; ``url`` is its origin."""

    def __init__(self, env: dict[str, str], *, workers: int = 1, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(env)
        self.env.setdefault("PUBLIC_BASE_URL", self.url)
        self.workers = workers
        self.process: subprocess.Popen | None = None
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"ivr-serve-{self.port}.log"

    def __enter__(self) -> "LiveServer":
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ivr.cli", "serve", "--port", str(self.port), "--workers", str(self.workers)],
            env=self.env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60  # a busy machine starts gunicorn slowly
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("ivr serve exited:\n" + self.log_path.read_text())
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1):
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("ivr serve did not come up:\n" + self.log_path.read_text())

    def output(self) -> str:
        return self.log_path.read_text()

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


@pytest.fixture
def live_env(database_url, tmp_path):
    """A migrated database holding the demo accounts, and the environment for ``ivr`` processes."""
    env = ivr_env(database_url)
    assert ivr("db", "upgrade", env=env).returncode == 0
    accounts = tmp_path / "accounts.csv"
    accounts.write_text(demo_accounts_csv(date.today()))
    result = ivr("accounts", "import", str(accounts), env=env)
    assert result.returncode == 0, result.stderr
    yield env
    engine = sa.create_engine(database_url)

    with engine.begin() as conn:
        db.metadata.drop_all(conn)
        conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()
