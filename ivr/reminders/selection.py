"""The reminder run: pick the bills to remind, then queue one text per bill in the outbox.

A bill is an (account, due date) pair. ``Reminder``'s unique constraint is the "one reminder per
bill" rule, so re-runs and concurrent runs queue nothing twice. Texts go out through the outbox
and ``ivr worker``, which holds them in quiet hours and drops them if the bill is paid first.
"""

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

import prompts
from prompts import amounts, dates

from ..extensions import db
from ..models import Account
from ..outbox.models import OutboxMessage
from ..terminal.words import count
from . import clock, tokens
from .models import Reminder, SmsOptOut
from .settings import Settings, settings

# Why an account with a bill in the window gets no text, in the order the rules are checked.
SKIP_REASONS = ("inactive", "nothing_due", "no_phone", "opted_out", "already_reminded", "limit")
# The same reasons as the operator reads them after a count ("2 opted out").
SKIP_WORDS = {
    "inactive": "account not active",
    "nothing_due": "nothing due",
    "no_phone": "no phone on file",
    "opted_out": "opted out",
    "already_reminded": "already reminded",
    "limit": "over --limit",
}
CHUNK = 2000


@dataclass(frozen=True)
class Bill:
    """An account's current bill as the run sees it."""

    account_id: int
    phone: str
    language: str
    balance_cents: int
    due_date: date


@dataclass
class RunReport:
    """What a run did: ``selected`` bills in the window, ``queued`` texts, ``skipped`` by reason."""

    selected: int = 0
    queued: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    dry_run: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        """One line for the terminal: ``Queued 1 reminder for 2 bills in the window; skipped 1 (1 opted out) in 0.2 s``."""
        verb = "Dry run: would queue" if self.dry_run else "Queued"
        reasons = ", ".join(
            f"{self.skipped[reason]} {SKIP_WORDS[reason]}" for reason in SKIP_REASONS if self.skipped[reason]
        )
        skipped = sum(self.skipped.values())
        return (
            f"{verb} {count(self.queued, 'reminder')} for {count(self.selected, 'bill')} in the window; "
            f"skipped {skipped}"
            + (f" ({reasons})" if reasons else "")
            + f" in {self.seconds:.1f} s"
        )


def window(today: date, *, days_before: int, past_due: bool) -> sa.ColumnElement[bool]:
    """Bills due within ``days_before`` days (``today <= due <= today + N``), or past due."""
    if past_due:
        return Account.due_date < today
    return Account.due_date.between(today, today + timedelta(days=days_before))


def classify(today: date, *, days_before: int, past_due: bool) -> sa.Select[Any]:
    """Every account with a bill in the window, with the first rule it fails (None: remind it)."""
    opted_out = (
        sa.select(SmsOptOut.id)
        .where(SmsOptOut.phone == Account.phone, SmsOptOut.opted_out.is_(True))
        .exists()
    )
    reminded = (
        sa.select(Reminder.id)
        .where(Reminder.account_id == Account.id, Reminder.due_date == Account.due_date)
        .exists()
    )
    reason = sa.case(
        (Account.status != "active", "inactive"),
        (Account.balance_cents <= 0, "nothing_due"),
        (sa.func.coalesce(Account.phone, "") == "", "no_phone"),
        (opted_out, "opted_out"),
        (reminded, "already_reminded"),
        else_=sa.null(),
    )
    return (
        sa.select(
            Account.id,
            Account.phone,
            Account.language,
            Account.balance_cents,
            Account.due_date,
            reason.label("reason"),
        )
        .where(
            Account.due_date.is_not(None), window(today, days_before=days_before, past_due=past_due)
        )
        .order_by(Account.due_date, Account.id)
    )


def reminder_body(cfg: Settings, bill: Bill, kind: str, token: str) -> str:
    """The text for ``bill`` in the member's language."""
    lang = prompts.language(bill.language)
    return prompts.text(
        f"sms.reminder_{kind}",
        lang,
        org=cfg.org,
        amount=amounts.dollars(bill.balance_cents),
        due=dates.short_date(bill.due_date, lang),
        link=f"{cfg.public_base_url}/r/{token}",
    )


def _insert(
    model: type, rows: Sequence[dict[str, Any]], conflict: list[str], returning: Any
) -> list[Any]:
    """INSERT … ON CONFLICT DO NOTHING RETURNING ``returning`` for the rows actually inserted."""
    if db.session.get_bind().dialect.name == "postgresql":
        return _insert_unnest(model, rows, conflict, returning)
    stmt = sqlite.insert(model).on_conflict_do_nothing(index_elements=conflict).returning(returning)
    return list(db.session.execute(stmt, list(rows)).scalars())


def _insert_unnest(
    model: type, rows: Sequence[dict[str, Any]], conflict: list[str], returning: Any
) -> list[Any]:
    # One statement with one array per column: a multi-row VALUES list of thousands of
    # parameters spends most of its time being parsed by the driver, this does not.
    table = model.__table__  # type: ignore[attr-defined]
    first = rows[0]
    varying = [name for name in first if any(row[name] != first[name] for row in rows)]
    constant = [name for name in first if name not in varying]
    if not varying:  # a single row: any column will do as the array
        varying, constant = [constant[0]], constant[1:]
    source = (
        sa.func.unnest(
            *[
                sa.bindparam(
                    f"u_{name}",
                    [row[name] for row in rows],
                    type_=postgresql.ARRAY(table.c[name].type),
                )
                for name in varying
            ]
        )
        .table_valued(*varying)
        .render_derived()
    )
    values = [source.c[name] for name in varying] + [
        sa.literal(first[name], table.c[name].type) for name in constant
    ]
    stmt = (
        postgresql.insert(table)
        .from_select(varying + constant, sa.select(*values))
        .on_conflict_do_nothing(index_elements=conflict)
        .returning(returning)
    )
    return list(db.session.execute(stmt).scalars())


def run(
    *,
    days_before: int = 3,
    past_due: bool = False,
    dry_run: bool = False,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
    on_text: Callable[[Bill, str], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    respect_quiet_hours: bool = True,
) -> RunReport:
    """Queue one reminder per bill in the window; ``progress(n)`` after each chunk of ``n``.

    ``respect_quiet_hours=False`` (``ivr demo --send-reminders`` only) lets the worker send them
    at once, so a link can be tried at 4 am.

    ``on_start(count)`` is told how many texts are about to be queued; ``on_text(bill, body)``
    sees each text (the dry run prints them: its links carry a placeholder, not a real token).
    """
    started = time.monotonic()
    cfg = settings()
    now = clock.now()
    today = now.astimezone(ZoneInfo(cfg.org_timezone)).date()
    kind = "past_due" if past_due else "upcoming"
    report = RunReport(dry_run=dry_run)

    eligible: list[Bill] = []
    for row in db.session.execute(classify(today, days_before=days_before, past_due=past_due)):
        report.selected += 1
        if row.reason is not None:
            report.skipped[row.reason] += 1
            continue
        if limit is not None and len(eligible) >= limit:
            report.skipped["limit"] += 1
            continue
        eligible.append(Bill(row.id, row.phone, row.language, row.balance_cents, row.due_date))
    db.session.rollback()  # end the read transaction before the writes below
    if on_start:
        on_start(len(eligible))

    for start in range(0, len(eligible), CHUNK):
        chunk = eligible[start : start + CHUNK]
        if dry_run:
            placeholder = "x" * tokens.TOKEN_LENGTH
            for bill in chunk:
                if on_text:
                    on_text(bill, reminder_body(cfg, bill, kind, placeholder))
            report.queued += len(chunk)
        else:
            queued = _queue_chunk(cfg, chunk, kind, now, on_text, respect_quiet_hours)
            report.queued += queued
            # Another run claimed these bills between our read and our write.
            if queued < len(chunk):
                report.skipped["already_reminded"] += len(chunk) - queued
        if progress:
            progress(len(chunk))
    report.seconds = time.monotonic() - started
    return report


def _queue_chunk(
    cfg: Settings,
    chunk: list[Bill],
    kind: str,
    now: datetime,
    on_text: Callable[[Bill, str], None] | None,
    respect_quiet_hours: bool = True,
) -> int:
    """Claim the chunk's bills and queue their texts in one transaction; return how many."""
    claimed = set(
        _insert(
            Reminder,
            [
                {
                    "account_id": b.account_id,
                    "due_date": b.due_date,
                    "kind": kind,
                    "to_number": b.phone,
                    "balance_cents": b.balance_cents,
                    "created_at": now,
                }
                for b in chunk
            ],
            ["account_id", "due_date"],
            Reminder.account_id,
        )
    )
    messages = []
    for bill in chunk:
        if bill.account_id not in claimed:
            continue  # another run got this bill between our read and our write
        body = reminder_body(
            cfg, bill, kind, tokens.issue(cfg.secret_key, bill.account_id, bill.phone, now)
        )
        messages.append(
            {
                "dedupe_key": f"reminder:{bill.account_id}:{bill.due_date.isoformat()}",
                "kind": "reminder",
                "to_number": bill.phone,
                "body": body,
                "account_id": bill.account_id,
                "status": "queued",
                "respect_quiet_hours": respect_quiet_hours,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
        )
        if on_text:
            on_text(bill, body)
    if messages:
        _insert(OutboxMessage, messages, ["dedupe_key"], OutboxMessage.id)
    db.session.commit()
    return len(claimed)
