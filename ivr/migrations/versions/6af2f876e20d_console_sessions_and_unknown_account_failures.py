"""agent_sessions (console sign-ins, ended on sign-out); verification_failures.account_id nullable
(a failed identification of an unknown account number is written too, so it costs what a wrong
last four costs)

Revision ID: 6af2f876e20d
Revises: f4812c6cf8a3
Create Date: 2026-12-03 16:13:29.867519
"""

import sqlalchemy as sa
from alembic import op

import ivr.models

revision = '6af2f876e20d'
down_revision = 'f4812c6cf8a3'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Console cookies signed before this revision name no row: those agents sign in once more.
    op.create_table('agent_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('nonce_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', ivr.models.UTCDateTime(), nullable=False),
    sa.Column('expires_at', ivr.models.UTCDateTime(), nullable=False),
    sa.Column('ended_at', ivr.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_agent_sessions_agent_id_agents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_sessions')),
    sa.UniqueConstraint('nonce_hash', name=op.f('uq_agent_sessions_nonce_hash'))
    )
    with op.batch_alter_table('agent_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agent_sessions_agent_id'), ['agent_id'], unique=False)

    with op.batch_alter_table('verification_failures', schema=None) as batch_op:
        batch_op.alter_column('account_id',
               existing_type=sa.INTEGER(),
               nullable=True)


def downgrade() -> None:
    # Failures against no account have nowhere to go in the older schema.
    op.execute("DELETE FROM verification_failures WHERE account_id IS NULL")
    with op.batch_alter_table('verification_failures', schema=None) as batch_op:
        batch_op.alter_column('account_id',
               existing_type=sa.INTEGER(),
               nullable=False)

    with op.batch_alter_table('agent_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agent_sessions_agent_id'))

    op.drop_table('agent_sessions')
