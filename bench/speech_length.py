"""How long a member listens: the words of a full-balance payment by phone, in English and Spanish.

    .venv/bin/python bench/speech_length.py [--wpm 150] [--show]

Places real calls with the softphone (``ivr call``'s engine) against the app on a throw-away
SQLite database holding the demo accounts, with the sandbox gateway: a member whose caller ID is
on file pays the whole balance with a Visa, and a member calling from an unknown number does the
same after keying the account number. Counts every ``<Say>`` the caller hears on that path,
``<Pay>`` prompts included, exactly as the transcript shows them (SSML converted to the words
heard: a ``<say-as interpret-as="digits">`` confirmation number is as many words as digits; tags
are not words), converts to seconds at ``--wpm`` words a minute and adds the SSML ``<break>``
pauses. Also counts the prompts (answers with something to hear) before the balance is said, and
prints each figure against the targets of issue 13. An agent is configured
(``AGENT_TRANSFER_NUMBER``), so the call says the longer "0 for a person" help: the worst case.
``--show`` prints each prompt with its word count.
"""

import argparse
import io
import json
import logging
import os
import re
import sys
import tempfile
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from werkzeug.serving import make_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CARD = "4242424242424242,12/34,123,20001"
BALANCE_CENTS = 104875  # Grace Lindqvist's balance in the demo accounts
# Issue 13's targets for a full-balance payment: seconds of speech per language, prompts before the balance.
TARGET_SECONDS = {"en": 50.0, "es": 58.0}
TARGET_PROMPTS_BEFORE_BALANCE = 3
WORD = re.compile(r"[\w$.,'’-]+", re.UNICODE)


@dataclass(frozen=True)
class Path_:
    """One way through the call: who calls, in which language, which keys they press."""

    name: str
    language: str
    caller: str
    keys: str


def _words(text: str) -> int:
    # "$84.17" and "4242" are one word each as printed; a speaker says more, which the
    # prompts should avoid anyway (digits as digits, amounts once).
    return len(WORD.findall(text))


def _serve(database_url: str):
    os.environ.update(
        DATABASE_URL=database_url, PAYMENT_GATEWAY="sandbox", SMS_SENDER="sandbox", IVR_ENV="development",
        AGENT_TRANSFER_NUMBER="+12025550100",
    )
    from ivr import create_app
    from ivr.billing.accounts_csv import import_accounts
    from ivr.demo import demo_accounts_csv
    from ivr.extensions import db
    from ivr.migrate import upgrade

    upgrade(database_url)
    app = create_app()
    with app.app_context():
        import_accounts(db.session, io.StringIO(demo_accounts_csv(date.today())))
        db.session.commit()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    app.config["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def measure(url: str, path: Path_, show: bool, wpm: float) -> tuple[int, float, int]:
    """Place the call; return (words, seconds, prompts before the balance)."""
    from ivr.softphone import place_call

    result = place_call(url, from_=path.caller, keys=path.keys, cards=[CARD], out=io.StringIO())
    if result.problems:
        raise SystemExit(f"{path.name}: the call hit an application error: {result.problems}")
    from prompts import speech

    balance = speech.money(BALANCE_CENTS, path.language)
    words = 0
    pause_s = 0.0
    prompts_before_balance: int | None = None
    heard_so_far = []
    for step in result.steps:
        heard = " ".join(say["text"] for say in step.says).strip()
        if not heard:
            continue
        count = _words(heard)
        words += count
        pause_s += sum(int(say.get("pause_ms", 0)) for say in step.says) / 1000
        if prompts_before_balance is None and balance in heard:
            prompts_before_balance = len(heard_so_far)
        heard_so_far.append(heard)
        if show:
            print(f"  {count:3d}  {heard}")
    if not _paid(heard_so_far):
        raise SystemExit(f"{path.name}: the call did not reach a confirmation; keys {path.keys!r} are stale")
    return words, words / wpm * 60 + pause_s, prompts_before_balance if prompts_before_balance is not None else -1


def _paid(heard: list[str]) -> bool:
    last = heard[-1].lower() if heard else ""
    return "confirmation" in last or "confirmación" in last


def main() -> None:
    """Print the words and seconds of a full-balance payment in English and Spanish."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wpm", type=float, default=150.0)
    parser.add_argument("--show", action="store_true", help="print every prompt with its word count")
    parser.add_argument("--paths", default="", help="JSON list of [name, language, caller, keys] to measure")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the server's request log is not what this script reports
    paths = PATHS
    if args.paths:
        paths = [Path_(*p) for p in json.loads(args.paths)]
    print(f"{'path':44} {'words':>6} {'seconds':>8} {'target s':>9} {'prompts before balance':>23} {'target':>7}")
    missed = []
    for path in paths:
        # A fresh database per call, so every path pays the same demo account's same balance.
        with tempfile.TemporaryDirectory() as tmp:
            server = _serve(f"sqlite:///{tmp}/speech.db")
            if args.show:
                print(f"{path.name}:")
            words, seconds, before = measure(f"http://127.0.0.1:{server.server_port}", path, args.show, args.wpm)
            target = TARGET_SECONDS.get(path.language)
            met = (target is None or seconds <= target) and 0 <= before <= TARGET_PROMPTS_BEFORE_BALANCE
            if not met:
                missed.append(path.name)
            print(f"{path.name:44} {words:6d} {seconds:8.1f} {target or 0:9.1f} {before:23d} "
                  f"{'<= ' + str(TARGET_PROMPTS_BEFORE_BALANCE):>7} {'met' if met else 'MISSED'}")
            server.shutdown()
    print(f"at {args.wpm:g} words a minute, pauses (<break>) included; "
          + ("every target met" if not missed else f"targets missed: {', '.join(missed)}"))


# Keys for today's flow; when the flow changes, these change with it (the script says when they
# no longer reach a confirmation).
PATHS = [
    # Grace Lindqvist's $1,048.75: the caller ID is on file; the script ends (the caller hangs
    # up) once the confirmation has been heard.
    Path_("English, caller ID on file, full balance", "en", "+12025550127", "_ 1 20016 1"),
    Path_("Spanish, caller ID on file, full balance", "es", "+12025550127", "2 1 20016 1"),
]

if __name__ == "__main__":
    main()
