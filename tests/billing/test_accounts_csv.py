import io
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from ivr.billing.accounts_csv import CsvImportError, import_accounts, normalise_account_number
from ivr.cli import main
from ivr.models import Account

SAMPLE = Path(__file__).parent / "data" / "accounts_sample.csv"
DEMO = Path(__file__).parents[2] / "ivr" / "demo_accounts.csv"
HEADER = "account_number,name,phone,balance,due_date,email,language\n"


def csv_bytes(*lines: str, header: str = HEADER) -> io.BytesIO:
    return io.BytesIO((header + "".join(line + "\n" for line in lines)).encode("utf-8"))


def accounts(session) -> dict[str, Account]:
    return {a.account_number: a for a in session.scalars(sa.select(Account))}


def test_import_sample_stores_normalised_values(session):
    with SAMPLE.open("rb") as stream:
        report = import_accounts(session, stream)

    assert (report.created, report.updated, report.unchanged) == (10, 0, 0)
    stored = accounts(session)
    assert len(stored) == 10
    first = stored["10234001"]  # dash removed
    assert first.phone == "+12025550143"
    assert first.balance_cents == 8417
    assert first.due_date == date(2026, 12, 1)
    assert first.language == "en"
    assert stored["10587001"].language == "es"
    assert stored["10587001"].name == "Rosa Martínez"
    assert stored["10611003"].phone == "+12025550112"
    assert stored["10611003"].past_due_cents == 14235
    assert stored["10611003"].email is None
    assert stored["10742001"].balance_cents == -2500  # credit
    assert stored["10742001"].language == "en"  # empty means English
    assert stored["10803001"].status == "no_ivr_payments"
    assert stored["10955002"].name == "Lindqvist, Grace"
    assert stored["10955002"].balance_cents == 104875
    assert stored["11020001"].balance_cents == 29  # 0.29 is not 28 cents
    assert stored["11020001"].phone == "+13055550181"
    assert stored["11136001"].due_date is None
    assert stored["11136001"].status == "closed"
    assert stored["1124700"].balance_cents == 6420
    assert stored["1124700"].status == "active"


def test_import_reads_excel_utf8_with_bom(session):
    data = "\ufeff" + HEADER + "12345-001,José Núñez,(202) 555-0143,10.00,2026-12-01,,es\n"

    report = import_accounts(session, io.BytesIO(data.encode("utf-8")))

    assert report.created == 1
    assert accounts(session)["12345001"].name == "José Núñez"


def test_import_accepts_a_text_stream(session):
    stream = io.StringIO("\ufeff" + HEADER + "12345-001,Ann Lee,2025550143,1.00,2026-12-01,,\n")

    assert import_accounts(session, stream).created == 1


def test_reimport_counts_updated_and_unchanged(session):
    original = SAMPLE.read_text(encoding="utf-8")
    import_accounts(session, io.StringIO(original))

    changed = original.replace(
        "10234-001,Margaret Ellison,(202) 555-0143,84.17",
        "10234-001,Margaret Ellison,(202) 555-0143,0.00",
    )
    changed += "11300-001,New Member,(202) 555-0177,45.00,2026-12-20,,en,0.00,active\n"
    report = import_accounts(session, io.StringIO(changed))

    assert (report.created, report.updated, report.unchanged) == (1, 1, 9)
    stored = accounts(session)
    assert stored["10234001"].balance_cents == 0
    assert stored["11300001"].name == "New Member"
    assert len(stored) == 11


def test_reimport_without_optional_columns_keeps_status_and_past_due(session):
    import_accounts(session, io.StringIO(SAMPLE.read_text(encoding="utf-8")))

    report = import_accounts(
        session, csv_bytes("11136-001,Beverly Nguyen,(202) 555-0154,0.00,,b.nguyen@example.com,en")
    )

    assert report.unchanged == 1
    assert accounts(session)["11136001"].status == "closed"


def test_bad_rows_are_all_reported_and_nothing_is_written(session):
    import_accounts(
        session, csv_bytes("10000-001,Existing Member,(202) 555-0101,10.00,2026-12-01,,en")
    )
    bad = csv_bytes(
        "10000-001,Existing Member,(202) 555-0101,99.00,2026-12-01,,en",  # line 2: good update
        "10000-002,Bad Phone,555-0143,10.00,2026-12-01,,en",  # line 3
        "10000-003,Good New,(202) 555-0103,10.00,2026-12-01,,en",  # line 4
        "10000-004,Three Decimals,(202) 555-0104,10.005,2026-12-01,,en",  # line 5
        "",  # line 6: blank rows are skipped but still counted
        "10000-005,Bad Date,(202) 555-0105,10.00,12/01/2026,,en",  # line 7
        "10000-006,Bad Language,(202) 555-0106,10.00,2026-12-01,,fr",  # line 8
        "12-34-5,Bad Number,(202) 555-0107,10.00,2026-12-01,,en",  # line 9
        "10000-008,Short Row,(202) 555-0108,10.00",  # line 10
    )

    with pytest.raises(CsvImportError) as caught:
        import_accounts(session, bad)

    lines = [line for line, _ in caught.value.errors]
    assert lines == [3, 5, 7, 8, 9, 10]
    messages = dict(caught.value.errors)
    assert messages[3].startswith("phone")
    assert messages[5].startswith("balance")
    assert messages[7].startswith("due_date")
    assert messages[8].startswith("language")
    assert messages[9].startswith("account_number")
    stored = accounts(session)
    assert list(stored) == ["10000001"]
    assert stored["10000001"].balance_cents == 1000


def test_one_row_with_several_problems_reports_each(session):
    with pytest.raises(CsvImportError) as caught:
        import_accounts(session, csv_bytes("10000-001,,not a phone,ten,2026-02-30,,en"))

    assert [line for line, _ in caught.value.errors] == [2, 2, 2, 2]
    assert [message.split(":")[0] for _, message in caught.value.errors] == [
        "name",
        "phone",
        "balance",
        "due_date",
    ]


def test_error_messages_do_not_echo_phone_or_account_numbers(session):
    with pytest.raises(CsvImportError) as caught:
        import_accounts(session, csv_bytes("98765-4321-1,Ann Lee,(202) 555-0,1.00,2026-12-01,,en"))

    text = " ".join(message for _, message in caught.value.errors)
    assert "98765" not in text
    assert "555-0" not in text


def test_missing_required_column_is_reported_on_line_one(session):
    header = "account_number,name,balance,due_date,email\n"

    with pytest.raises(CsvImportError) as caught:
        import_accounts(session, csv_bytes("12345-001,Ann Lee,1.00,2026-12-01,", header=header))

    assert caught.value.errors == [(1, "missing required column(s): phone, language")]
    assert accounts(session) == {}


def test_empty_file_is_refused(session):
    with pytest.raises(CsvImportError) as caught:
        import_accounts(session, io.BytesIO(b""))

    assert caught.value.errors[0][0] == 1


def test_duplicate_account_in_file_is_refused(session):
    data = csv_bytes(
        "12345-001,Ann Lee,(202) 555-0143,1.00,2026-12-01,,en",
        "12345-002,Ann Lee,(202) 555-0143,2.00,2026-12-01,,en",
        "12345001,Ann Lee,(202) 555-0143,3.00,2026-12-01,,en",
    )

    with pytest.raises(CsvImportError) as caught:
        import_accounts(session, data)

    assert caught.value.errors == [(4, "account_number repeats line 2")]
    assert accounts(session) == {}


def test_invalid_utf8_is_reported_with_its_line(session):
    data = (HEADER + "12345-001,Ann Lee,2025550143,1.00,2026-12-01,,en\n").encode() + (
        "12345-002,Jos\u00e9,2025550144,1.00,2026-12-01,,en\n".encode("latin-1")
    )

    with pytest.raises(CsvImportError) as caught:
        import_accounts(session, io.BytesIO(data))

    assert caught.value.errors[0][0] == 3


def test_negative_past_due_is_refused(session):
    header = HEADER.strip() + ",past_due\n"

    with pytest.raises(CsvImportError) as caught:
        import_accounts(
            session,
            csv_bytes("12345-001,Ann Lee,2025550143,1.00,2026-12-01,,en,-5.00", header=header),
        )

    assert caught.value.errors[0][1].startswith("past_due")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12345-001", "12345001"), ("12345001", "12345001"), (" 12345-001 ", "12345001"), ("7", "7")],
)
def test_normalise_account_number_accepts(text, expected):
    assert normalise_account_number(text) == expected


@pytest.mark.parametrize(
    "text", ["", "-", "12345-", "-001", "12-34-5", "12345 001", "A12345", "12345-00l", "1" * 33]
)
def test_normalise_account_number_refuses(text):
    with pytest.raises(ValueError):
        normalise_account_number(text)


def test_large_import_uses_bulk_statements(session):
    """A 100,000-row export must not cost a database round trip per row."""
    rows = [
        f"{20000 + i}-001,Member {i},(202) 555-01{i % 100:02d},{i}.50,2026-12-01,,en"
        for i in range(3000)
    ]
    import_accounts(session, csv_bytes(*rows))
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    engine = session.get_bind()
    rows[0] = rows[0].replace("0.50", "1.50")
    rows.append("99999-001,Newcomer,(202) 555-0100,1.00,2026-12-01,,en")
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        report = import_accounts(session, csv_bytes(*rows))
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)

    assert (report.created, report.updated, report.unchanged) == (1, 1, 3000 - 1)
    assert len(statements) < 20


def test_demo_accounts_file_imports(session):
    with DEMO.open("rb") as stream:
        report = import_accounts(session, stream)

    stored = list(accounts(session).values())
    assert report.created == len(stored) >= 5
    assert any(a.language == "es" for a in stored)
    assert any(a.past_due_cents > 0 for a in stored)
    assert any(a.balance_cents < 0 for a in stored)
    assert any(a.status == "no_ivr_payments" for a in stored)
    phones = [a.phone for a in stored]
    assert any(phones.count(p) > 1 for p in phones)
    assert all(p.startswith("+1") and p[-4:-2] == "01" and p[5:8] == "555" for p in phones)


def test_import_command_prints_summary(session, database_url):
    import_accounts(
        session, csv_bytes("10234-001,Margaret Ellison,(202) 555-0143,80.00,2026-12-01,,en")
    )

    result = CliRunner().invoke(main, ["accounts", "import", str(SAMPLE)], env={"DATABASE_URL": database_url})

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Imported 10 accounts: 9 new, 1 updated, 0 unchanged"


def test_import_command_lists_bad_lines_and_exits_1(session, database_url, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        HEADER
        + "12345-001,Ann Lee,(202) 555-0143,1.00,2026-12-01,,en\n"
        + "12345-002,Bob Lee,(202) 555-0144,1.001,2026-12-01,,en\n"
        + "12345-003,Cy Lee,(202) 555-0145,1.00,2026-12-01,,de\n",
        encoding="utf-8",
    )

    result = CliRunner().invoke(main, ["accounts", "import", str(path)], env={"DATABASE_URL": database_url})

    assert result.exit_code == 1
    assert result.stdout == ""
    err = result.stderr.splitlines()
    assert err[0].startswith("line 3: balance")
    assert err[1].startswith("line 4: language")
    assert session.scalar(sa.select(sa.func.count()).select_from(Account)) == 0


def test_import_command_counts_one_account_and_one_problem_in_the_singular(session, database_url, tmp_path):
    good = tmp_path / "one.csv"
    good.write_text(HEADER + "12345-001,Ann Lee,(202) 555-0143,1.00,2026-12-01,,en\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "12345-002,Bob Lee,(202) 555-0144,1.001,2026-12-01,,en\n", encoding="utf-8")
    env = {"DATABASE_URL": database_url}

    imported = CliRunner().invoke(main, ["accounts", "import", str(good)], env=env)
    refused = CliRunner().invoke(main, ["accounts", "import", str(bad)], env=env)

    assert imported.stdout == "Imported 1 account: 1 new, 0 updated, 0 unchanged\n"
    assert refused.exit_code == 1
    assert refused.stderr.splitlines()[-1] == "1 problem on 1 line; nothing was imported"


def test_the_zip_column_is_optional_takes_zip_plus_4_and_keeps_a_stored_zip_when_absent(session):
    header = HEADER.strip() + ",zip\n"
    import_accounts(session, csv_bytes("12345-001,Ann Lee,2025550143,1.00,2026-12-01,,en,02134-5678",
                                       "12345-002,Bo Lee,2025550144,1.00,2026-12-01,,en,", header=header))
    assert accounts(session)["12345001"].zip == "02134"  # the leading zero kept, ZIP+4 cut to five
    assert accounts(session)["12345002"].zip is None  # no ZIP: the caller-ID path asks for the account number

    report = import_accounts(session, csv_bytes("12345-001,Ann Lee,2025550143,1.00,2026-12-01,,en"))
    assert report.unchanged == 1 and accounts(session)["12345001"].zip == "02134"


@pytest.mark.parametrize("zip_code", ["2134", "021345", "ABCDE", "02134-56"])
def test_a_zip_that_is_not_five_digits_is_refused_not_guessed(session, zip_code):
    header = HEADER.strip() + ",zip\n"
    with pytest.raises(CsvImportError) as caught:
        import_accounts(session, csv_bytes(f"12345-001,Ann Lee,2025550143,1.00,2026-12-01,,en,{zip_code}", header=header))
    assert caught.value.errors == [(2, f"zip: {zip_code!r} is not a five-digit ZIP code")]
    assert accounts(session) == {}
