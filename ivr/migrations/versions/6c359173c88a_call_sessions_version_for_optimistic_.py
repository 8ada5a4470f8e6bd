"""call_sessions.version: a write counter, so a menu step can be saved without a row lock

Revision ID: 6c359173c88a
Revises: 1fc8b21adf5c
Create Date: 2026-12-02 04:23:21.897577
"""

import sqlalchemy as sa
from alembic import op

revision = '6c359173c88a'
down_revision = '1fc8b21adf5c'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing rows start at 1, like new ones: the first write from them checks version = 1.
    with op.batch_alter_table('call_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('call_sessions', schema=None) as batch_op:
        batch_op.drop_column('version')
