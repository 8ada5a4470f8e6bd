"""What ``ivr`` commands print is written for people: sentences with plurals, and help for an operator."""

import click
import pytest

from ivr.cli import main
from ivr.outbox.engine import Report
from ivr.terminal.words import STATUS_CALLBACKS, TEXTS, sent_summary

# Implementation talk that has no place in an operator's --help: reStructuredText or Markdown
# quoting, Twilio verbs, internal names, Python formats.
DEVELOPER_NOTES = ("``", "`", "<Gather>", "<Pay>", "<Dial>", "app:app", "Alembic", "outbox", "README", "%Y")


def every_command(group: click.Group = main, words: tuple[str, ...] = ()):
    """``(words, command)`` for the group and everything under it."""
    yield words, group
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from every_command(command, (*words, name))
        else:
            yield (*words, name), command


@pytest.mark.parametrize(
    "words, command", [pytest.param(words, command, id=" ".join(words) or "ivr") for words, command in every_command()]
)
def test_help_is_written_for_an_operator(words, command):
    help_text = command.get_help(click.Context(command, info_name="ivr " + " ".join(words)))

    assert [note for note in DEVELOPER_NOTES if note in help_text] == []
    # Every option says what it is for (--help itself aside).
    unexplained = [p.opts[0] for p in command.params if isinstance(p, click.Option) and not p.help]
    assert unexplained == []


@pytest.mark.parametrize(
    "report, said",
    [
        (Report(), "Sent 0 texts"),
        (Report(sent=1), "Sent 1 text"),
        (Report(sent=3, failed=1, held=2), "Sent 3 texts, 1 failed for good, 2 held for later"),
        (Report(sent=2, retried=1, dropped=1), "Sent 2 texts, 1 will be retried, 1 no longer needed"),
    ],
)
def test_a_worker_pass_is_one_sentence(report, said):
    assert sent_summary(report, *TEXTS) == said


def test_status_callbacks_are_counted_in_the_singular_too():
    assert sent_summary(Report(sent=1), *STATUS_CALLBACKS) == "Sent 1 status callback to agents' systems"


def test_the_worker_logs_a_pass_in_words_not_as_a_python_object():
    assert str(Report(sent=1, held=2)) == "1 sent, 2 held for later"
