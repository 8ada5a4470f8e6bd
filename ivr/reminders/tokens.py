"""Short signed links for reminder texts: ``/r/<token>``, bound to an account and its phone on file.

A token is 24 URL-safe characters: version, account id and issue minute in the clear, then a
truncated HMAC-SHA256 over those and the account's phone on file. The phone is signed but not
carried, so a token stops working when the phone on file changes, at no cost in length.

itsdangerous' ``URLSafeTimedSerializer`` would give about 60 characters here (JSON payload,
timestamp and a full SHA-1 signature), which would push a reminder past one SMS segment; the
construction below keeps the same properties (keyed MAC with a salt, constant-time compare,
expiry) in 18 bytes. 72 MAC bits are far beyond what can be guessed online.
"""

import base64
import hashlib
import hmac
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

VERSION = 1
_LAYOUT = struct.Struct(">BII")  # version, account id, minutes since the epoch
_MAC_BYTES = 9
_SALT = b"ivr.reminders.link"
TOKEN_LENGTH = 24
# Clock skew tolerated between the processes that issue and check tokens.
_FUTURE_SKEW = timedelta(minutes=5)


class TokenError(Exception):
    """The token cannot be used."""


class BadToken(TokenError):
    """Malformed, tampered with, or signed with another key."""


class ExpiredToken(TokenError):
    """Genuine but older than its lifetime; ``account_id`` says whose it was."""

    def __init__(self, account_id: int) -> None:
        super().__init__("reminder link expired")
        self.account_id = account_id


@dataclass(frozen=True)
class LinkClaims:
    """What a genuine token says: whose account and when it was issued."""

    account_id: int
    issued_at: datetime


def _mac(secret: str, payload: bytes, phone: str) -> bytes:
    message = _SALT + b"\0" + payload + b"\0" + phone.encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()[:_MAC_BYTES]


def issue(secret: str, account_id: int, phone: str, now: datetime) -> str:
    """A token for ``account_id`` whose phone on file is ``phone``, issued at ``now``."""
    minutes = int(now.timestamp() // 60)
    payload = _LAYOUT.pack(VERSION, account_id, minutes)
    raw = payload + _mac(secret, payload, phone)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def peek(token: str) -> LinkClaims:
    """The unverified claims of a well-formed token (to look up the phone to verify against).

    :raises BadToken: when the token is not of our shape.
    """
    if len(token) != TOKEN_LENGTH:
        raise BadToken("wrong length")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        raise BadToken("not base64") from None
    if len(raw) != _LAYOUT.size + _MAC_BYTES:
        raise BadToken("wrong size")
    version, account_id, minutes = _LAYOUT.unpack(raw[: _LAYOUT.size])
    if version != VERSION:
        raise BadToken("unknown version")
    return LinkClaims(account_id, datetime.fromtimestamp(minutes * 60, UTC))


def verify(secret: str, token: str, phone: str, now: datetime, max_age: timedelta) -> LinkClaims:
    """The claims of ``token`` if it is genuine for ``phone`` and younger than ``max_age``.

    :raises BadToken: tampered, foreign, or the phone on file is not the one it was issued for.
    :raises ExpiredToken: genuine but too old.
    """
    claims = peek(token)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    payload, mac = raw[: _LAYOUT.size], raw[_LAYOUT.size :]
    if not hmac.compare_digest(mac, _mac(secret, payload, phone)):
        raise BadToken("bad signature")
    if claims.issued_at > now + _FUTURE_SKEW:
        raise BadToken("issued in the future")
    if now - claims.issued_at > max_age:
        raise ExpiredToken(claims.account_id)
    return claims
