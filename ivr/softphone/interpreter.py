"""Runs TwiML as Twilio's voice engine does: verb by verb, fetching the next document when told."""

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import urljoin

from .caller import CallerHangup, Keypad
from .network import wait_on_agent
from .pay import PayRun, PaySpec, twiml_int
from .session import Session, new_call_sid
from .transcript import Printer, Step

MAX_REQUESTS = 200  # a Redirect loop would otherwise never end
_NOT_EMULATED = {"Record", "Enqueue", "Leave", "Connect", "Refer", "Start", "Stop", "Sms", "Echo"}


class CallEnded(Exception):
    """The call is over: ``reason`` for the user, ``call_status`` for the status callback."""

    def __init__(self, reason: str, call_status: str = "completed") -> None:
        super().__init__(reason)
        self.reason = reason
        self.call_status = call_status


@dataclass
class Document:
    """A TwiML document being run and its URL (relative URLs resolve against it)."""

    url: str
    root: ET.Element
    step: Step


def _spoken(el: ET.Element) -> str:
    """The words of ``el``'s content as heard: SSML ``<say-as interpret-as="digits">`` spaced out
    digit by digit (so "4827" reads, and counts, as the four digits the caller hears), other tags dropped."""
    words = [el.text or ""]
    for child in el:
        if child.tag == "say-as" and child.get("interpret-as") in {"digits", "characters", "spell-out"}:
            words.append(" " + " ".join("".join(child.itertext()).replace(" ", "")) + " ")
        else:
            words.append(" " + _spoken(child) + " " if child.tag != "break" else " ")
        words.append(child.tail or "")
    return "".join(words)


def _pause_ms(el: ET.Element) -> int:
    """Milliseconds of SSML ``<break time="…">`` inside ``el`` (a break without a time counts 0)."""
    total = 0
    for node in el.iter("break"):
        time = node.get("time", "").strip()
        if time.endswith("ms") and time[:-2].isdigit():
            total += int(time[:-2])
        elif time.endswith("s") and time[:-1].replace(".", "", 1).isdigit():
            total += int(float(time[:-1]) * 1000)
    return total


def spoken_text(el: ET.Element) -> str:
    """An element's spoken text, SSML converted to the words heard and whitespace collapsed."""
    text = " ".join(_spoken(el).split())
    # A break or say-as next to punctuation leaves "1 2 3 ." : put the mark back on the word.
    for mark in ".,;:?!":
        text = text.replace(f" {mark}", mark)
    return text


class Interpreter:
    """Executes one call's TwiML against a caller, recording every step on the session."""

    def __init__(
        self,
        session: Session,
        caller,
        printer: Printer,
        *,
        dial_status: str = "completed",
        network=None,
        agent_wait_s: float = 120.0,
    ) -> None:
        self.session = session
        self.caller = caller
        self.printer = printer
        self.keypad = Keypad(caller.next_keys)
        self.dial_status = dial_status
        # With the Twilio stand-in: a dialled agent may redirect the call or run a Payments session.
        self.network = network
        self.agent_wait_s = agent_wait_s
        self.waited_s = 0.0  # pauses and Gather timeouts the simulation did not really wait for
        self.problems: list[str] = []

    def run(self, *, agent_first: bool = False) -> CallEnded:
        """Place the call and follow it to its end; ``agent_first``: the call is the agent line's."""
        try:
            if agent_first:
                # The member called the co-op's agents: the call has no TwiML of ours until an agent
                # redirects it (a transfer) or it ends.
                moved = wait_on_agent(self, self.agent_wait_s)
                if moved is None:
                    raise CallEnded("agent-hung-up")
                doc = moved
            else:
                doc = self.fetch("Voice URL", self.session.voice_url, "POST")
            while True:
                doc = self.execute(doc)
        except CallEnded as ended:
            return ended

    def fetch(
        self, purpose: str, url: str, method: str, extra: dict[str, str] | None = None
    ) -> Document:
        """Request the next TwiML document; an unusable answer ends the call as Twilio would."""
        if len(self.session.steps) >= MAX_REQUESTS:
            self.problems.append(
                f"the call made {MAX_REQUESTS} requests without ending (a Redirect loop?)"
            )
            raise CallEnded("too-many-requests")
        reply = self.session.request(purpose, url, method, extra)
        self.printer.step(reply.step)
        if reply.root is None:
            self.printer.line("  [en-US] We are sorry, an application error has occurred. Goodbye.")
            raise CallEnded("application-error")
        return Document(url, reply.root, reply.step)

    def execute(self, doc: Document) -> Document:
        """Run ``doc``'s verbs until one hands control to another document or ends the call."""
        for index, verb in enumerate(doc.root):
            handler = getattr(self, f"_{verb.tag.lower()}", None)
            if verb.tag in _NOT_EMULATED or handler is None:
                self._note(doc, f"<{verb.tag}> is not emulated by the softphone; skipped")
                continue
            following = handler(verb, doc, index)
            if following is not None:
                return following
        raise CallEnded("end-of-document")

    def _note(self, doc: Document, text: str) -> None:
        doc.step.notes.append(text)
        self.printer.line(f"  ({text})")

    def _say(self, el: ET.Element, doc: Document, index: int = 0) -> None:
        language = el.get("language", "en-US")
        said = {"language": language, "text": spoken_text(el)}
        if _pause_ms(el):
            said["pause_ms"] = str(_pause_ms(el))  # silence the caller also sits through
        doc.step.says.append(said)
        self.printer.say(language, spoken_text(el), el.get("loop", "1"))

    def _play(self, el: ET.Element, doc: Document, index: int = 0) -> None:
        what = f"DTMF {el.get('digits')}" if el.get("digits") else (el.text or "").strip()
        self.printer.line(f"  [plays {what}]")

    def _pause(self, el: ET.Element, doc: Document, index: int = 0) -> None:
        length = twiml_int(el.get("length"), 1)
        self.waited_s += length
        self.printer.line(f"  [pause {length} s]")

    def _gather(self, el: ET.Element, doc: Document, index: int) -> Document | None:
        for child in el:
            if child.tag in {"Say", "Play", "Pause"}:
                getattr(self, f"_{child.tag.lower()}")(child, doc)
            else:
                self._note(
                    doc,
                    f"<{child.tag}> cannot be nested in <Gather>; Twilio ignores it (12200)",
                )
        num_digits = twiml_int(el.get("numDigits"), 0) or None
        finish = el.get("finishOnKey", "#")
        timeout = twiml_int(el.get("timeout"), 5)
        hint = (
            f"numDigits {num_digits or 'any'}, finishOnKey {finish or 'none'}, timeout {timeout} s"
        )
        hears_speech = "speech" in (el.get("input") or "dtmf").split()
        try:
            got = self.keypad.gather(num_digits, finish, hint, hears_speech)
        except CallerHangup:
            doc.step.keys.append("(hung up)")
            self.printer.line("  > caller hangs up")
            raise CallEnded("caller-hung-up") from None
        if got.speech is not None:
            doc.step.keys.append(f'"{got.speech}"')
            self.printer.line(f'  > caller says "{got.speech}" (confidence {got.speech.confidence:.2f})')
            action = urljoin(doc.url, el.get("action") or "")
            params = {"SpeechResult": str(got.speech), "Confidence": f"{got.speech.confidence:.6f}"}
            return self.fetch("Gather action", action, el.get("method", "POST"), params)
        doc.step.keys.append(got.pressed or "(silence)")
        self.printer.line(
            f"  > caller pressed {got.pressed}" if got.pressed else f"  > silence ({timeout} s)"
        )
        if not got.finished_on_key and (num_digits is None or len(got.digits) < num_digits):
            self.waited_s += timeout
        if not got.digits and el.get("actionOnEmptyResult", "false").lower() != "true":
            self._note(doc, "no input: Twilio goes on with the next verb")
            return None
        action = urljoin(doc.url, el.get("action") or "")
        params = {"Digits": got.digits, "FinishedOnKey": got.finished_on_key}
        return self.fetch("Gather action", action, el.get("method", "POST"), params)

    def _redirect(self, el: ET.Element, doc: Document, index: int) -> Document:
        return self.fetch(
            "Redirect", urljoin(doc.url, (el.text or "").strip()), el.get("method", "POST")
        )

    def _dial(self, el: ET.Element, doc: Document, index: int) -> Document | None:
        targets = [spoken_text(child) for child in el] or [spoken_text(el)]
        status = self.dial_status
        self.printer.line(f"  [dial {', '.join(targets)}] dialed party: {status}")
        if self.network is not None and status == "completed":
            moved = wait_on_agent(self, self.agent_wait_s)
            if moved is not None:
                return moved
        action = el.get("action")
        if not action:
            self._note(
                doc, "the dialed call is over; without an action Twilio goes on with the next verb"
            )
            return None
        params = {
            "DialCallStatus": status,
            "DialCallSid": new_call_sid(),
            "DialCallDuration": "1" if status == "completed" else "0",
        }
        return self.fetch("Dial action", urljoin(doc.url, action), el.get("method", "POST"), params)

    def _hangup(self, el: ET.Element, doc: Document, index: int) -> None:
        raise CallEnded("hangup")

    def _reject(self, el: ET.Element, doc: Document, index: int) -> None:
        # Only a Reject that is the call's very first verb leaves the call unanswered.
        unanswered = index == 0 and doc.step.n == 1
        status = (
            ("busy" if el.get("reason") == "busy" else "no-answer") if unanswered else "completed"
        )
        raise CallEnded("rejected", status)

    def _pay(self, el: ET.Element, doc: Document, index: int) -> Document:
        spec = PaySpec.from_element(el, doc.url)
        run = PayRun(
            spec,
            self.caller,
            notify=lambda params: self._pay_status(spec, params),
            show=lambda prompt, field: self._pay_prompt(prompt, field, spec, doc),
            note=lambda text: self._note(doc, text),
        )
        params, hung_up = run.run()
        if not hung_up:
            return self.fetch("Pay action", spec.action, "POST", params)
        self.printer.line("  > caller hangs up during <Pay>")
        doc.step.keys.append("(hung up during <Pay>)")
        self.session.call_status = "completed"
        # Twilio still tells the action URL; what it answers can no longer be played to anyone.
        self.printer.step(self.session.request("Pay action", spec.action, "POST", params).step)
        raise CallEnded("caller-hung-up")

    def _pay_prompt(
        self, prompt: ET.Element | None, field: str, spec: PaySpec, doc: Document
    ) -> None:
        if prompt is None:
            self.printer.line(f"  [{spec.language}] (Twilio's own prompt for {field})")
            return
        for child in prompt:
            if child.tag in {"Say", "Play", "Pause"}:
                getattr(self, f"_{child.tag.lower()}")(child, doc)

    def _pay_status(self, spec: PaySpec, params: dict[str, str]) -> None:
        assert spec.status_callback
        reply = self.session.request(
            "Pay status callback",
            spec.status_callback,
            spec.status_callback_method,
            params,
            twiml=False,
        )
        self.printer.step(reply.step)
