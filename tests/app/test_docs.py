"""The README stays short and leads to every reference page; every command the docs show exists."""

import re
from pathlib import Path

import click
import pytest

from ivr.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS]


def test_readme_is_at_most_300_lines():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 300


def test_readme_links_every_reference_page():
    readme = (ROOT / "README.md").read_text()
    linked = {Path(target).name for target in re.findall(r"\]\((docs/[^)#]+)", readme)}
    assert DOCS, "docs/ holds the reference pages"
    assert {page.name for page in DOCS} <= linked


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_local_links_lead_somewhere(page):
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
        assert (page.parent / target).exists(), f"{page.name} links to a missing {target}"


def _shown_commands(text: str) -> list[str]:
    """Every ``ivr …`` command line in code blocks and inline code of ``text``."""
    found = []
    for block in re.findall(r"```(?:sh)?\n(.*?)```", text, re.S):
        found += [line.strip() for line in block.splitlines() if line.strip().startswith("ivr ")]
    found += re.findall(r"`(ivr [^`]+)`", text)
    return found


def _resolve(words: list[str]) -> tuple[click.Command, list[str]]:
    """The command ``words`` names and the words left for its options."""
    command: click.Command = main
    ctx = click.Context(main)
    while words and isinstance(command, click.Group):
        sub = command.get_command(ctx, words[0])
        if sub is None:
            break
        command, words = sub, words[1:]
    return command, words


def _option_names(command: click.Command) -> set[str]:
    names = {"--help"}
    for param in command.params:
        names.update(getattr(param, "opts", []))
        names.update(getattr(param, "secondary_opts", []))
    return names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_shown_exists_with_its_options(page):
    commands = _shown_commands(page.read_text())
    for shown in commands:
        words = shown.replace("[", " ").replace("]", " ").replace("…", " ").split()[1:]
        command, rest = _resolve(words)
        assert not isinstance(command, click.Group), f"{page.name}: `{shown}` names no command"
        options = {w.split("=", 1)[0] for w in rest if w.startswith("--")}
        assert options <= _option_names(command), f"{page.name}: `{shown}` shows an option the command lacks"
