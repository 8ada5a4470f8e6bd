"""SMS reminders whose link makes us call the member back, and the callbacks themselves.

``selection`` picks the bills to remind and queues texts in the outbox; ``tokens`` signs the short
links; ``web`` serves the link page and the callback's voice webhooks; ``callbacks`` places the
outbound calls under the per-account limits. Member-facing words live in ``en.toml``/``es.toml``.
"""
