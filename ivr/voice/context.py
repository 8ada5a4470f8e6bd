"""The flow's ``CallContext`` over the database: what the engine may ask about one call."""

import logging
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask import current_app

from flows import AccountView, CardOnFile
from flows.steps import PaidView

from ..later.desk import CallDesk
from ..masking import mask
from ..models import Account, Payment
from ..money.ledger import member_zone
from ..phones import to_e164
from . import identity
from .call_rows import CallRow, DriverStatement, account_view, accounts_on_phone, card_on_file, fetch

logger = logging.getLogger(__name__)

_PAYMENTS = Payment.__table__
_ACCOUNTS = Account.__table__
# The account's last succeeded payments, newest first, with the phone whose time zone dates them.
_RECENT_PAYMENTS = DriverStatement(
    sa.select(_PAYMENTS.c.paid_at, _PAYMENTS.c.amount_cents, _PAYMENTS.c.channel, _ACCOUNTS.c.phone)
    .select_from(_PAYMENTS.join(_ACCOUNTS, _ACCOUNTS.c.id == _PAYMENTS.c.account_id))
    .where(
        _PAYMENTS.c.account_id == sa.bindparam("account_id"),
        _PAYMENTS.c.status == "succeeded",
        _PAYMENTS.c.paid_at.is_not(None),
    )
    .order_by(_PAYMENTS.c.paid_at.desc(), _PAYMENTS.c.id.desc())
    .limit(sa.bindparam("limit"))
)

class DbCallContext:
    """``flows.CallContext`` over the database for one call."""

    def __init__(self, call: CallRow) -> None:
        cfg = current_app.config
        self.call = call
        self.data: Mapping[str, Any] = dict(call.data or {})
        self.agent_available = bool(cfg["AGENT_TRANSFER_NUMBER"])
        self.min_payment_cents = int(cfg["MIN_PAYMENT_CENTS"])
        self.max_payment_cents = cfg["MAX_PAYMENT_CENTS"]
        self._later: CallDesk | None = None
        self.convenience_fee_cents = int(cfg.get("CONVENIENCE_FEE_CENTS") or 0)
        self.longer_key_waits = bool(cfg.get("LONGER_KEY_WAITS"))

    def caller_accounts(self) -> list[AccountView]:
        caller = to_e164(self.call.from_number)
        return accounts_on_phone(caller) if caller else []

    def account(self) -> AccountView | None:
        return self.call.account

    def card_on_file(self) -> CardOnFile | None:
        return card_on_file(self.call.account_id) if self.call.account_id is not None else None

    @property
    def later(self) -> CallDesk:
        """Scheduled payments and autopay of the identified account (read only when a step asks)."""
        if self._later is None:
            self._later = CallDesk(self.call)
        return self._later

    def verify(self, account_number: str, answer: str, factor: str = "last4") -> bool:
        account = identity.verify(account_number, answer, self.call.call_sid, factor=factor)
        if account is None:
            return False
        self.call.account_id = account["id"]
        self.call.account = account_view(account)
        logger.info("call %s identified account %s", self.call.call_sid, mask(account["account_number"]))
        return True

    def recent_payments(self, limit: int) -> list[PaidView]:
        if self.call.account_id is None:
            return []
        rows = fetch(_RECENT_PAYMENTS, {"account_id": self.call.account_id, "limit": limit})
        # The day in the member's own time zone (their phone's, else the co-op's), as the receipt said it.
        return [
            PaidView(row["paid_at"].astimezone(member_zone(row["phone"])).date(), row["amount_cents"], row["channel"])
            for row in rows
        ]
