"""Import every model module so the metadata knows every table (Alembic, tests, create_all)."""

from . import models  # noqa: F401
from .agents import models as _agents  # noqa: F401
from .later import models as _later  # noqa: F401
from .money import models as _money  # noqa: F401
from .ops import models as _ops  # noqa: F401
from .outbox import models as _outbox  # noqa: F401
from .reminders import models as _reminders  # noqa: F401
