"""deploy/systemd: the units pass `systemd-analyze verify` without a warning (and a typo would not), and
every command they run is an `ivr` command with options it has.

The verify tests are skipped where systemd-analyze is not installed.
"""

import re
import shlex
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import click
import pytest

from ivr.cli import main

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "deploy" / "systemd").iterdir())
IVR_IN_UNITS = "/opt/ivr/venv/bin/ivr"
SCRIPT_IN_UNITS = "/opt/ivr/bin/ivr-posting-file"
ANALYZE = shutil.which("systemd-analyze")

needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def _install(directory: Path, edit=lambda name, text: text) -> list[Path]:
    """The units with their programs pointed at this checkout (verify wants each ExecStart to exist)."""
    installed = []
    for unit in UNITS:
        text = unit.read_text().replace(IVR_IN_UNITS, str(Path(sys.executable).parent / "ivr"))
        text = text.replace(SCRIPT_IN_UNITS, str(ROOT / "deploy" / "bin" / "ivr-posting-file"))
        (directory / unit.name).write_text(edit(unit.name, text))
        installed.append(directory / unit.name)
    return installed


def _problems(units: list[Path]) -> list[str]:
    """What systemd-analyze verify says about these units: its failure and every warning naming one."""
    checked = subprocess.run([ANALYZE, "verify", "--man=no", "--generators=no", *map(str, units)],
                             capture_output=True, text=True, timeout=60)
    names = tuple(unit.name for unit in units) + tuple(str(unit) for unit in units)
    said = [line for line in checked.stderr.splitlines() if any(name in line for name in names)]
    return said + ([f"exit status {checked.returncode}"] if checked.returncode else [])


def test_the_example_has_the_units_the_docs_name():
    assert [unit.name for unit in UNITS] == [
        "ivr-posting-file.service", "ivr-posting-file.timer", "ivr-reminders.service", "ivr-reminders.timer",
        "ivr-web.service", "ivr-worker.service",
    ]


@needs_analyze
def test_the_units_pass_systemd_analyze_verify(tmp_path):
    assert _problems(_install(tmp_path)) == []


@needs_analyze
@pytest.mark.parametrize(
    "unit, right, wrong",
    [
        ("ivr-web.service", "ExecStart=", "ExecStrat="),  # no ExecStart: refused
        ("ivr-worker.service", "ProtectSystem=strict", "ProtectSytem=strict"),  # hardening silently lost
        ("ivr-posting-file.timer", "OnCalendar=*-*-* 00:30:00", "OnCalendar=*-*-* 24:30:00"),
    ],
)
def test_a_typo_in_a_unit_is_reported(tmp_path, unit, right, wrong):
    def typo(name: str, text: str) -> str:
        if name != unit:
            return text
        assert right in text
        return text.replace(right, wrong, 1)

    problems = _problems(_install(tmp_path, typo))
    assert problems
    assert any(unit in line for line in problems)


def _ivr_command_lines() -> list[tuple[str, list[str]]]:
    """(where, words) for each `ivr …` the units and the posting-file script run."""
    found = []
    for unit in UNITS:
        for line in unit.read_text().splitlines():
            if line.startswith(("ExecStart=", "ExecReload=")) and IVR_IN_UNITS in line:
                found.append((unit.name, shlex.split(line.split("=", 1)[1])[1:]))
    script = (ROOT / "deploy" / "bin" / "ivr-posting-file").read_text()
    shown = re.search(r'"\$\{IVR:-ivr\}" (.*?) >', script).group(1)
    found.append(("ivr-posting-file", [word.strip('"') for word in shlex.split(shown)]))
    return found


def _shown(value) -> str:
    return " ".join(value) if isinstance(value, list) else value


@pytest.mark.parametrize("where, words", _ivr_command_lines(), ids=_shown)
def test_every_ivr_command_the_units_run_exists_with_its_options(where, words):
    command: click.Command = main
    ctx = click.Context(main)
    while words and isinstance(command, click.Group):
        sub = command.get_command(ctx, words[0])
        assert sub is not None, f"{where}: ivr has no command {words[0]!r}"
        command, words = sub, words[1:]
    assert not isinstance(command, click.Group), f"{where}: names a group, not a command"
    options = {name for param in command.params for name in (*param.opts, *getattr(param, "secondary_opts", []))}
    assert {word for word in words if word.startswith("--")} <= options, f"{where}: an option the command lacks"


def test_the_units_run_the_web_server_the_worker_the_reminders_and_the_posting_file():
    run = defaultdict(list)
    for name, words in _ivr_command_lines():
        run[name].append(" ".join(words))
    assert run["ivr-web.service"] == ["serve --host 0.0.0.0 --port 8000 --workers 4 --threads 4"]
    assert run["ivr-worker.service"] == ["worker"]
    assert run["ivr-reminders.service"] == ["reminders send --days-before 3", "reminders send --past-due"]
    assert run["ivr-posting-file"] == ["payments export --date $day"]
    posting = (ROOT / "deploy" / "systemd" / "ivr-posting-file.service").read_text()
    assert f"ExecStart={SCRIPT_IN_UNITS} /var/lib/ivr/postings" in posting
