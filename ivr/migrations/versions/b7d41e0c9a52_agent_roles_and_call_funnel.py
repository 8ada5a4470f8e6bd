"""agents.role (agent | supervisor | admin); call_sessions.furthest and path for the ops funnel; created_at indexes

Revision ID: b7d41e0c9a52
Revises: e7002751f6b7
Create Date: 2026-12-03 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = 'b7d41e0c9a52'
down_revision = 'e7002751f6b7'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Everyone who exists today keeps exactly what they had: the console at /agent.
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role', sa.String(length=12), server_default='agent', nullable=False))
    with op.batch_alter_table('call_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('furthest', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('path', sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f('ix_call_sessions_created_at'), ['created_at'], unique=False)
    # /ops reads a day's attempts (declines have no paid_at) by when they began.
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payments_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payments_created_at'))
    with op.batch_alter_table('call_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_sessions_created_at'))
        batch_op.drop_column('path')
        batch_op.drop_column('furthest')
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_column('role')
