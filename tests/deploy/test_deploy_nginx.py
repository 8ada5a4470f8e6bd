"""deploy/nginx: the deployment example passes `nginx -t` (and a typo would not), the cluster bench runs
the same settings, and nginx resends to another server exactly the requests that are safe to repeat.

Skipped where Debian's nginx is not installed (scripts/test installs it).
"""

import http.client
import http.server
import importlib.util
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NGINX_DIR = ROOT / "deploy" / "nginx"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)

pytestmark = pytest.mark.skipif(NGINX is None, reason="Debian's nginx is not installed (apt-get install nginx)")

CERT = "/etc/letsencrypt/live/pay.example.coop/fullchain.pem"
KEY = "/etc/letsencrypt/live/pay.example.coop/privkey.pem"


def _bench():
    """bench/cluster.py as a module (the bench is a script, not an installed package)."""
    spec = importlib.util.spec_from_file_location("bench_cluster", ROOT / "bench" / "cluster.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _nginx_t(prefix: Path) -> subprocess.CompletedProcess:
    return subprocess.run([NGINX, "-t", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e",
                           str(prefix / "error.log")], capture_output=True, text=True, timeout=30)


def _install_example(prefix: Path, locations: str | None = None) -> None:
    """The example laid out as on a Debian machine under ``prefix``, with a throw-away certificate."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=pay.example.coop", "-keyout", str(prefix / "key.pem"), "-out", str(prefix / "cert.pem")],
                   check=True, capture_output=True, timeout=60)
    example = (NGINX_DIR / "ivr.conf").read_text()
    assert CERT in example and KEY in example
    example = example.replace(CERT, str(prefix / "cert.pem")).replace(KEY, str(prefix / "key.pem"))
    example = example.replace("/var/log/nginx/", f"{prefix}/")
    (prefix / "sites").mkdir()
    (prefix / "snippets").mkdir()
    (prefix / "sites" / "ivr.conf").write_text(example)
    (prefix / "snippets" / "ivr-locations.conf").write_text(locations or (NGINX_DIR / "ivr-locations.conf").read_text())
    # Debian's nginx.conf, reduced to what the example needs: the http block includes the site.
    (prefix / "nginx.conf").write_text(f"pid {prefix}/nginx.pid;\nevents {{}}\nhttp {{\n    include sites/ivr.conf;\n}}\n")


def test_the_deployment_example_passes_nginx_t(tmp_path):
    _install_example(tmp_path)
    checked = _nginx_t(tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


@pytest.mark.parametrize(
    "typo, complaint",
    [
        ("proxy_next_upstream error timeout;", 'unknown directive "proxy_next_upstrem"'),
        ("proxy_next_upstream error timeout non_idempotent;", 'invalid value "non_idempotnt"'),
    ],
)
def test_a_typo_in_the_example_fails_nginx_t(tmp_path, typo, complaint):
    locations = (NGINX_DIR / "ivr-locations.conf").read_text()
    assert typo in locations
    broken = typo.replace("proxy_next_upstream", "proxy_next_upstrem") if "unknown" in complaint else (
        typo.replace("non_idempotent", "non_idempotnt"))
    _install_example(tmp_path, locations.replace(typo, broken, 1))
    checked = _nginx_t(tmp_path)
    assert checked.returncode != 0
    assert complaint in checked.stderr


def _upstream_block(text: str) -> list[str]:
    block = re.search(r"^\s*upstream ivr_web \{(.*?)^\s*\}", text, re.M | re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_the_bench_runs_the_example_without_tls(tmp_path):
    example = (NGINX_DIR / "ivr.conf").read_text()
    rendered = _bench().nginx_config([18001, 18002, 18003], 18000, tmp_path)
    (tmp_path / "nginx.conf").write_text(rendered)
    checked = _nginx_t(tmp_path)
    assert checked.returncode == 0, checked.stderr

    # Every upstream setting is the example's; only the servers differ, with the example's parameters.
    theirs, ours = _upstream_block(example), _upstream_block(rendered)
    assert [line for line in ours if not line.startswith("server ")] == [
        line for line in theirs if not line.startswith("server ")]
    assert [line for line in ours if line.startswith("server ")] == [
        f"server 127.0.0.1:{port} max_fails=3 fail_timeout=10s;" for port in (18001, 18002, 18003)]
    # The locations file is included as it is; the listener is plain http and there is no certificate.
    assert f"include {NGINX_DIR / 'ivr-locations.conf'};" in rendered
    assert "listen 127.0.0.1:18000;" in rendered
    assert "ssl" not in rendered
    assert "ssl_certificate" in example


# --- what nginx does when a server fails -------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DyingServer:
    """Takes a request whole, then drops the connection without a word: a machine killed mid-request."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._take, args=(conn,), daemon=True).start()

    def _take(self, conn: socket.socket) -> None:
        with conn:
            while True:  # a keepalive connection from nginx carries one request after another
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = re.search(rb"content-length: *(\d+)", head, re.I)
                while length and len(body) < int(length.group(1)):
                    body += conn.recv(65536)
                self.requests.append(head.split(b"\r\n", 1)[0].decode())
                return  # the request has arrived in full; the process dies before it answers

    def close(self) -> None:
        self.listener.close()


class Answering(http.server.BaseHTTPRequestHandler):
    """The machine that stays up: answers 200, naming itself and the X-Forwarded-For it was given."""

    protocol_version = "HTTP/1.1"
    seen: list[str] = []

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).seen.append(f"{self.command} {self.path}")
        body = f"answered {self.headers.get('X-Forwarded-For')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def balancer():
    """nginx with the bench's rendering of the example, in front of a dying server and an answering one."""
    # Not under pytest's tmp_path (mode 0700 up the tree): nginx's worker processes, which are not
    # root, write larger request bodies to their temporary directories in here.
    run_dir = Path(tempfile.mkdtemp(prefix="ivr-nginx-test-"))
    run_dir.chmod(0o755)
    started = []

    def start(first_port: int) -> int:
        Answering.seen = []
        answering = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answering)
        threading.Thread(target=answering.serve_forever, daemon=True).start()
        listen = _free_port()
        config = _bench().nginx_config([first_port, answering.server_address[1]], listen, run_dir)
        (run_dir / "nginx.conf").write_text(config)
        nginx = subprocess.Popen([NGINX, "-p", str(run_dir), "-c", str(run_dir / "nginx.conf"), "-e",
                                  str(run_dir / "error.log"), "-g", "daemon off;"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        started.append((nginx, answering))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", listen), timeout=1).close()
                return listen
            except OSError:
                assert nginx.poll() is None, nginx.stderr.read().decode()
                time.sleep(0.05)
        raise AssertionError("nginx did not start")

    yield start
    for nginx, answering in started:
        nginx.terminate()
        nginx.wait(timeout=10)
        answering.shutdown()
    shutil.rmtree(run_dir, ignore_errors=True)


def _send(port: int, method: str, path: str, times: int = 4) -> list[tuple[int, str]]:
    """``times`` requests one after another, each on a new connection: (status, body)."""
    answers = []
    for _ in range(times):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request(method, path, body="CallSid=CA1&Digits=1" if method == "POST" else None,
                     headers={"Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-For": "203.0.113.9"})
        response = conn.getresponse()
        answers.append((response.status, response.read().decode()))
        conn.close()
    return answers


@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/twilio/voice"),
        ("POST", "/twilio/voice/pay?seq=8"),
        ("POST", "/twilio/voice/status"),
        ("POST", "/stripe/webhook"),
        ("GET", "/healthz"),
    ],
)
def test_a_request_cut_off_by_a_dying_server_is_answered_by_another(balancer, method, path):
    dying = DyingServer()
    try:
        answers = _send(balancer(dying.port), method, path)
    finally:
        dying.close()
    assert dying.requests, "the dying server was never tried"
    assert answers == [(200, "answered 203.0.113.9, 127.0.0.1")] * 4
    assert Answering.seen == [f"{method} {path}"] * 4


@pytest.mark.parametrize("path", ["/api/agent/transfers", "/ops/payments/12345678/refund", "/r/some-token"])
def test_a_person_s_post_cut_off_is_not_sent_again(balancer, path):
    dying = DyingServer()
    try:
        answers = _send(balancer(dying.port), "POST", path)
    finally:
        dying.close()
    cut_off = [status for status, _ in answers if status == 502]
    # Each request the dying server took is answered 502, never also acted on by the other server.
    assert len(cut_off) == len(dying.requests) >= 1
    assert len(Answering.seen) == 4 - len(cut_off)
    assert all(body == "answered 203.0.113.9, 127.0.0.1" for status, body in answers if status != 502)


def test_a_refused_connection_is_tried_on_another_server_whatever_the_request(balancer):
    nobody_listens = _free_port()
    answers = _send(balancer(nobody_listens), "POST", "/api/agent/transfers")
    assert [status for status, _ in answers] == [200] * 4
    assert Answering.seen == ["POST /api/agent/transfers"] * 4


def _post_body(port: int, path: str, size: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", path, body=b"x" * size, headers={"Content-Type": "application/x-www-form-urlencoded"})
    status = conn.getresponse().status
    conn.close()
    return status


def test_bodies_as_large_as_the_app_takes_pass_and_larger_ones_stop_at_nginx(balancer):
    port = balancer(_free_port())
    # A Stripe dispute event may pass nginx's default 1 MB; the app takes up to 2 MB, Twilio's up to 64 KiB.
    assert _post_body(port, "/stripe/webhook", 1_500_000) == 200
    assert _post_body(port, "/twilio/sms", 60 * 1024) == 200
    assert _post_body(port, "/twilio/sms", 65 * 1024) == 413
    assert _post_body(port, "/stripe/webhook", 3 * 1024 * 1024) == 413
    assert Answering.seen == ["POST /stripe/webhook", "POST /twilio/sms"]


def test_metrics_are_not_served_through_the_balancer(balancer):
    port = balancer(_free_port())
    assert [status for status, _ in _send(port, "GET", "/metrics", times=1)] == [404]
    assert Answering.seen == []
