"""Counting across processes: the directory prometheus-client's multiprocess mode keeps its counts in.

Each gunicorn worker (and ``ivr worker``, when given the same directory) writes its own files there,
and whichever worker answers ``/metrics`` adds them all up. The library reads the variable when it
is first imported, so it is set in the environment gunicorn starts with, never from inside a worker.
"""

import os
import tempfile
from collections.abc import Mapping

DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# Marks a directory ivr serve made for this run, which gunicorn removes when it exits; one the
# operator chose may be shared with ivr worker and is theirs to keep or wipe.
MADE_FOR_THIS_RUN = "IVR_METRICS_DIR_MADE_BY_SERVE"
GUNICORN_CONFIG = "python:ivr.monitoring.gunicorn_config"
# Memory-backed where the system has it: every count writes to a memory-mapped file, and on a disk
# file system a write can wait for the page's writeback or the journal, in the middle of a webhook.
SHARED_MEMORY = "/dev/shm"


def serve_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` for gunicorn: with the operator's metrics directory, else a fresh empty one for this run."""
    env = {name: value for name, value in environ.items() if name != MADE_FOR_THIS_RUN}
    if not env.get(DIR_VARIABLE, "").strip():
        # A new directory per run: counts from an earlier run never leak into this one's totals.
        memory = SHARED_MEMORY if os.access(SHARED_MEMORY, os.W_OK | os.X_OK) else None
        env[DIR_VARIABLE] = tempfile.mkdtemp(prefix="ivr-metrics-", dir=memory)
        env[MADE_FOR_THIS_RUN] = "1"
    return env


def ensure_directory(environ: Mapping[str, str]) -> None:
    """Create the metrics directory ``environ`` names, if missing (the library would fail every count)."""
    path = environ.get(DIR_VARIABLE, "").strip()
    if path:
        os.makedirs(path, exist_ok=True)
