"""Who may use /ops: the /agent console's signed-in session, with a role high enough.

There is one sign-in (``ivr.agents.auth``); this module only adds the role check. Supervisors read
every page; admins also refund, resend receipts and manage staff; agents are refused with 403.
"""

import functools
import logging
from collections.abc import Callable
from typing import Any

from flask import g, make_response, request

from ..agents.auth import read_session
from ..agents.console import login_page
from ..agents.models import Agent
from ..extensions import db

logger = logging.getLogger(__name__)


def staff_only(role: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Let the view run for a signed-in staff member of ``role`` or above; sign-in page, else 403."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any):
            caller = read_session()
            if caller is None:
                db.session.rollback()
                if request.method == "GET":
                    return login_page(next_url="/ops")
                return make_response("Sign in at /ops first.", 401)
            if not caller.agent.may(role):
                db.session.rollback()
                logger.warning("ops: %s (%s) refused %s", caller.agent.name, caller.agent.role, request.endpoint)
                return make_response(f"Your role ({caller.agent.role}) cannot use this page; ask an admin.", 403)
            g.staff = caller.agent
            return view(*args, **kwargs)

        return wrapped

    return decorate


def staff() -> Agent:
    """The staff member of this request (after ``staff_only``)."""
    return g.staff
