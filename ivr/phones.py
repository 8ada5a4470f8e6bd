"""Phone numbers: parse caller IDs and billing-system numbers into E.164 with ``phonenumbers``."""

import phonenumbers
from phonenumbers import PhoneNumberType


def to_e164(raw: str | None, region: str = "US") -> str | None:
    """E.164 for a valid number, else None (withheld, "anonymous", short codes, garbage)."""
    if not raw:
        return None
    try:
        parsed = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def can_receive_sms(e164: str | None) -> bool:
    """Whether a number could be a mobile: US numbers can't be told apart offline, toll-free can."""
    if not e164:
        return False
    number_type = phonenumbers.number_type(phonenumbers.parse(e164))
    return number_type in {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


def national(e164: str | None) -> str:
    """A +1 number as members write it, "(202) 555-0143"; anything else unchanged."""
    if e164 and e164.startswith("+1") and len(e164) == 12 and e164[1:].isdigit():
        digits = e164[2:]
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    return e164 or ""
