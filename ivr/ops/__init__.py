"""The operations console at /ops: today at a glance, payments, calls and messages, for supervisors and admins."""
