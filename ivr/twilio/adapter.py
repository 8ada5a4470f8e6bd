"""The one module that imports the Twilio SDK: webhook signatures, TwiML builders and the REST API."""

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from ..masking import mask_numbers

# The SDK logs every request at INFO with its form body: phone numbers and message texts.
logging.getLogger("twilio").setLevel(logging.WARNING)


# The card fields Twilio's <Pay> and its Payments API collect, in the order a caller keys them.
CARD_FIELDS = ("payment-card-number", "expiration-date", "security-code", "postal-code")


def compute_signature(url: str, params: Mapping[str, Any], auth_token: str) -> str:
    """Return the ``X-Twilio-Signature`` Twilio would send for a form POST of ``params`` to ``url``."""
    return RequestValidator(auth_token).compute_signature(url, params)


def validate_signature(url: str, params: Mapping[str, Any], signature: str, auth_token: str) -> bool:
    """True when ``signature`` is Twilio's signature of ``url`` + ``params`` under ``auth_token``."""
    if not signature:
        return False
    return RequestValidator(auth_token).validate(url, params, signature)


def voice_response() -> VoiceResponse:
    """A new TwiML ``<Response>`` builder for voice."""
    return VoiceResponse()


def messaging_response() -> MessagingResponse:
    """A new TwiML ``<Response>`` builder for SMS replies."""
    return MessagingResponse()


# --- REST API ---------------------------------------------------------------------------------

T = TypeVar("T")

# Twilio codes that mean "slow down"; the request was never processed, so it is safe to repeat.
RATE_LIMIT_CODES = frozenset({20429})


class TwilioApiError(Exception):
    """A Twilio REST call failed; ``retryable`` says whether repeating it later may succeed."""

    def __init__(self, http_status: int | None, code: int | None, message: str) -> None:
        super().__init__(f"Twilio error {code or '-'} (HTTP {http_status or '-'}): {message}")
        self.http_status = http_status
        self.code = code
        self.message = message

    @property
    def rate_limited(self) -> bool:
        """True for HTTP 429 / error 20429 (too many requests)."""
        return self.http_status == 429 or self.code in RATE_LIMIT_CODES

    @property
    def retryable(self) -> bool:
        """True for network errors (no HTTP status), 5xx and rate limiting."""
        return self.http_status is None or self.http_status >= 500 or self.rate_limited

    @property
    def permanent(self) -> bool:
        """True when repeating the request cannot succeed (21610 unsubscribed, 21211, 21220…)."""
        return not self.retryable


@dataclass(frozen=True)
class SentMessage:
    """A message Twilio accepted: its ``SM…`` sid and initial status (usually ``queued``)."""

    sid: str
    status: str


@dataclass(frozen=True)
class ListedMessage:
    """A Message as Twilio lists it: enough to recognise one we sent."""

    sid: str
    to: str | None
    body: str | None
    status: str | None
    date_created: datetime | None  # UTC


@dataclass(frozen=True)
class CallInfo:
    """The fields of a Call resource the app uses."""

    sid: str
    status: str
    direction: str | None
    from_: str | None
    to: str | None
    account_sid: str | None


class _OriginRewritingHttpClient(TwilioHttpClient):
    """Send every request to ``api_base`` instead of the ``*.twilio.com`` host the SDK chose.

    The SDK builds absolute URLs per product domain (api.twilio.com, and edge/region variants),
    so rewriting at the transport is the one place that catches them all.
    """

    def __init__(self, api_base: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        base = urlsplit(api_base)
        if not base.scheme or not base.netloc:
            raise ValueError("TWILIO_API_BASE must be an absolute URL, e.g. http://127.0.0.1:8081")
        self._scheme = base.scheme
        self._netloc = base.netloc
        self._prefix = base.path.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        parts = urlsplit(url)
        url = urlunsplit(
            (self._scheme, self._netloc, self._prefix + parts.path, parts.query, parts.fragment)
        )
        return super().request(method, url, *args, **kwargs)


def _call_info(call: Any) -> CallInfo:
    # The SDK keeps the resource's "from" field as ``_from`` (``from`` is a Python keyword).
    return CallInfo(
        sid=call.sid,
        status=call.status,
        direction=call.direction,
        from_=getattr(call, "_from", None),
        to=call.to,
        account_sid=call.account_sid,
    )


def _strip_sdk_prefix(message: str) -> str:
    # The SDK prefixes Twilio's own message with "Unable to create record: " and the like.
    head, sep, tail = message.partition(": ")
    return tail if sep and head.startswith("Unable to ") else message


class TwilioRest:
    """Twilio REST (Messages, Calls, Payments): dataclasses out, TwilioApiError on failure."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str,
        api_base: str | None = None,
        timeout: float = 15.0,
    ) -> None:
        # An explicit timeout: the SDK's default is to wait forever, which would stall the worker.
        http_client: TwilioHttpClient
        if api_base:
            http_client = _OriginRewritingHttpClient(api_base, timeout=timeout)
        else:
            http_client = TwilioHttpClient(timeout=timeout)
        self._client = Client(account_sid, auth_token, http_client=http_client)
        self.account_sid = account_sid
        self.from_number = from_number

    def __repr__(self) -> str:
        return f"<TwilioRest {self.account_sid}>"  # never the token

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except TwilioRestException as exc:
            code = exc.code if isinstance(exc.code, int) else None
            message = mask_numbers(_strip_sdk_prefix(str(exc.msg)))
            raise TwilioApiError(exc.status, code, message) from None
        except TwilioServiceException as exc:
            message = exc.detail or exc.title or ""
            raise TwilioApiError(exc.status, exc.code, mask_numbers(message)) from None
        except TwilioException as exc:
            # A list page Twilio would not give ("Unable to fetch page", with the response).
            response = exc.args[1] if len(exc.args) > 1 else None
            status = getattr(response, "status_code", None)
            raise TwilioApiError(status, None, f"Twilio answered HTTP {status} to a list request") from None
        except requests.RequestException as exc:
            # Connection refused, DNS, timeouts: no HTTP status, so the caller may retry.
            raise TwilioApiError(None, None, f"network error: {type(exc).__name__}") from None

    def send_sms(self, to: str, body: str, *, status_callback: str | None = None) -> SentMessage:
        """Create a Message from ``from_number`` to ``to``."""
        msg = self._call(
            lambda: self._client.messages.create(
                to=to, from_=self.from_number, body=body, status_callback=status_callback
            )
        )
        return SentMessage(sid=msg.sid, status=msg.status)

    def messages_to(self, to: str, *, limit: int = 50) -> list[ListedMessage]:
        """The newest Messages from ``from_number`` to ``to`` (Twilio lists newest first).

        Filtered by To and From only: ``DateSent`` would miss a message Twilio accepted but has
        not sent yet (its ``date_sent`` is empty), which is exactly the one we need to find.
        """
        listed = self._call(
            lambda: self._client.messages.list(to=to, from_=self.from_number, limit=limit, page_size=limit)
        )
        return [
            ListedMessage(sid=m.sid, to=m.to, body=m.body, status=m.status, date_created=m.date_created)
            for m in listed
        ]

    def create_call(
        self,
        to: str,
        url: str,
        *,
        status_callback: str | None = None,
        status_callback_events: Sequence[str] | None = None,
        timeout: int = 30,
        machine_detection: str | None = None,
    ) -> CallInfo:
        """Place an outbound call from ``from_number`` whose TwiML Twilio POSTs for at ``url``."""
        call = self._call(
            lambda: self._client.calls.create(
                to=to,
                from_=self.from_number,
                url=url,
                method="POST",
                status_callback=status_callback,
                status_callback_method="POST" if status_callback else None,
                status_callback_event=list(status_callback_events or []) or None,
                timeout=timeout,
                machine_detection=machine_detection,
            )
        )
        return _call_info(call)

    def fetch_call(self, sid: str) -> CallInfo:
        """Fetch a call's current state."""
        return _call_info(self._call(lambda: self._client.calls(sid).fetch()))

    def redirect_call(self, sid: str, url: str) -> CallInfo:
        """Send a live call to the TwiML at ``url`` (Calls update with Url, Method POST).

        :raises TwilioApiError: 21220 when the call is no longer in progress.
        """
        return _call_info(
            self._call(lambda: self._client.calls(sid).update(url=url, method="POST"))
        )

    def create_payment(
        self,
        call_sid: str,
        *,
        idempotency_key: str,
        status_callback: str,
        payment_connector: str,
        token_type: str = "payment-method",
        valid_card_types: str = "visa mastercard amex discover",
        postal_code: bool = True,
        security_code: bool = True,
        timeout: int | None = None,
    ) -> str:
        """Start an agent-assisted tokenize session (no ChargeAmount); return its PK sid."""
        payment = self._call(
            lambda: self._client.calls(call_sid).payments.create(
                idempotency_key=idempotency_key,
                status_callback=status_callback,
                payment_connector=payment_connector,
                token_type=token_type,
                valid_card_types=valid_card_types,
                postal_code=postal_code,
                security_code=security_code,
                timeout=timeout,
            )
        )
        return payment.sid

    def update_payment(
        self,
        call_sid: str,
        payment_sid: str,
        *,
        idempotency_key: str,
        status_callback: str,
        capture: str | None = None,
        status: str | None = None,
    ) -> str:
        """Ask for the next field (``capture``) or end the session (``status`` complete|cancel)."""
        if (capture is None) == (status is None):
            # Twilio answers 64018 otherwise; fail before spending a request.
            raise ValueError("give exactly one of capture or status")
        payment = self._call(
            lambda: self._client.calls(call_sid)
            .payments(payment_sid)
            .update(
                idempotency_key=idempotency_key,
                status_callback=status_callback,
                capture=capture,
                status=status,
            )
        )
        return payment.sid
