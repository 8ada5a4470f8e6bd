"""Masking for logs: phone numbers appear only as their last four digits."""

import re

# E.164 and bare digit runs long enough to be a phone number (dates and amounts are shorter).
_PHONE_LIKE = re.compile(r"\+?\d{7,15}")


def mask(value: str | None) -> str:
    """Return ``value`` reduced to an ellipsis and its last four characters, e.g. ``…1234``."""
    if not value:
        return "…"
    return "…" + str(value)[-4:]


def mask_numbers(text: str | None) -> str:
    """Return ``text`` with every phone-number-like digit run masked (provider error messages)."""
    if not text:
        return ""
    return _PHONE_LIKE.sub(lambda m: mask(m.group(0)), text)
