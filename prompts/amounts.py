"""Amounts of integer cents written as text: for people ("$1,234.56") and for files and APIs ("1234.56").

Spoken amounts are ``speech.money``; these two are the only written forms.
"""


def dollars(cents: int) -> str:
    """Cents as a person reads them: ``123456`` -> ``"$1,234.56"``, a credit as ``"-$5.00"``."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{rest:02d}"


def decimal(cents: int) -> str:
    """Cents as a plain decimal for machines: ``123456`` -> ``"1234.56"``, ``-500`` -> ``"-5.00"``."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}{whole}.{rest:02d}"
