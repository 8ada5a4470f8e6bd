"""What the caller heard and what was sent: steps, the call's result, and the live terminal view."""

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

# Parameters every request carries; the text view prints them once, not on every step.
STANDARD_PARAMS = frozenset(
    {
        "AccountSid",
        "ApiVersion",
        "CallSid",
        "CallStatus",
        "Called",
        "Caller",
        "Direction",
        "From",
        "To",
    }
)
# Twilio posts the expiry in clear text; the transcript still never shows it.
REDACTED_PARAMS = {"ExpirationDate": "xxxx"}


@dataclass
class Step:
    """One HTTP request the softphone made as Twilio, and what the caller did with its answer."""

    n: int
    purpose: str
    method: str
    url: str
    sent_to: str
    params: dict[str, str]
    status: int | None = None
    ms: int = 0
    content_type: str = ""
    says: list[dict[str, str]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problem: str | None = None


@dataclass
class CallResult:
    """The whole simulated call: steps, how it ended, and the application errors it hit."""

    call_sid: str
    from_: str
    to: str
    voice_url: str
    steps: list[Step] = field(default_factory=list)
    end_reason: str = ""
    duration_s: int = 0
    call_problems: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        """Every application error, in the order they happened."""
        return [s.problem for s in self.steps if s.problem] + self.call_problems

    @property
    def exit_code(self) -> int:
        """0 for a clean call, 1 when the server gave Twilio something it would reject."""
        return 1 if self.problems else 0

    @property
    def says(self) -> list[str]:
        """Every prompt's text, in the order the caller heard them."""
        return [say["text"] for step in self.steps for say in step.says]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view of the call."""
        return {
            "call_sid": self.call_sid,
            "from": self.from_,
            "to": self.to,
            "voice_url": self.voice_url,
            "steps": [asdict(step) for step in self.steps],
            "end_reason": self.end_reason,
            "duration_s": self.duration_s,
            "problems": self.problems,
            "exit_code": self.exit_code,
        }

    def to_json(self) -> str:
        """The call as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)


def redact(params: dict[str, str]) -> dict[str, str]:
    """``params`` as the transcript may show them (no expiry)."""
    return {k: REDACTED_PARAMS.get(k, v) if v else v for k, v in params.items()}


def espeak_voice(language: str) -> str:
    """The espeak-ng voice closest to a TwiML language tag."""
    lang = language.lower()
    if lang.startswith("es") and lang != "es-es":
        return "es-419"  # Latin American Spanish, as es-US and es-MX callers hear it
    if lang in {"en-us", "en-gb", "es-es", "fr-fr", "pt-br"}:
        return lang
    return lang.split("-")[0] or "en-us"


class Printer:
    """Shows the call live as the caller experiences it; may speak prompts with espeak-ng."""

    def __init__(self, stream: TextIO, *, speak: bool = False) -> None:
        self.stream = stream
        self.espeak = shutil.which("espeak-ng") if speak else None
        if speak and not self.espeak:
            self.line("(--speak: espeak-ng is not installed, so prompts are shown but not spoken)")

    def line(self, text: str) -> None:
        """Print one line of the live view."""
        print(text, file=self.stream, flush=True)

    def say(self, language: str, text: str, loop: str = "1") -> None:
        """Show (and maybe speak) a ``<Say>`` the way the caller hears it."""
        repeat = (
            ""
            if loop in {"", "1"}
            else (" (repeats until the call ends)" if loop == "0" else f" (x{loop})")
        )
        self.line(f"  [{language}] {text}{repeat}")
        if self.espeak:
            subprocess.run(
                [self.espeak, "-v", espeak_voice(language), text],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=120,
                check=False,
            )

    def step(self, step: Step) -> None:
        """Show a request and how the server answered it."""
        extra = " ".join(f"{k}={v}" for k, v in step.params.items() if k not in STANDARD_PARAMS)
        via = f" via {step.sent_to}" if step.sent_to != step.url else ""
        answer = f"{step.status} {step.content_type}".strip() if step.status else "no answer"
        self.line(f"step {step.n}  {step.purpose}: {step.method} {step.url}{via}")
        if extra:
            self.line(f"  sent {extra}")
        self.line(f"  answer {answer} in {step.ms} ms")
        if step.problem:
            self.line(f"  !! {step.problem}")

    def summary(self, result: CallResult) -> None:
        """The closing lines: how the call ended and what went wrong."""
        slowest = max((s.ms for s in result.steps), default=0)
        self.line(
            f"call ended: {result.end_reason} after {result.duration_s} s; "
            f"{len(result.steps)} requests, slowest {slowest} ms"
        )
        for problem in result.problems:
            self.line(f"application error: {problem}")
