"""Card checks as Twilio's Stripe connector makes them: Luhn, brand, expiry, CVC, ZIP, token."""

import re
from datetime import date

from payments.sandbox_cards import BY_NUMBER, sandbox_customer

# Twilio's <Pay> capture steps, in the order the caller is asked for them.
CARD_NUMBER = "payment-card-number"
EXPIRY = "expiration-date"
SECURITY_CODE = "security-code"
POSTAL_CODE = "postal-code"

# IIN prefixes by brand (Twilio's validCardTypes spellings); longer prefixes first so they win.
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("6011", "discover"),
    ("644", "discover"),
    ("645", "discover"),
    ("646", "discover"),
    ("647", "discover"),
    ("648", "discover"),
    ("649", "discover"),
    ("65", "discover"),
    ("34", "amex"),
    ("37", "amex"),
    ("2014", "enroute"),
    ("2149", "enroute"),
    ("300", "diners-club"),
    ("301", "diners-club"),
    ("302", "diners-club"),
    ("303", "diners-club"),
    ("304", "diners-club"),
    ("305", "diners-club"),
    ("36", "diners-club"),
    ("38", "diners-club"),
    ("39", "diners-club"),
    ("35", "jcb"),
    ("50", "maestro"),
    ("56", "maestro"),
    ("57", "maestro"),
    ("58", "maestro"),
    ("6", "maestro"),
    ("4", "visa"),
)
# Stripe's generic test PaymentMethods, for a Luhn-valid number that is not a named test card.
_GENERIC_PM = {
    "visa": "pm_card_visa",
    "mastercard": "pm_card_mastercard",
    "amex": "pm_card_amex",
    "discover": "pm_card_discover",
    "jcb": "pm_card_jcb",
    "diners-club": "pm_card_diners",
}


def luhn_ok(number: str) -> bool:
    """True when ``number`` passes the Luhn checksum."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_brand(number: str) -> str | None:
    """The brand Twilio would report for ``number`` (``visa``, ``amex``…), or None."""
    if number[:2] in {"51", "52", "53", "54", "55"} or 2221 <= int(number[:4] or 0) <= 2720:
        return "mastercard"
    for prefix, brand in _PREFIXES:
        if number.startswith(prefix):
            return brand
    return None


def check_card_number(entry: str, valid_types: tuple[str, ...]) -> str | None:
    """The ``ErrorType`` for a typed card number, or None when Twilio would accept it."""
    if not re.fullmatch(r"\d{12,19}", entry) or not luhn_ok(entry):
        return "invalid-card-number"
    brand = card_brand(entry)
    if brand is None or brand not in valid_types:
        return "invalid-card-type"
    return None


def parse_expiry(entry: str) -> tuple[int, int] | None:
    """(month, 4-digit year) from ``MMYY`` or ``MM/YY``, or None."""
    match = re.fullmatch(r"(\d\d)/?(\d\d)", entry)
    if not match:
        return None
    month, year = int(match[1]), 2000 + int(match[2])
    return (month, year) if 1 <= month <= 12 else None


def check_expiry(entry: str, today: date) -> str | None:
    """``invalid-date`` unless ``entry`` is a real month that has not ended yet."""
    parsed = parse_expiry(entry)
    if parsed is None or parsed[1] * 12 + parsed[0] < today.year * 12 + today.month:
        return "invalid-date"
    return None


def check_security_code(entry: str, brand: str | None) -> str | None:
    """``invalid-security-code`` unless 4 digits for amex, 3 for any other brand."""
    length = 4 if brand == "amex" else 3
    return None if re.fullmatch(rf"\d{{{length}}}", entry) else "invalid-security-code"


def check_postal_code(entry: str, min_length: int | None) -> str | None:
    """``invalid-postal-code`` unless a 5-digit ZIP (or ``min_length``+ digits when set)."""
    pattern = rf"\d{{{min_length},10}}" if min_length else r"\d{5}"
    return None if re.fullmatch(pattern, entry) else "invalid-postal-code"


def payment_token(number: str, brand: str) -> str:
    """The ``pm_…`` id for ``number``: its Stripe test card's, else the brand's generic one."""
    card = BY_NUMBER.get(number)
    if card is not None:
        return card.payment_method
    return _GENERIC_PM.get(brand, "pm_card_visa")


def profile_id(payment_method: str) -> str:
    """The ``cus_…`` Twilio's Stripe connector sends as ``ProfileId``: one customer per test card."""
    return sandbox_customer(payment_method)


def mask_number(number: str) -> str:
    """``xxxxxxxxxxxx4242``: how Twilio reports a card number back."""
    return "x" * (len(number) - 4) + number[-4:]


def expiry_mmyy(entry: str) -> str:
    """``MMYY`` as Twilio's ``ExpirationDate`` carries it."""
    parsed = parse_expiry(entry)
    assert parsed is not None
    return f"{parsed[0]:02d}{parsed[1] % 100:02d}"
