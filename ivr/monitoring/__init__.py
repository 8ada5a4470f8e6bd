"""Monitoring: ``GET /metrics`` for Prometheus.

``metrics`` (the metric objects and the calls that count), ``web`` (the endpoint and request
timing), ``backlog`` (the outbox's backlog, read at scrape time), ``multiproc`` and
``gunicorn_config`` (counting across ``ivr serve``'s worker processes).
"""
