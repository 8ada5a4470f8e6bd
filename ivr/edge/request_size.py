"""How large a request body may be, refused (413) before anything reads or parses it.

Werkzeug checks ``max_content_length`` when the body is first asked for: a ``Content-Length``
above it is refused without reading a byte. Url-encoded forms get no other protection (Werkzeug's
``max_form_memory_size`` covers multipart fields only), so without a limit a 30 MB form would be
read and parsed whole. A body streamed without a length (``Transfer-Encoding: chunked``) is not
refused by Werkzeug but silently cut at the limit, and the cut body parsed: ``StreamedBodyLimit``
reads such a body first, one byte past the limit at most, and refuses it whole when it is larger.

The sizes follow the largest bodies the service is sent (docs/architecture.md, "Request sizes"):

- Stripe, ``POST /stripe/webhook``: the largest event we subscribe to is a dispute's. Its evidence
  text may hold 150,000 characters in all (Stripe's dispute-update limit) and its metadata 50 keys
  of 40 characters with values of 500 (about 27,000 more). Even with every character escaped as
  ``\\uXXXX`` (6 bytes) that stays near 1.06 MB; 2 MiB leaves room for the rest of the object and for
  fields Stripe adds. Every other body the app takes (staff forms, the agents' JSON) is a few KB.
- Twilio, the voice and SMS webhooks (form-encoded): the largest is an incoming text, whose
  ``Body`` holds at most 1,600 characters. Percent-encoded, a 4-byte UTF-8 character takes 12
  bytes: 19,200 bytes, plus up to ten ``MediaUrl`` parameters and some 30 others (under 5 KB).
  Voice webhooks (``<Pay>`` results, status callbacks) are under 4 KB. 64 KiB is about three
  times the largest, for the parameters Twilio adds without notice.
"""

import io
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, request
from werkzeug.exceptions import RequestEntityTooLarge

MAX_BODY_BYTES = 2 * 1024 * 1024  # app-wide: Stripe's largest event, doubled
TWILIO_MAX_BODY_BYTES = 64 * 1024  # Twilio's webhooks: an incoming 1,600-character text, tripled


def init_app(app: Flask) -> None:
    """Refuse any body over ``MAX_BODY_BYTES`` (a ``MAX_CONTENT_LENGTH`` given to ``create_app`` wins)."""
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # Flask's own default is None: no limit at all
        app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.wsgi_app = StreamedBodyLimit(app.wsgi_app, lambda: app.config["MAX_CONTENT_LENGTH"])  # type: ignore[method-assign]


class StreamedBodyLimit:
    """WSGI middleware: a chunked body over the limit is refused (413), one within it gets a length.

    With a ``Content-Length`` in hand, Werkzeug refuses the body unread when it is too large; so the
    streamed body is read here (never more than the limit and one byte) and handed on as a body
    of known length, and every check after this one is that same check.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], limit: Callable[[], int]) -> None:
        self.app = app
        self.limit = limit

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        streamed = not environ.get("CONTENT_LENGTH") and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if streamed:
            limit = self.limit()
            body = _read_at_most(environ["wsgi.input"], limit + 1)
            if len(body) > limit:
                return RequestEntityTooLarge()(environ, start_response)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)


def _read_at_most(stream: Any, size: int) -> bytes:
    chunks, left = [], size
    while left > 0:
        chunk = stream.read(min(left, 64 * 1024))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def limit_to_twilio() -> None:
    """Hold this request's body to Twilio's size; call before the form is first read."""
    current = request.max_content_length
    request.max_content_length = TWILIO_MAX_BODY_BYTES if current is None else min(current, TWILIO_MAX_BODY_BYTES)
