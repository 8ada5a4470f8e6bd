"""Import every model module so the metadata knows every table (Alembic, tests, create_all)."""

from . import models  # noqa: F401
