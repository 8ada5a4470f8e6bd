"""payments.fee_cents: the convenience fee charged with a payment (0 for every payment before it)

Revision ID: d5a8e3c1f7b2
Revises: c41f0a7d2e90
Create Date: 2026-12-04 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = 'd5a8e3c1f7b2'
down_revision = 'c41f0a7d2e90'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fee_cents', sa.BigInteger(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_column('fee_cents')
