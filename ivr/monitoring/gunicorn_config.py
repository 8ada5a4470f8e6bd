"""gunicorn hooks ``ivr serve`` loads with ``-c``: the bookkeeping prometheus-client's multiprocess mode needs.

gunicorn reads this module's names as settings; only hooks are defined here, every other setting
comes from ``ivr serve``'s command line.
"""

import os
import shutil

from prometheus_client import multiprocess

from .multiproc import DIR_VARIABLE, MADE_FOR_THIS_RUN


def post_fork(server, worker) -> None:
    """A new process: with --preload, drop database connections inherited from the master (never shared)."""
    app = getattr(server.app, "callable", None)  # set only when the master loaded the app (--preload)
    if app is None:
        return
    from ivr.extensions import db

    with app.app_context():
        for engine in db.engines.values():
            engine.dispose(close=False)  # the master's sockets stay the master's; this process opens its own


def child_exit(server, worker) -> None:
    """A worker process ended: its live gauges stop counting (its counters stay in the totals)."""
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    """gunicorn stops: remove the metrics directory ``ivr serve`` made for this run (never the operator's)."""
    if os.environ.get(MADE_FOR_THIS_RUN) and os.environ.get(DIR_VARIABLE):
        shutil.rmtree(os.environ[DIR_VARIABLE], ignore_errors=True)
