"""How long one identification takes, per factor and outcome, in the same run: a miss must cost what
a match costs, whichever factor (last four, ZIP, full account number) and whether the account exists.

    .venv/bin/python bench/second_factor_timing.py [--database-url URL] [--rounds N]

Prints the median microseconds of ``identity.verify`` for each case, and each case's ratio to the
first (a wrong ZIP for an existing account, the baseline). Without ``--database-url`` it uses a
temporary SQLite file. Each round rolls back, so no lockout builds up.
"""

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr import create_app  # noqa: E402
from ivr.extensions import db  # noqa: E402
from ivr.models import Account  # noqa: E402
from ivr.voice import identity  # noqa: E402

CASES = [
    ("zip, wrong", "12345001", "99999", "zip"),
    ("zip, right", "12345001", "20005", "zip"),
    ("zip, no such account", "99999999", "20005", "zip"),
    ("account, wrong", "12345001", "12345009", "account"),
    ("account, right", "12345001", "12345001", "account"),
    ("last4, wrong", "12345001", "9999", "last4"),
    ("last4, no such account", "99999999", "0143", "last4"),
]


def main() -> None:
    """Time every case ``--rounds`` times, interleaved so drift hits them all alike."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/timing.sqlite3"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "PUBLIC_BASE_URL": "https://pay.example.coop",
                      "PAYMENT_GATEWAY": "sandbox", "SMS_SENDER": "sandbox"})
    logging.getLogger("ivr").setLevel(logging.WARNING)  # each miss logs a line; not what is measured
    times: dict[str, list[float]] = {name: [] for name, *_ in CASES}
    with app.app_context():
        db.create_all()
        db.session.add(Account(account_number="12345001", name="Pat Member", phone="+12025550143",
                               balance_cents=12345, zip="20005"))
        db.session.commit()
        for _ in range(args.rounds):
            for name, number, answer, factor in CASES:
                started = time.perf_counter()
                identity.verify(number, answer, "CA" + "0" * 32, factor=factor)
                times[name].append(time.perf_counter() - started)
                db.session.rollback()  # no failure kept: the lockout never starts
        if args.database_url is None:
            db.drop_all()
    base = statistics.median(times[CASES[0][0]])
    print(f"identity.verify, median of {args.rounds} rounds ({url.split(':')[0]}):")
    for name, *_ in CASES:
        median = statistics.median(times[name])
        print(f"  {name:<24} {median * 1e6:8.0f} µs   x{median / base:.2f}")


if __name__ == "__main__":
    main()
