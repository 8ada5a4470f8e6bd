"""How far a call got is noted by the step that saves it: the funnel /ops shows costs no extra query."""

from types import SimpleNamespace

from flows import State
from ivr.voice.call_rows import PATH_LIMIT, CallRow, apply


def step(call: CallRow, state: State) -> None:
    apply(call, SimpleNamespace(updates={}, state=state, final=False), "<Response/>")


def test_furthest_only_rises_and_the_path_keeps_the_order():
    call = CallRow(call_sid="CA1")
    step(call, State.ENTER_ACCOUNT)
    assert call.furthest is None
    call.account_id = 7
    step(call, State.SUMMARY)
    step(call, State.CARD_ENTRY)
    step(call, State.CARD_DECLINED)
    assert call.furthest == "card_entry"
    step(call, State.CONFIRMATION)
    step(call, State.GOODBYE)
    assert call.furthest == "paid"
    assert call.path == ["ENTER_ACCOUNT", "SUMMARY", "CARD_ENTRY", "CARD_DECLINED", "CONFIRMATION", "GOODBYE"]


def test_a_looping_caller_keeps_the_start_and_the_end_of_the_path():
    call = CallRow(call_sid="CA2")
    step(call, State.WELCOME)
    for _ in range(100):
        step(call, State.ENTER_ACCOUNT)
    step(call, State.NO_MATCH)
    assert len(call.path) == PATH_LIMIT and call.path[0] == "WELCOME" and call.path[-1] == "NO_MATCH"


def test_a_real_call_saves_its_path_and_how_far_it_got(app, client, make_account, stripe_api):
    import sqlalchemy as sa
    from helpers import ZIP, CallActions

    from ivr.extensions import db
    from ivr.models import CallSession

    make_account()
    call = CallActions(client)
    call.start()
    call.silence()  # no language key: English
    call.press("1")  # the account on this phone
    call.press(ZIP)  # its service ZIP code
    assert "To pay in full, press 1" in call.said()
    with app.app_context():
        row = db.session.scalars(sa.select(CallSession)).one()
        assert row.furthest == "heard_balance"
        assert row.path[-1] == "SUMMARY"
