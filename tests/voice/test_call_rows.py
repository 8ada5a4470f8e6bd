"""A menu step is saved without a row lock: what happens when another request writes the call meanwhile.

Each test makes the other request land *inside* a step, between its read of the call's row and its
save, by running it from the flow engine (a nested, fully committed request on its own session).
"""

import pytest
import sqlalchemy as sa
from helpers import BASE, ZIP, CallActions

import flows
from ivr.extensions import db
from ivr.models import CallSession, VerificationFailure
from ivr.voice import webhooks as voice


def call_row(app, call_sid):
    with app.app_context():
        return db.session.scalar(sa.select(CallSession).where(CallSession.call_sid == call_sid))


@pytest.fixture
def interrupt_next_step(monkeypatch):
    """``interrupt_next_step(fn)``: run ``fn()`` inside the next step, after its read, once."""
    pending = []
    real_advance = flows.advance

    def advance(state, event, ctx):
        if pending:
            pending.pop()()
        return real_advance(state, event, ctx)

    monkeypatch.setattr(voice.flows, "advance", advance)
    return pending.append


def start_at_summary(client):
    call = CallActions(client)
    call.start()
    call.silence()  # English
    call.press("1")  # the account ending in 5 0 0 1
    call.press(ZIP)
    assert "To pay in full, press 1" in call.said()
    return call


def test_status_callback_during_a_step_is_kept_and_the_step_still_advances(app, client, make_account,
                                                                           interrupt_next_step):
    make_account()
    call = start_at_summary(client)
    seq_before = call_row(app, call.call_sid).seq
    other = CallActions(client, call_sid=call.call_sid)
    interrupt_next_step(lambda: other.post(f"{BASE}/twilio/voice/status", other.params(CallStatus="completed")))

    call.press("2")  # another amount

    assert "Enter the amount in dollars" in call.said()
    row = call_row(app, call.call_sid)
    assert row.call_status == "completed" and row.ended_at is not None  # not overwritten by the step
    assert row.state == "ENTER_AMOUNT" and row.seq == seq_before + 1


def test_same_keypress_delivered_twice_at_once_advances_the_call_once(app, client, make_account,
                                                                      interrupt_next_step):
    make_account()
    call = start_at_summary(client)
    seq_before = call_row(app, call.call_sid).seq
    url = call.gather_action()
    twin = CallActions(client, call_sid=call.call_sid)
    interrupt_next_step(lambda: twin.post(url, twin.params(Digits="2")))

    call.press("2")

    assert "Enter the amount in dollars" in call.said()
    assert call.said() == twin.said()  # both deliveries hear the same answer
    row = call_row(app, call.call_sid)
    assert row.state == "ENTER_AMOUNT" and row.seq == seq_before + 1


def test_wrong_last_four_delivered_twice_at_once_counts_one_failure(app, client, make_account,
                                                                    interrupt_next_step):
    make_account()
    call = CallActions(client, from_="+13125550199")  # not the phone on file: manual entry
    call.start()
    call.silence()
    call.press("12345001")
    url = call.gather_action()
    twin = CallActions(client, call_sid=call.call_sid, from_=call.from_)
    interrupt_next_step(lambda: twin.post(url, twin.params(Digits="9999")))

    call.press("9999")

    assert call.said() == twin.said()
    with app.app_context():
        failures = db.session.scalar(sa.select(sa.func.count()).select_from(VerificationFailure))
    assert failures == 1  # the losing delivery's failure was rolled back with its answer


def test_two_greetings_of_one_call_at_once_create_one_row(app, client, make_account, monkeypatch):
    make_account()
    call = CallActions(client)
    twin = CallActions(client, call_sid=call.call_sid)
    real_start = voice.start_call
    calls_made = []

    def start_call(row, state):
        if not calls_made:
            calls_made.append(1)
            twin.start()  # the same call's greeting, answered and committed first
        return real_start(row, state)

    monkeypatch.setattr(voice, "start_call", start_call)
    call.start()

    assert "Thanks for calling" in call.said() and call.said() == twin.said()
    with app.app_context():
        rows = db.session.scalars(sa.select(CallSession).where(CallSession.call_sid == call.call_sid)).all()
    assert len(rows) == 1 and rows[0].seq == 1


def test_the_voice_webhooks_leave_every_commit_to_call_rows():
    # One owner of the commit on the hot path: a webhook ends with call_rows.commit_answer/release.
    from pathlib import Path

    wing = Path(__file__).resolve().parents[2] / "ivr" / "voice"
    for path in wing.glob("*.py"):
        if path.name == "call_rows.py":
            continue
        source = path.read_text()
        assert "session.commit(" not in source and "session.rollback(" not in source, path.name
