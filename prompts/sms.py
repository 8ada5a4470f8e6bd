"""GSM-7 arithmetic: whether a text message fits one SMS segment (and so costs one message)."""

# GSM 03.38 default alphabet (one septet each) and its extension table (escape + char = two).
_GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€\f")
SEGMENT_GSM7 = 160


def gsm7_length(body: str) -> int | None:
    """Septets ``body`` takes in GSM-7, or None when it needs UCS-2 (70 characters a segment)."""
    length = 0
    for char in body:
        if char in _GSM7_BASIC:
            length += 1
        elif char in _GSM7_EXTENDED:
            length += 2
        else:
            return None
    return length


def fits_one_segment(body: str) -> bool:
    """True when ``body`` is GSM-7 and at most 160 septets: one SMS, one charge."""
    length = gsm7_length(body)
    return length is not None and length <= SEGMENT_GSM7
