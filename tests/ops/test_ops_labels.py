"""Staff read where calls went in words, not the flow's internal names."""

from flows.steps import State
from ivr.ops.labels import STEP_LABELS, step_label


def test_every_state_of_the_flow_has_words_for_staff():
    assert set(STEP_LABELS) == set(State)
    assert all(label and "_" not in label for label in STEP_LABELS.values())


def test_a_hang_up_during_card_entry_reads_as_such_and_an_unknown_state_is_still_readable():
    assert step_label("HUNG_UP") == "Hung up entering the card"
    assert step_label("SOME_OLD_STATE") == "Some old state"
    assert step_label(None) == ""
