"""The declared statuses of transfers and assisted sessions, walked through the one writer of each."""

import ast
import itertools
from pathlib import Path

import pytest

from ivr.agents import assisted, statuses, transfers
from ivr.agents.models import Agent, AssistedPayment, Transfer
from ivr.extensions import db

AGENTS = Path(__file__).resolve().parents[2] / "ivr" / "agents"


def reachable(table):
    seen, todo = {table.initial}, [table.initial]
    while todo:
        for target in table.moves[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


@pytest.mark.parametrize(
    ("table", "active", "final", "model"),
    [
        (statuses.TRANSFER, statuses.TRANSFER_ACTIVE, statuses.TRANSFER_FINAL, Transfer),
        (statuses.ASSISTED, statuses.ASSISTED_ACTIVE, statuses.ASSISTED_FINAL, AssistedPayment),
    ],
    ids=["transfer", "assisted"],
)
def test_statuses_are_all_reachable_and_split_into_active_and_final(table, active, final, model):
    assert reachable(table) == table.statuses
    assert set(active) | set(final) == table.statuses and not set(active) & set(final)
    assert model.__table__.c.status.default.arg == table.initial
    assert table.moves["approved"] == frozenset()  # money taken is never undone by a status


def test_status_table_refuses_an_undeclared_target():
    with pytest.raises(ValueError, match="paid"):
        statuses.StatusTable(initial="new", moves={"new": frozenset({"paid"})})


def _status_literals(path):
    """Every ``status="..."`` keyword the module passes to a call."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "status" and isinstance(keyword.value, ast.Constant):
                    yield node, keyword.value.value


def test_every_status_the_code_writes_is_declared():
    written = {"transfer": set(), "assisted": set()}
    for path in AGENTS.glob("*.py"):
        for call, status in _status_literals(path):
            name = ast.unparse(call.func)
            if name in ("change", "transfers.change", "Transfer"):
                written["transfer"].add(status)
            elif name in ("_touch", "AssistedPayment"):
                written["assisted"].add(status)

    assert written["transfer"] <= statuses.TRANSFER.statuses
    assert written["assisted"] <= statuses.ASSISTED.statuses
    # The scan found the writers (a renamed writer would make the checks above vacuous).
    assert {"in_pay", "approved", "failed"} <= written["transfer"]
    assert {"ready", "processing", "approved", "cancelled"} <= written["assisted"]


@pytest.fixture
def agent_and_account(app, make_account):
    account_id = make_account()
    with app.app_context():
        agent = Agent(name="Dana", key_hash="0" * 64, signing_secret="1" * 64)
        db.session.add(agent)
        db.session.commit()
        yield agent.id, account_id


def all_pairs(table):
    return list(itertools.product(sorted(table.statuses), repeat=2))


def test_transfer_change_walks_declared_moves_and_refuses_the_rest(agent_and_account):
    agent_id, account_id = agent_and_account
    transfer = Transfer(id="tr_walk", agent_id=agent_id, account_id=account_id, call_sid="CA1",
                        amount_cents=750, status="waiting")
    db.session.add(transfer)
    db.session.flush()
    refused = []
    for current, new in all_pairs(statuses.TRANSFER):
        transfer.status, transfer.reason, version = current, None, transfer.version  # set-up, not a move
        changed = transfers.change(transfer, status=new, reason=f"to {new}")
        declared = new in statuses.TRANSFER.moves[current]
        if declared or new == current:
            assert changed and transfer.status == new and transfer.version == version + 1, (current, new)
        else:
            assert not changed and transfer.status == current and transfer.version == version, (current, new)
            refused.append((current, new))
    assert ("approved", "waiting") in refused and ("waiting", "approved") in refused


def test_assisted_touch_walks_declared_moves_and_refuses_the_rest(agent_and_account):
    agent_id, account_id = agent_and_account
    row = AssistedPayment(id="ap_walk", agent_id=agent_id, account_id=account_id, call_sid="CA1",
                          amount_cents=750, status="starting", fields={}, actions=0)
    db.session.add(row)
    db.session.flush()
    refused = []
    for current, new in all_pairs(statuses.ASSISTED):
        row.status, row.reason, version = current, None, row.version  # set-up, not a move
        moved = assisted._touch(row, status=new, reason=f"to {new}")
        if new in statuses.ASSISTED.moves[current] or new == current:
            assert moved and (row.status, row.reason) == (new, f"to {new}") and row.version == version + 1
        else:
            assert not moved and (row.status, row.reason, row.version) == (current, None, version), (current, new)
            refused.append((current, new))
    assert ("approved", "failed") in refused and ("processing", "capturing") in refused
