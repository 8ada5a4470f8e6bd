"""Every status a transfer or an assisted session can have, and the moves between them, declared once.

Each model has one writer (``transfers.change``, ``assisted._touch``) that asks ``allows`` before
it writes, so a status can only change along a line of these tables. Writing the status a row
already has is not a move (a progress update that changes other fields only).
"""

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class StatusTable:
    """The statuses of one kind of row, where a new row starts, and which moves are allowed."""

    initial: str
    moves: Mapping[str, frozenset[str]]

    def __post_init__(self) -> None:
        unknown = {target for targets in self.moves.values() for target in targets} - set(self.moves)
        if self.initial not in self.moves or unknown:
            raise ValueError(f"undeclared status: {sorted(unknown) or self.initial}")

    @property
    def statuses(self) -> frozenset[str]:
        """Every declared status."""
        return frozenset(self.moves)

    def allows(self, current: str, new: str) -> bool:
        """Whether a row in ``current`` may be written as ``new`` (staying put is always allowed)."""
        return new == current or new in self.moves.get(current, frozenset())


# A charge already sent to Stripe has the last word: its outcome is recorded even on a row that a
# hang-up, a cancel or "processor unavailable" reached while the charge was in flight.
_CHARGE_OUTCOMES = frozenset({"approved", "declined"})

TRANSFER = StatusTable(
    initial="waiting",
    moves={
        "waiting": frozenset({"in_pay", "caller_hung_up", "failed"}),
        "in_pay": frozenset({"waiting", "declined", "approved", "caller_hung_up", "failed"}),  # waiting: "*"
        "declined": frozenset({"in_pay", "caller_hung_up", "failed"}),
        "approved": frozenset(),
        "caller_hung_up": _CHARGE_OUTCOMES,
        # Given up on (the redirect timed out, the call never arrived), then Twilio came after all.
        "failed": frozenset({"waiting"}),
    },
)
TRANSFER_ACTIVE = ("waiting", "in_pay", "declined")  # the call is busy with this transfer
TRANSFER_FINAL = ("approved", "caller_hung_up", "failed")

_ASSISTED_ENDINGS = frozenset({"cancelled", "caller_hung_up", "failed"})
ASSISTED = StatusTable(
    initial="starting",
    moves={
        "starting": frozenset({"ready", "processing"}) | _ASSISTED_ENDINGS,
        "ready": frozenset({"capturing", "processing"}) | _ASSISTED_ENDINGS,
        "capturing": frozenset({"ready", "processing"}) | _ASSISTED_ENDINGS,  # ready: Twilio refused the ask
        "processing": _CHARGE_OUTCOMES | _ASSISTED_ENDINGS,
        "approved": frozenset(),
        "declined": frozenset(),
        "cancelled": _CHARGE_OUTCOMES,
        "caller_hung_up": _CHARGE_OUTCOMES,
        "failed": _CHARGE_OUTCOMES,  # e.g. processor unavailable, then Stripe's webhook settled it
    },
)
ASSISTED_ACTIVE = ("starting", "ready", "capturing", "processing")  # the call is busy with this session
ASSISTED_FINAL = ("approved", "declined", "cancelled", "caller_hung_up", "failed")
ASSISTED_CAPTURABLE = ("ready", "capturing")  # the agent may ask for a field or complete
ASSISTED_CANCELLABLE = ("starting", "ready", "capturing")  # the agent may cancel
