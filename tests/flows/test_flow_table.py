"""The flow table is well formed, every prompt exists in both languages, and the README shows it."""

import ast
import re
from pathlib import Path

import pytest

import prompts
from flows import ENTRY_POINTS, FLOW, INITIAL, Entry, Keys, Pay, State
from flows.engine import KeyPress, PayOutcome, Silence, advance, start
from flows.render import markdown
from flows.steps import STAR, AccountView

ROOT = Path(__file__).resolve().parents[2]


def test_every_state_has_a_step_and_every_target_exists():
    assert set(FLOW) == set(State)
    for state, step in FLOW.items():
        for target in step.on.values():
            assert target in FLOW, (state, target)


def test_every_way_in_has_an_entry_point_in_the_table():
    assert set(ENTRY_POINTS) == set(Entry)
    for entry, state in ENTRY_POINTS.items():
        assert state in FLOW, entry
        assert not FLOW[state].final, entry  # a call must not end before it has begun
    assert INITIAL == ENTRY_POINTS[Entry.SELF_SERVICE]


def test_every_state_is_reachable_from_an_entry_point():
    engine_targets = {State.AGENT, State.NO_INPUT, State.TOO_MANY_ATTEMPTS}  # the engine's global exits
    seen, todo = set(), [*ENTRY_POINTS.values(), *engine_targets]
    while todo:
        state = todo.pop()
        if state in seen:
            continue
        seen.add(state)
        step = FLOW[state]
        todo.extend(step.on.values())
        if step.on_silence:
            todo.append(step.on_silence)
    assert seen == set(FLOW)


def test_final_steps_expect_nothing_and_others_have_a_way_out():
    for state, step in FLOW.items():
        if step.final:
            assert step.expect is None and not step.on, state
        else:
            assert step.on, state
            assert step.expect is not None or step.route is not None, state


def test_one_key_menus_only_list_single_keys():
    for state, step in FLOW.items():
        if isinstance(step.expect, Keys) and step.expect.num_digits == 1 and step.decide is None:
            assert all(len(label) == 1 and label in "0123456789*#" for label in step.on), state


def test_prompt_catalogues_have_identical_keys_and_placeholders():
    en, es = prompts.catalog("en"), prompts.catalog("es")
    assert set(en) == set(es)
    for key in en:
        assert prompts.placeholders(en[key]) == prompts.placeholders(es[key]), key


def test_every_prompt_key_the_flow_names_exists():
    source = (ROOT / "flows").glob("*.py")
    named = set()
    for path in source:
        named |= set(re.findall(r'Prompt\("([a-z0-9_]+)"', path.read_text()))
    for step in FLOW.values():
        if not callable(step.say):
            named |= set(step.say)
    named |= {"silence_reprompt", "invalid_key"}
    missing = named - set(prompts.catalog("en"))
    assert not missing


def test_no_prompt_is_too_long_to_sit_through():
    for lang in prompts.LANGUAGES:
        for key, value in prompts.catalog(lang).items():
            assert len(value) <= 320, (lang, key)


@pytest.mark.parametrize("package", ["flows", "payments", "prompts"])
def test_inner_packages_do_not_import_each_other_or_the_web_layer(package):
    forbidden = {"flows", "payments", "prompts", "ivr", "flask", "sqlalchemy"} - {package}
    if package == "payments":
        forbidden -= {"sqlalchemy"}
    for path in (ROOT / package).glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden, (path.name, name)


def test_only_the_adapters_import_the_sdks():
    importers = {"twilio": set(), "stripe": set()}
    for path in ROOT.glob("*/**/*.py"):
        if path.parts[len(ROOT.parts)] in {"tests", ".venv", "bench", "build"}:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods = [node.module]
            else:
                continue
            for mod in mods:
                top = mod.split(".")[0]
                if top in importers:
                    importers[top].add(str(path.relative_to(ROOT)))
    assert importers["twilio"] == {"ivr/twilio/adapter.py"}
    assert importers["stripe"] == {"payments/stripe_gateway.py"}


def test_flow_table_render_names_every_entry_point():
    intro = markdown().split("\n", 1)[0]
    for entry, state in ENTRY_POINTS.items():
        assert f"{entry.value} → `{state.value}`" in intro


def test_readme_flow_table_matches_the_code():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- flow-table -->")[1].split("<!-- /flow-table -->")[0]
    assert block.strip() == markdown().strip()


class FakeLaterDesk:
    """Paying later with nothing scheduled and autopay off, today 2026-12-01 (a bill due 2026-12-05)."""

    def view(self):
        from datetime import date

        from flows.steps import LaterView
        return LaterView(today=date(2026, 12, 1), autopay=False, autopay_first_due=date(2026, 12, 5))

    def schedule(self, amount_cents, pay_on):
        return None

    def cancel_scheduled(self, scheduled_id):
        return "gone"

    def enrol_autopay(self, terms):
        return False

    def stop_autopay(self):
        return False


class FakeContext:
    """A 10-line CallContext for engine tests."""

    def __init__(self, data=None, accounts=(), agent=False, correct=("12345001", "0143"), fee=0, paid=()):
        self.data = dict(data or {})
        self.agent_available = agent
        self.min_payment_cents = 100
        self.max_payment_cents = None
        self.convenience_fee_cents = fee
        self.longer_key_waits = False
        self._accounts = list(accounts)
        self._correct = correct
        self._paid = list(paid)
        self.identified = None
        self.card = None  # the account's card on file: CardOnFile(brand, last4)
        self.later = FakeLaterDesk()

    def caller_accounts(self):
        return self._accounts

    def account(self):
        return self.identified or (self._accounts[0] if self._accounts else None)

    def card_on_file(self):
        return self.card

    def verify(self, number, last4, factor="last4"):
        ok = factor == "last4" and (number, last4) == self._correct
        if ok:
            self.identified = AccountView(number, 5000, 0, None, "en", "active")
        return ok

    def recent_payments(self, limit):
        return self._paid[:limit]


def test_engine_walks_from_greeting_to_card_entry_without_io():
    ctx = FakeContext()
    turn = start(Entry.SELF_SERVICE, ctx)
    assert turn.state == State.WELCOME and isinstance(turn.expect, Keys)
    turn = advance(turn.state, Silence(), ctx)
    assert turn.state == State.ENTER_ACCOUNT
    ctx.data.update(turn.updates)
    turn = advance(turn.state, KeyPress("12345001"), ctx)
    ctx.data.update(turn.updates)
    turn = advance(turn.state, KeyPress("0143"), ctx)
    assert turn.state == State.SUMMARY
    ctx.data.update(turn.updates)
    turn = advance(turn.state, KeyPress("1"), ctx)
    assert turn.state == State.CARD_ENTRY and isinstance(turn.expect, Pay)
    assert turn.updates["amount_cents"] == 5000


@pytest.mark.parametrize(
    ("data", "back_to"),
    [({}, State.SUMMARY), ({"transfer_id": "tr_1", "amount_cents": 5025}, State.TRANSFER_CONFIRM)],
)
def test_star_during_card_entry_goes_back_to_where_the_amount_was_set(data, back_to):
    ctx = FakeContext(data=dict(data))
    ctx.verify("12345001", "0143")
    turn = advance(State.CARD_ENTRY, PayOutcome(STAR), ctx)
    assert turn.state == back_to and not turn.final


def test_engine_sends_too_many_wrong_keys_to_goodbye_or_the_agent():
    for agent, ending in ((False, State.GOODBYE), (True, State.AGENT)):
        ctx = FakeContext(data={"candidate": "1"}, agent=agent)
        state = State.OFFER_CALLER_ID
        for _ in range(3):
            turn = advance(state, KeyPress("5"), ctx)
            ctx.data.update(turn.updates)
        assert turn.state == ending


def test_transfer_entry_says_the_agents_amount_and_waits_for_1():
    ctx = FakeContext(data={"amount_cents": 5025, "transfer_id": "tr_1"})
    ctx.verify("12345001", "0143")
    turn = start(Entry.TRANSFER, ctx)
    assert turn.state == State.TRANSFER_CONFIRM
    assert [p.key for p in turn.say] == ["transfer_intro"] and turn.say[0].params["amount"] == 5025


@pytest.mark.parametrize(
    ("status", "balance_cents", "state", "keys"),
    [
        ("active", 12345, State.CALLBACK_WELCOME, ["callback_intro"]),
        ("active", 0, State.NOTHING_DUE, ["zero_balance", "goodbye"]),
        ("active", -500, State.NOTHING_DUE, ["credit_balance", "goodbye"]),
        ("suspended", 12345, State.OFFICE_ONLY, ["call_office", "goodbye"]),
    ],
)
def test_callback_entry_routes_by_the_account_through_the_table(status, balance_cents, state, keys):
    ctx = FakeContext()
    ctx.identified = AccountView("12345001", balance_cents, 0, None, "en", status)
    turn = start(Entry.CALLBACK, ctx)
    assert turn.state == state
    assert [p.key for p in turn.say] == keys
    assert turn.final == (state != State.CALLBACK_WELCOME)


def test_callback_entry_adopts_a_spanish_members_language():
    ctx = FakeContext()
    ctx.identified = AccountView("12345001", 12345, 0, None, "es", "active")
    turn = start(Entry.CALLBACK, ctx)
    assert turn.state == State.CALLBACK_WELCOME and turn.language("en") == "es"


class CountingContext(FakeContext):
    """Counts identification attempts: a key that is not a key must never reach one."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.verified = []

    def verify(self, number, last4, factor="last4"):
        self.verified.append((number, last4))
        return super().verify(number, last4, factor)


@pytest.mark.parametrize("keyed", ["\u0660\u0661\u0664\u0663", "\uff10\uff11\uff14\uff13", "01\u00b43", "0 43", "\u00b2"])
@pytest.mark.parametrize(
    ("state", "data"),
    [(State.ENTER_LAST4, {"candidate": "12345001"}), (State.ENTER_ACCOUNT, {}), (State.ENTER_AMOUNT, {}),
     (State.CHOOSE_ACCOUNT, {"choices": ["12345001", "12345002"]}), (State.SUMMARY, {}), (State.WELCOME, {})],
)
def test_only_ascii_keypad_keys_are_keys(state, data, keyed):
    ctx = CountingContext(data=data)
    ctx.identified = AccountView("12345001", 5000, 0, None, "en", "active")
    turn = advance(state, KeyPress(keyed), ctx)
    assert turn.state == state and turn.say[0].key == "invalid_key"  # explained like a wrong key
    assert turn.updates == {"invalid": 1} and ctx.verified == []


@pytest.mark.parametrize("keyed", ["\u0661\u0662\u0663\u0664\u0665\u0660\u0660\u0661", "\uff15\uff10", "\u00b2"])
def test_the_decisions_take_ascii_digits_only(keyed):
    from flows import decisions as d

    ctx = CountingContext(data={"candidate": "12345001", "choices": ["12345001", "12345002"]})
    ctx.identified = AccountView("12345001", 5000, 0, None, "en", "active")
    assert d.take_account_number(keyed, ctx).label == "invalid"
    assert d.parse_amount(keyed, ctx).label == "invalid"
    assert d.pick_listed_account(keyed, ctx).label == "invalid"
    assert d.verify_caller((keyed * 4)[:4], ctx).label == "invalid" and ctx.verified == []


# --- the card on file -------------------------------------------------------------------------------


def test_the_card_on_file_is_offered_once_the_amount_is_set_and_charged_without_pay():
    from flows import Act, CardOnFile, resume
    from flows.steps import APPROVED, CHARGE_SAVED_CARD

    ctx = FakeContext()
    ctx.verify("12345001", "0143")
    ctx.card = CardOnFile("visa", "4242")
    turn = advance(State.SUMMARY, KeyPress("1"), ctx)
    assert turn.state == State.SAVED_CARD and isinstance(turn.expect, Keys)
    assert [p.key for p in turn.say] == ["saved_card_choice"]
    assert (turn.say[0].params["card"], turn.say[0].params["last4"]) == ("brand_visa", "4242")
    ctx.data.update(turn.updates)

    charging = advance(State.SAVED_CARD, KeyPress("1"), ctx)
    assert charging.state == State.SAVED_CARD_CHARGE and charging.expect == Act(CHARGE_SAVED_CARD)
    done = resume(charging, PayOutcome(APPROVED, {"paid_cents": 5000, "confirmation_number": "12345678"}), ctx)
    assert done.state == State.CONFIRMATION and done.updates["paid_cents"] == 5000


def test_without_a_card_on_file_or_on_an_agents_transfer_the_keypad_comes_straight_away():
    from flows import CardOnFile

    ctx = FakeContext()
    ctx.verify("12345001", "0143")
    assert advance(State.SUMMARY, KeyPress("1"), ctx).state == State.CARD_ENTRY
    ctx.card = CardOnFile("visa", "4242")
    ctx.data.update({"amount_cents": 5025, "transfer_id": "tr_1"})
    assert advance(State.TRANSFER_CONFIRM, KeyPress("1"), ctx).state == State.CARD_ENTRY  # nothing else asked
    ctx.data.update({"saved_card_failed": True})
    del ctx.data["transfer_id"]
    assert advance(State.SUMMARY, KeyPress("1"), ctx).state == State.CARD_ENTRY  # declined on this call


@pytest.mark.parametrize(
    ("data", "after"),
    [
        ({"card_savable": True, "payment_id": 7}, State.SAVE_CARD_OFFER),
        ({"card_savable": False, "payment_id": 7}, State.GOODBYE),
        ({"card_savable": True, "payment_id": 7, "transfer_id": "tr_1", "return_to": "+12025550100"},
         State.RETURN_TO_AGENT),
    ],
)
def test_the_save_offer_follows_a_keyed_approval_once_and_never_a_transfer(data, after):
    ctx = FakeContext(data=data)
    ctx.verify("12345001", "0143")
    turn = advance(State.CONFIRMATION, Silence(), ctx)
    assert turn.state == after
    if after == State.SAVE_CARD_OFFER:
        ctx.data.update(turn.updates)  # asked once: no answer goes on to goodbye, not round again
        assert advance(State.SAVE_CARD_OFFER, Silence(), ctx).state == State.GOODBYE


def test_every_brand_the_flow_can_say_is_in_both_catalogues():
    from flows.decisions import BRANDS, brand_word

    for lang in prompts.LANGUAGES:
        for brand in (*BRANDS, None, "jcb"):
            assert prompts.text(brand_word(brand), lang)
