"""How the product is put together: no import cycle, what create_app registers, the ``ivr`` command tree."""

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

import ivr.cli
from ivr import create_app
from ivr.cli import main
from ivr.voice import events

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("ivr", "flows", "payments", "prompts")
SANDBOX = {"PAYMENT_GATEWAY": "sandbox", "SMS_SENDER": "sandbox"}


# --- the import graph ------------------------------------------------------------------------------


def product_modules() -> dict[str, tuple[Path, bool]]:
    """Every product module by dotted name: its file and whether it is a package's ``__init__``."""
    modules = {}
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:  # Alembic loads these by path, never by import
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def import_graph() -> dict[str, set[str]]:
    """Module -> the product modules it imports anywhere in its file (function-level imports too)."""
    modules = product_modules()

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                # `from pkg import mod` depends on pkg.mod; `from mod import name` on mod.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                found = known(target)
                if found and found != name:
                    graph[name].add(found)
    return graph


def strongly_connected_components(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative (the graph is a few hundred modules deep at most)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
    return components


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert sorted(map(sorted, strongly_connected_components(graph))) == [["a", "b", "c"], ["d"]]


def test_the_graph_counts_function_level_and_relative_imports():
    graph = import_graph()
    assert "ivr.agents.callbacks" in graph["ivr.outbox.commands"]  # imported inside a function
    assert "ivr.reminders.selection" in graph["ivr.reminders.cli"]  # `from . import selection`
    assert "ivr.agents.cli" in graph["ivr"]  # create_app's command groups


def test_no_import_cycle_anywhere_in_the_product():
    cycles = [sorted(c) for c in strongly_connected_components(import_graph()) if len(c) > 1]
    assert cycles == []


def test_no_product_module_imports_the_command_line():
    graph = import_graph()
    assert sorted(name for name, imports in graph.items() if "ivr.cli" in imports) == []


# --- what create_app registers -------------------------------------------------------------------


@pytest.fixture
def bare_app(tmp_path):
    return create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'wiring.sqlite3'}", **SANDBOX})


def test_every_blueprint_is_registered_on_the_app_itself(bare_app):
    assert [name for name in bare_app.blueprints if "." in name] == []  # none nested in another
    paths = {rule.rule for rule in bare_app.url_map.iter_rules()}
    contract = {"/twilio/voice", "/twilio/voice/status", "/twilio/sms", "/stripe/webhook", "/api/agent/transfers",
                "/api/agent/transfers/<transfer_id>", "/r/<token>", "/agent", "/healthz"}
    assert contract - paths == set()
    assert {"/twilio/voice/transfer", "/twilio/agent/assisted-status"} <= paths


def test_call_event_listeners_belong_to_one_app(bare_app, tmp_path):
    other = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'other.sqlite3'}", **SANDBOX})
    heard = []
    events.subscribe(bare_app, lambda kind, call, **details: heard.append((kind, call.call_sid)))
    # A self-service call: the transfer listener create_app subscribed has nothing to do with it.
    mine, theirs = (SimpleNamespace(call_sid=sid, channel="ivr", data={}) for sid in ("CA-mine", "CA-other"))

    with other.app_context():
        events.emit("pay_field", theirs, field="card_number")
    with bare_app.app_context():
        events.emit("pay_field", mine, field="card_number")

    assert heard == [("pay_field", "CA-mine")]


def test_the_apps_commands_run_under_flask_as_under_ivr(bare_app):
    runner = bare_app.test_cli_runner()
    import ivr.all_models  # noqa: F401  (every table on the metadata)
    from ivr.extensions import db

    with bare_app.app_context():
        db.create_all()
    added = runner.invoke(args=["agents", "add", "Robin"])
    listed = runner.invoke(args=["agents", "list"])

    assert added.exit_code == 0, added.output
    assert listed.stdout == "Robin\tactive\tlast used never\n"
    assert sorted(bare_app.cli.commands) == ["accounts", "agents", "payments", "reminders", "worker"]


# --- the ivr command tree ------------------------------------------------------------------------


@pytest.fixture
def app_builds(monkeypatch):
    """How many times ``ivr`` commands built the app."""
    built = []
    real = ivr.cli.create_app

    def counting():
        built.append(1)
        return real()

    monkeypatch.setattr(ivr.cli, "create_app", counting)
    return built


def test_ivr_offers_every_contract_command():
    result = CliRunner().invoke(main, ["--help"])
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].strip().splitlines()}
    assert listed == {"accounts", "agents", "call", "db", "demo", "flow-table", "payments", "reminders", "serve", "worker"}


def test_the_app_is_built_once_per_command_and_only_when_needed(tmp_path, app_builds):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'ops.sqlite3'}", **SANDBOX}
    runner = CliRunner()

    results = {
        "db upgrade": runner.invoke(main, ["db", "upgrade"], env=env),
        "flow-table": runner.invoke(main, ["flow-table"], env=env),
        "help": runner.invoke(main, ["agents", "--help"], env=env),
    }
    assert app_builds == []
    results["agents add"] = runner.invoke(main, ["agents", "add", "Robin"], env=env)
    assert app_builds == [1]
    results["worker --once"] = runner.invoke(main, ["worker", "--once"], env=env)
    assert app_builds == [1, 1]

    assert {name: r.exit_code for name, r in results.items()} == dict.fromkeys(results, 0)
    assert results["worker --once"].stdout == "Sent 0 texts\nSent 0 status callbacks to agents' systems\n"


def test_a_configuration_problem_is_one_line_not_a_traceback():
    runner = CliRunner()
    broken = runner.invoke(main, ["agents", "list"], env={"IVR_ENV": "staging"})
    fine = runner.invoke(main, ["flow-table"], env={"IVR_ENV": "staging"})

    assert broken.exit_code == 1
    assert broken.stderr == "Error: IVR_ENV must be 'development' or 'production', not 'staging'\n"
    assert fine.exit_code == 0 and "| State |" in fine.output


def test_ivr_keeps_at_most_twelve_modules_at_its_top():
    # Everything else lives in a wing named for what it does (README, "How it is built").
    modules = sorted(path.name for path in (ROOT / "ivr").glob("*.py"))
    assert len(modules) <= 12, modules


def test_one_place_builds_the_twilio_rest_client():
    builders = []
    for path in (ROOT / "ivr").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "TwilioRest":
                builders.append(str(path.relative_to(ROOT)))
    assert builders == ["ivr/twilio/client.py"]
