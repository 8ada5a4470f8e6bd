"""``ivr worker`` while PostgreSQL goes away and comes back: one line a round, no traceback, still running."""

import socket
import subprocess
import sys
import threading
import time

import pytest
import sqlalchemy as sa
from live import ROOT, free_port, ivr_env

from ivr.extensions import db


class Outage:
    """A TCP relay in front of PostgreSQL: ``down()`` drops every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.conns: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.up()

    def up(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def down(self) -> None:
        self.listener.close()
        for conn in self.conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        self.conns.clear()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self.conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass


def wait_for(stream_lines: list[str], text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in line for line in stream_lines):
            return
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in {''.join(stream_lines)}")


def test_worker_logs_one_line_while_postgresql_is_down_and_goes_on_when_it_is_back(database_url):
    url = sa.make_url(database_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("a database server that goes away: PostgreSQL")
    import ivr.all_models  # noqa: F401

    engine = sa.create_engine(database_url)
    db.metadata.create_all(engine)
    engine.dispose()
    relay = Outage((url.host or "127.0.0.1", url.port or 5432))
    through = url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    worker = subprocess.Popen([sys.executable, "-m", "ivr.cli", "worker", "--poll", "0.2"], cwd=ROOT,
                              env=ivr_env(through), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(worker.stdout.readline, "")), daemon=True).start()
    try:
        wait_for(lines, "worker")  # its start line
        time.sleep(1)
        relay.down()
        wait_for(lines, "trying again")
        time.sleep(2)  # a few rounds without the database
        relay.up()
        wait_for(lines, "the database answers again", timeout=60)
        assert worker.poll() is None  # still running
    finally:
        worker.terminate()
        worker.wait(timeout=20)
        relay.down()
        engine = sa.create_engine(database_url)
        db.metadata.drop_all(engine)
        engine.dispose()
    output = "".join(lines)
    assert "Traceback" not in output, output
    failures = [line for line in lines if "trying again" in line]
    assert failures and all("cannot use the database" in line for line in failures), output
