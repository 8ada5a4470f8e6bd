"""The flow's ``CallContext`` over the database: what the engine may ask about one call."""

import logging
from collections.abc import Mapping
from typing import Any

from flask import current_app

from flows import AccountView

from ..masking import mask
from ..phones import to_e164
from . import identity
from .call_rows import CallRow, account_view, accounts_on_phone

logger = logging.getLogger(__name__)

class DbCallContext:
    """``flows.CallContext`` over the database for one call."""

    def __init__(self, call: CallRow) -> None:
        cfg = current_app.config
        self.call = call
        self.data: Mapping[str, Any] = dict(call.data or {})
        self.agent_available = bool(cfg["AGENT_TRANSFER_NUMBER"])
        self.min_payment_cents = int(cfg["MIN_PAYMENT_CENTS"])
        self.max_payment_cents = cfg["MAX_PAYMENT_CENTS"]

    def caller_accounts(self) -> list[AccountView]:
        caller = to_e164(self.call.from_number)
        return accounts_on_phone(caller) if caller else []

    def account(self) -> AccountView | None:
        return self.call.account

    def verify(self, account_number: str, last4: str) -> bool:
        account = identity.verify(account_number, last4, self.call.call_sid)
        if account is None:
            return False
        self.call.account_id = account["id"]
        self.call.account = account_view(account)
        logger.info("call %s identified account %s", self.call.call_sid, mask(account["account_number"]))
        return True


