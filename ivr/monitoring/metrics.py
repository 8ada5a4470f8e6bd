"""The service's Prometheus metrics, and the one call each place that counts makes.

The metric objects live in this process (in ``PROMETHEUS_MULTIPROC_DIR``'s files when it is set, so
every gunicorn worker adds to the same totals). Counting never touches the database: a webhook pays
one histogram observation, plus a counter increment or two where a call starts or a charge ends.
"""

import functools
import os
from collections.abc import Callable

from prometheus_client import Counter, Histogram, disable_created_metrics

import flows

from ..extensions import db
from ..models import Payment
from .multiproc import ensure_directory

# Before any count in any process (serve's workers, ivr worker): the library writes its files in
# the directory but never creates it.
ensure_directory(os.environ)
# The *_created series multiprocess mode never has: one process alone exposes the same names as many.
disable_created_metrics()

# A menu step takes a few milliseconds, a <Pay> result with its charge tens to hundreds; Twilio
# gives up at 15 s, and anything past 2 s already means a caller heard silence.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0)

CALLS_STARTED = Counter("ivr_calls_started", "Calls that entered the flow, by entry point", ["entry"])
PAYMENTS = Counter("ivr_payments", "Charges made, by channel and outcome (approved, declined, unavailable)",
                   ["channel", "outcome"])
DECLINES = Counter("ivr_payment_declines", "Declined charges, by the processor's decline code", ["reason"])
REQUEST_SECONDS = Histogram("ivr_request_duration_seconds", "Time to answer a request, by Flask endpoint",
                            ["endpoint"], buckets=LATENCY_BUCKETS)
WORKER_PASSES = Counter("ivr_worker_passes", "Passes of ivr worker over an outbox kind, by outcome (ok, error)",
                        ["kind", "outcome"])

APPROVED, DECLINED, UNAVAILABLE = "approved", "declined", "unavailable"


def call_started(entry: flows.Entry) -> None:
    """Count a call that entered the flow by ``entry``."""
    CALLS_STARTED.labels(entry.value).inc()


def counts_charge(charge: Callable[..., Payment | None]) -> Callable[..., Payment | None]:
    """Count each charge the wrapped step makes by channel and outcome, and each decline by its code.

    Wraps the one charge step, ``charge(payment_id, ...)`` returning the settled payment, or None
    when the processor could not be reached.
    """

    @functools.wraps(charge)
    def counted(payment_id: int, *args, **kwargs) -> Payment | None:
        settled = charge(payment_id, *args, **kwargs)
        # The step has just read the row: this is the session's copy, not another query.
        payment = settled if settled is not None else db.session.get(Payment, payment_id)
        channel = payment.channel if payment is not None else "unknown"
        if settled is None:
            outcome = UNAVAILABLE
        elif settled.status == "succeeded":
            outcome = APPROVED
        else:
            outcome = DECLINED
            DECLINES.labels(settled.decline_code or "unknown").inc()
        PAYMENTS.labels(channel, outcome).inc()
        return settled

    return counted


def request_finished(endpoint: str | None, seconds: float) -> None:
    """Record how long a request to ``endpoint`` (None: no route matched) took."""
    REQUEST_SECONDS.labels(endpoint or "unmatched").observe(seconds)


def worker_pass(kind: str, outcome: str) -> None:
    """Count one pass of the worker over ``kind`` (``texts``, ``callbacks``): ``ok`` or ``error``."""
    WORKER_PASSES.labels(kind, outcome).inc()
