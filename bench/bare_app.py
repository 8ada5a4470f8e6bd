"""The baseline: a bare Flask endpoint answering fixed TwiML, served with the same gunicorn settings."""

from flask import Flask, Response

app = Flask(__name__)

TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="http://127.0.0.1/twilio/voice/step?seq=1" '
    'finishOnKey="" input="dtmf" method="POST" numDigits="1" timeout="6"><Say language="en-US" '
    'voice="Polly.Joanna-Neural">To pay the full balance, press 1.</Say></Gather>'
    '<Redirect method="POST">http://127.0.0.1/twilio/voice/step?seq=1</Redirect></Response>'
)


@app.post("/<path:path>")
def fixed(path: str) -> Response:
    return Response(TWIML, mimetype="text/xml")


@app.get("/healthz")
def healthz() -> str:
    return "ok"
