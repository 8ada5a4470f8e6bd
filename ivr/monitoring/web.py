"""``GET /metrics`` for Prometheus (bearer ``METRICS_TOKEN``), and the timing every request pays once."""

import hmac
import logging
import os
import time

from flask import Blueprint, Flask, Response, abort, current_app, g, request
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from ..extensions import db
from ..models import utcnow
from . import metrics
from .backlog import OutboxBacklog
from .multiproc import DIR_VARIABLE

logger = logging.getLogger(__name__)
bp = Blueprint("monitoring", __name__)


@bp.get("/metrics")
def scrape():
    """Every metric in Prometheus' text format, for a scraper that sends ``METRICS_TOKEN``."""
    expected = current_app.config.get("METRICS_TOKEN")
    if not expected:
        abort(404)  # off unless the operator asks for it: the same answer as any unknown URL
    auth = request.authorization
    sent = auth.token if auth is not None and auth.type == "bearer" and auth.token else ""
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        logger.warning("metrics: missing or wrong token")
        return Response("Send 'Authorization: Bearer <METRICS_TOKEN>'.\n", 401,
                        {"WWW-Authenticate": 'Bearer realm="metrics"'}, mimetype="text/plain")
    body = generate_latest(_process_metrics()) + generate_latest(OutboxBacklog(db.session, utcnow()))
    # The classic text format: two documents joined stay valid, which OpenMetrics' "# EOF" would not.
    return Response(body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4, "Cache-Control": "no-store"})


def _process_metrics() -> CollectorRegistry:
    """Every process's counts (gunicorn's workers, and ivr worker's sharing the directory), else this one's."""
    if os.environ.get(DIR_VARIABLE):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return registry
    return REGISTRY


def time_requests(app: Flask) -> None:
    """Observe how long each of ``app``'s requests takes, once, by endpoint."""
    app.before_request(_start_clock)
    app.teardown_request(_stop_clock)


def _start_clock() -> None:
    g.ivr_request_started = time.perf_counter()


def _stop_clock(error: BaseException | None) -> None:
    started = g.pop("ivr_request_started", None)
    if started is not None:  # None: a request context no request was dispatched in
        metrics.request_finished(request.endpoint, time.perf_counter() - started)
