"""The caller-ID path's second factor: the service ZIP code, else the full account number; never
the phone's last four, which a spoofed caller ID already holds."""

import pytest
import sqlalchemy as sa
from helpers import ZIP, CallActions

from ivr.extensions import db
from ivr.models import VerificationFailure, utcnow
from ivr.voice import identity

pytestmark = pytest.mark.usefixtures("stripe_api")

ASK_ZIP = {"en": "enter the ZIP code of the service address",
           "es": "marque el código postal del servicio"}
ASK_ACCOUNT = {"en": "enter the full account number from your bill", "es": "marque el número de cuenta completo"}
MISS = {"en": "Sorry, that didn't match our records. Let's try again.",
        "es": "Lo sentimos, eso no coincide con nuestros registros. Intentemos de nuevo."}
BALANCE = {"en": "Your balance is", "es": "Su saldo es"}


def offered(client, lang="en", **call):
    """A call from the phone on file that takes the caller-ID offer (1)."""
    call = CallActions(client, **call)
    call.start()
    call.press("2") if lang == "es" else call.silence()
    call.press("1")
    return call


def failures(app):
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(VerificationFailure))


@pytest.mark.parametrize("lang", ["en", "es"])
def test_caller_id_asks_for_the_zip_code_and_the_right_one_hears_the_balance(client, make_account, lang):
    make_account()
    call = offered(client, lang)
    assert ASK_ZIP[lang] in call.said() and "last four" not in call.said()
    assert call.root.xpath("./Gather/@numDigits") == ["5"]
    call.press(ZIP)
    assert BALANCE[lang] in call.said()


@pytest.mark.parametrize("lang", ["en", "es"])
def test_without_a_zip_on_file_caller_id_asks_for_the_full_account_number(client, make_account, lang):
    make_account(zip=None)
    call = offered(client, lang)
    assert ASK_ACCOUNT[lang] in call.said()
    assert call.root.xpath("./Gather/@finishOnKey") == ["#"]
    call.press("12345001")
    assert BALANCE[lang] in call.said()


def test_a_spoofed_caller_id_with_the_phones_last_four_never_hears_the_balance(app, client, make_account):
    make_account()
    call = offered(client)  # the member's number, spoofed: caller ID gives away its last four
    call.press("0143")
    assert call.said().startswith("Please enter the five digits of the ZIP code.")
    assert "Your balance" not in call.said()


def test_without_a_zip_the_phones_last_four_is_a_wrong_account_number(app, client, make_account):
    make_account(zip=None)
    call = offered(client)
    call.press("0143")
    assert call.said().startswith(MISS["en"]) and "Your balance" not in call.said()
    assert failures(app) == 1


def test_a_wrong_zip_and_a_locked_account_sound_the_same_and_both_count(app, client, make_account):
    account_id = make_account()
    wrong = offered(client)
    wrong.press("99999")
    assert wrong.said().startswith(MISS["en"])
    assert failures(app) == 1

    with app.app_context():
        for _ in range(identity.LOCK_THRESHOLD):  # someone guessed at it from elsewhere a moment ago
            db.session.add(VerificationFailure(account_id=account_id, call_sid="CAguess", created_at=utcnow()))
        db.session.commit()
    locked = offered(client)
    locked.press(ZIP)  # the right ZIP while locked
    assert locked.said() == wrong.said()
    assert failures(app) == identity.LOCK_THRESHOLD + 2


def test_three_wrong_answers_end_the_call_like_the_keyed_path(client, make_account):
    make_account()
    call = offered(client)
    call.press("99999")  # back to the account number
    call.press("12345001")
    call.press("1111")  # the keyed path's last four, wrong
    call.press("12345001")
    call.press("2222")
    assert "Your balance" not in call.said() and not call.root.xpath("./Gather")


@pytest.mark.parametrize("factor", ["last4", "zip", "account"])
def test_every_factor_does_the_same_work_on_a_miss(app, make_account, monkeypatch, factor):
    """Read the account, read its failures, write one failure: whichever factor, known account or not."""
    make_account()
    reads = []
    real_fetch = identity.fetch
    monkeypatch.setattr(identity, "fetch", lambda statement, params: reads.append(statement) or real_fetch(statement, params))
    with app.app_context():
        for number, answer in (("12345001", "00000"), ("99999999", ZIP)):
            reads.clear()
            before = db.session.scalar(sa.select(sa.func.count()).select_from(VerificationFailure))
            assert identity.verify(number, answer, "CA1", factor=factor) is None
            after = db.session.scalar(sa.select(sa.func.count()).select_from(VerificationFailure))
            assert len(reads) == 2 and after == before + 1
