"""Error handling at the edge: Twilio always hears TwiML, nobody sees a stack trace."""

import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from .extensions import db
from .voice.twiml import apology, xml_response

logger = logging.getLogger(__name__)


def register(app: Flask) -> None:
    """Install the handlers: voice webhooks answer an apology + hang-up, others a JSON error."""

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        if isinstance(exc, HTTPException):
            if request.path.startswith("/api/"):
                return jsonify(error=exc.name.lower().replace(" ", "_"), message=exc.description), exc.code
            return exc
        db.session.rollback()
        logger.exception("unhandled error on %s %s (call %s)", request.method, request.path, request.form.get("CallSid", "-"))
        if request.path.startswith("/twilio/voice"):
            # Twilio would otherwise say "an application error has occurred" and drop the caller.
            return xml_response(apology())
        if request.path.startswith("/twilio/sms"):
            return xml_response("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response />")
        return jsonify(error="internal_error", message="Something went wrong; it has been logged."), 500
