"""Error handling at the edge: Twilio always hears TwiML, members are told sorry in their words,
APIs answer JSON, and nobody sees a stack trace.

When the database cannot be reached, nothing answers 500: a caller hears the apology, a member who
texted gets one by text, the reminder page says so in the member's language, and the APIs (the
agents', Stripe's webhook) answer 503 with ``Retry-After`` so their callers try again.
"""

import logging

from flask import Flask, Response, jsonify, make_response, request
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

from .extensions import db
from .voice.twiml import apology, xml_response

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30  # what a 503 asks callers to wait before trying again
# Staff pages answer in plain words; everything else that is not Twilio's or a member's is an API.
_STAFF_PAGES = ("/agent", "/ops")


def database_unavailable(exc: BaseException) -> bool:
    """The error says the database could not be reached (refused, gone away, pool exhausted, locked)."""
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and bool(exc.connection_invalidated)


def register(app: Flask) -> None:
    """Install the handlers: voice webhooks answer an apology + hang-up, members an apology in their
    words, others a JSON error (503 while the database is unreachable)."""

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        if isinstance(exc, HTTPException):
            if request.path.startswith("/api/"):
                return jsonify(error=exc.name.lower().replace(" ", "_"), message=exc.description), exc.code
            return exc
        try:
            db.session.rollback()
        except Exception:  # a connection that is gone cannot roll back; it is discarded anyway
            logger.warning("rollback failed after an error on %s", request.path)
        down = database_unavailable(exc)
        if down:  # an outage, not a bug: one line, no traceback per request
            logger.error("database unavailable on %s %s (call %s): %s", request.method, request.path,
                         _call_sid_for_log(), type(exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc).__name__)
        else:
            logger.exception("unhandled error on %s %s (call %s)", request.method, request.path, _call_sid_for_log())
        path = request.path
        if path.startswith("/twilio/voice"):
            # Twilio would otherwise say "an application error has occurred" and drop the caller.
            return xml_response(apology())
        if path.startswith("/twilio/sms"):
            from .reminders.inbound_sms import apology_reply

            return apology_reply()
        if path.startswith("/r/"):
            from .reminders.web import unavailable_page

            page = unavailable_page(503 if down else 500)
            return _retry_later(page) if down else page
        if not down:
            return jsonify(error="internal_error", message="Something went wrong; it has been logged."), 500
        if path.startswith(_STAFF_PAGES) and not path.startswith("/api/"):
            response = make_response("The service cannot reach its database just now. Please try again in a minute.", 503)
            response.mimetype = "text/plain"
        else:
            response = jsonify(error="unavailable", message="The service cannot reach its database just now; try again shortly.")
            response.status_code = 503
        return _retry_later(response)


def _retry_later(response: Response) -> Response:
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response.headers["Cache-Control"] = "no-store"
    return response


def _call_sid_for_log() -> str:
    """The request's CallSid for the log line, without letting a body that cannot be read raise again."""
    try:
        return request.form.get("CallSid", "-")
    except Exception:  # e.g. a body over the size limit: the handler must still answer
        return "-"
