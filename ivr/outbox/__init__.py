"""The outbox: rows written in their cause's transaction and delivered later by one engine.

``engine`` (claim, backoff, stale rows, pacing, pass budget), ``models`` (the common columns and the
SMS table), ``texts`` (the SMS kind), ``sms`` (senders), ``quiet_hours``. Agents' status callbacks
are another kind, defined in ``ivr/agents/callbacks.py``.
"""
