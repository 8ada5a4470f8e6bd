"""``ivr call``: a terminal softphone that calls the server exactly as Twilio would."""

from .call import place_call
from .command import call_command
from .transcript import CallResult

__all__ = ["CallResult", "call_command", "place_call"]
