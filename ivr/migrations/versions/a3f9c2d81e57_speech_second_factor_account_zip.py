"""speech_second_factor_account_zip: the service ZIP code, the caller-ID path's second factor

Revision ID: a3f9c2d81e57
Revises: 96d8dc59245d
Create Date: 2026-12-03 19:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = 'a3f9c2d81e57'
down_revision = '96d8dc59245d'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: accounts imported before the column, or from files without it, fall back to
    # asking for the full account number.
    with op.batch_alter_table('accounts') as batch_op:
        batch_op.add_column(sa.Column('zip', sa.String(length=5), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('accounts') as batch_op:
        batch_op.drop_column('zip')
