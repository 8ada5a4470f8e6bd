"""The billing system's accounts CSV: validate every row, then upsert them all in one transaction.

Format: contract.md, "Accounts CSV". Accounts missing from the file are left as they are.
"""

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import IO, Any

import phonenumbers
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..models import Account
from ..terminal.words import count

REQUIRED_COLUMNS = ("account_number", "name", "phone", "balance", "due_date", "email", "language")
OPTIONAL_COLUMNS = ("past_due", "status", "zip")
LANGUAGES = ("en", "es")
STATUSES = ("active", "no_ivr_payments", "closed")

_ACCOUNT_NUMBER = re.compile(r"\d+(?:-\d+)?")
# Billing exports sometimes format money as "$1,234.56"; more than two decimals is refused
# rather than rounded, because a rounded balance is a wrong bill.
_DOLLARS = re.compile(r"(-)?\$?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ZIP = re.compile(r"([0-9]{5})(?:-[0-9]{4})?")  # ZIP+4 is accepted; the five digits are kept
_MAX_ACCOUNT_DIGITS = 32  # Account.account_number is String(32)
_MAX_CENTS = 100_000_000_000  # a billion dollars: anything larger is a broken export
_SMALL_FILE = 500  # rows; below this, look accounts up by number instead of reading them all


class CsvImportError(Exception):
    """The file was refused; ``errors`` lists every ``(line_number, message)``, header = line 1."""

    def __init__(self, errors: list[tuple[int, str]]):
        self.errors = sorted(errors, key=lambda item: item[0])
        lines = len({line for line, _ in self.errors})
        super().__init__(f"{count(len(self.errors), 'problem')} on {count(lines, 'line')}; nothing was imported")


@dataclass(frozen=True)
class ImportReport:
    """How many accounts an import created, changed and found already up to date."""

    created: int
    updated: int
    unchanged: int

    @property
    def total(self) -> int:
        """Every account in the file."""
        return self.created + self.updated + self.unchanged

    def summary(self) -> str:
        """One sentence for the operator: ``Imported 7 accounts: 7 new, 0 updated, 0 unchanged``."""
        return f"Imported {count(self.total, 'account')}: {self.created} new, {self.updated} updated, {self.unchanged} unchanged"


def normalise_account_number(text: str) -> str:
    """Return the account number as keyed (``"12345-001"`` -> ``"12345001"``).

    :raises ValueError: anything but digits with at most one dash before the trailing digits.
    """
    value = text.strip()
    if not _ACCOUNT_NUMBER.fullmatch(value):
        raise ValueError(
            "account number must be digits, with at most one dash before the last digits"
        )
    digits = value.replace("-", "")
    if len(digits) > _MAX_ACCOUNT_DIGITS:
        raise ValueError(f"account number is longer than {_MAX_ACCOUNT_DIGITS} digits")
    return digits


def import_accounts(session: Session, stream: IO[bytes] | IO[str]) -> ImportReport:
    """Validate every row of ``stream``, then create or update the accounts and commit.

    :raises CsvImportError: listing every bad line; nothing is written.
    """
    rows, has_columns = _parse(stream)
    return _upsert(session, rows, has_columns)


def _parse(stream: IO[bytes] | IO[str]) -> tuple[list[dict[str, Any]], set[str]]:
    """Read and check the whole file, returning clean rows and which optional columns it has."""
    records = _records(stream)
    try:
        header_line, header = next(records)
    except StopIteration:
        raise CsvImportError([(1, "the file is empty; expected a header row")]) from None
    columns = [name.strip().lower() for name in header]
    errors: list[tuple[int, str]] = []
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        errors.append((header_line, "missing required column(s): " + ", ".join(missing)))
    repeated = sorted({name for name in columns if name and columns.count(name) > 1})
    if repeated:
        errors.append((header_line, "column(s) appear more than once: " + ", ".join(repeated)))
    if errors:
        raise CsvImportError(errors)

    index = {
        name: columns.index(name) for name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS if name in columns
    }
    rows: list[dict[str, Any]] = []
    first_seen: dict[str, int] = {}
    for line, record in records:
        if not any(cell.strip() for cell in record):
            continue  # spreadsheets leave trailing blank rows
        if len(record) != len(columns):
            errors.append((line, f"expected {len(columns)} fields, found {len(record)}"))
            continue
        cells = {name: record[i].strip() for name, i in index.items()}
        row, problems = _clean(cells)
        number = row.get("account_number")
        if number is not None:
            if number in first_seen:
                problems.append(f"account_number repeats line {first_seen[number]}")
            else:
                first_seen[number] = line
        errors.extend((line, problem) for problem in problems)
        if not problems:
            rows.append(row)
    if errors:
        raise CsvImportError(errors)
    return rows, {name for name in OPTIONAL_COLUMNS if name in index}


def _records(stream: IO[bytes] | IO[str]) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line, fields)`` per record; a record is one spreadsheet row even across newlines."""
    text = _decode(stream.read())
    reader = csv.reader(io.StringIO(text, newline=""))
    line = 0
    try:
        for record in reader:
            line += 1
            yield line, record
    except csv.Error as exc:
        raise CsvImportError([(line + 1, f"unreadable CSV: {exc}")]) from None


def _decode(data: bytes | str) -> str:
    """Text of the file, without the byte-order mark Excel writes."""
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CsvImportError([(line, "not UTF-8 text; save the file as CSV UTF-8")]) from None


def _clean(cells: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Convert one row's cells into Account column values, collecting every problem."""
    row: dict[str, Any] = {}
    problems: list[str] = []

    def check(column: str, convert: Callable[[str], Any]) -> None:
        if column not in cells:
            return
        try:
            row[column] = convert(cells[column])
        except ValueError as exc:
            problems.append(f"{column}: {exc}")

    check("account_number", normalise_account_number)
    check("name", _name)
    check("phone", _phone)
    check("balance", _cents)
    check("due_date", _due_date)
    check("email", _email)
    check("language", lambda text: _choice(text, LANGUAGES))
    check("past_due", _past_due)
    check("status", lambda text: _choice(text, STATUSES))
    check("zip", _zip_code)
    if "balance" in row:
        row["balance_cents"] = row.pop("balance")
    if "past_due" in row:
        row["past_due_cents"] = row.pop("past_due")
    return row, problems


def _name(text: str) -> str:
    if not text:
        raise ValueError("is empty")
    if len(text) > 200:
        raise ValueError("is longer than 200 characters")
    return text


def _phone(text: str) -> str:
    # The number itself is never echoed: error output ends up in logs and tickets.
    if not text:
        raise ValueError("is empty")
    try:
        number = phonenumbers.parse(text, "US")
    except phonenumbers.NumberParseException:
        raise ValueError("is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _cents(text: str) -> int:
    match = _DOLLARS.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not an amount in dollars with at most two decimals")
    sign, whole, fraction = match.groups()
    # Decimal, never float: 0.29 dollars must be 29 cents, not 28.999…
    cents = int(Decimal(whole.replace(",", "") + "." + (fraction or "0")) * 100)
    if cents >= _MAX_CENTS:
        raise ValueError(f"{text!r} is implausibly large")
    return -cents if sign else cents


def _past_due(text: str) -> int:
    if not text:
        return 0
    cents = _cents(text)
    if cents < 0:
        raise ValueError(f"{text!r} is negative")
    return cents


def _due_date(text: str) -> date | None:
    # Empty is allowed: an account with nothing owed may have no current bill.
    if not text:
        return None
    if not _ISO_DATE.fullmatch(text):
        raise ValueError(f"{text!r} is not a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a real date") from None


def _zip_code(text: str) -> str | None:
    # Empty is allowed: without a ZIP the caller-ID path asks for the full account number.
    if not text:
        return None
    match = _ZIP.fullmatch(text)
    if not match:
        # Spreadsheets drop leading zeros ("2134" for 02134): refused, never guessed.
        raise ValueError(f"{text!r} is not a five-digit ZIP code")
    return match.group(1)


def _email(text: str) -> str | None:
    if not text:
        return None
    if len(text) > 254 or " " in text or text.count("@") != 1:
        raise ValueError("is not an email address")
    return text


def _choice(text: str, allowed: tuple[str, ...]) -> str:
    value = text.lower()
    if not value:
        return allowed[0]
    if value not in allowed:
        raise ValueError(f"{text!r} is not one of " + ", ".join(allowed))
    return value


def _upsert(session: Session, rows: list[dict[str, Any]], has_columns: set[str]) -> ImportReport:
    """Insert new accounts and update changed ones in bulk, then commit once."""
    fields = ["name", "phone", "balance_cents", "due_date", "email", "language"]
    # An optional column the file lacks leaves the stored value alone rather than resetting it.
    fields += [f"{name}_cents" if name == "past_due" else name for name in sorted(has_columns)]
    existing = _existing(session, [row["account_number"] for row in rows], fields)
    now = datetime.now(UTC)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    unchanged = 0
    for row in rows:
        current = existing.get(row["account_number"])
        if current is None:
            inserts.append(
                {
                    "past_due_cents": 0,
                    "status": "active",
                    **row,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        elif current[1:] != tuple(row[field] for field in fields):
            updates.append({"id": current[0], **{f: row[f] for f in fields}, "updated_at": now})
        else:
            unchanged += 1
    try:
        if inserts:
            session.execute(sa.insert(Account), inserts)
        if updates:
            session.execute(sa.update(Account), updates)
        session.commit()
    except Exception:
        session.rollback()
        raise
    # Bulk statements bypass the identity map; make loaded Accounts re-read what was written.
    session.expire_all()
    return ImportReport(created=len(inserts), updated=len(updates), unchanged=unchanged)


def _existing(
    session: Session, numbers: list[str], fields: list[str]
) -> dict[str, tuple[Any, ...]]:
    """``(id, *fields)`` of the stored accounts among ``numbers``, by account number: one query."""
    stmt = sa.select(Account.account_number, Account.id, *(getattr(Account, f) for f in fields))
    # A full export is most of the table, so one scan beats many IN lists; PostgreSQL also
    # plans a long IN list as a full scan per chunk when the table was just bulk-loaded and
    # has no statistics yet (minutes for 100,000 rows).
    if len(numbers) <= _SMALL_FILE:
        stmt = stmt.where(Account.account_number.in_(numbers))
    wanted = set(numbers)
    return {row[0]: tuple(row[1:]) for row in session.execute(stmt) if row[0] in wanted}
