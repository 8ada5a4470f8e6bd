"""ops at scale: ops_closed_days (a past day's figures, counted once); indexes for /ops at a co-op's size

ops_closed_days keeps what /ops Today shows of a day whose calls have all ended, so the 30-day
charts read 30 rows instead of every call of 30 days. The indexes serve the pages that otherwise
read whole tables at a million payments and five million calls (docs/speed.md): a payment's
receipts (outbox_messages.payment_id) and staff actions (agent_audit_log.subject), a day's
receipts (outbox_messages kind, created_at), the newest messages of a status (outbox_messages
status, id), and payments of one status over any span (payments status, created_at, which
replaces the index on status alone). On PostgreSQL they are built CONCURRENTLY, so payments go on
while they build (15 to 35 seconds at that size on a shared 2-core machine).

Revision ID: f4812c6cf8a3
Revises: d5a8e3c1f7b2
Create Date: 2026-12-03 16:26:42.318955
"""

import sqlalchemy as sa
from alembic import op

import ivr.models

revision = 'f4812c6cf8a3'
down_revision = 'd5a8e3c1f7b2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ops_closed_days',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('zone', sa.String(length=64), nullable=False),
    sa.Column('calls', sa.Integer(), nullable=False),
    sa.Column('stages', sa.JSON(), nullable=False),
    sa.Column('contained', sa.Integer(), nullable=False),
    sa.Column('hang_ups', sa.JSON(), nullable=False),
    sa.Column('paid_cents', sa.BigInteger(), nullable=False),
    sa.Column('counted_at', ivr.models.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ops_closed_days')),
    sa.UniqueConstraint('day', 'zone', name=op.f('uq_ops_closed_days_day'))
    )
    _create_index(op.f('ix_agent_audit_log_subject'), 'agent_audit_log', ['subject'])
    _create_index('ix_outbox_messages_kind_created_at', 'outbox_messages', ['kind', 'created_at'])
    _create_index(op.f('ix_outbox_messages_payment_id'), 'outbox_messages', ['payment_id'])
    _create_index('ix_outbox_messages_status_id', 'outbox_messages', ['status', 'id'])
    _create_index('ix_payments_status_created_at', 'payments', ['status', 'created_at'])
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payments_status'))


def _create_index(name: str, table: str, columns: list[str]) -> None:
    if op.get_bind().dialect.name == 'postgresql':
        # CONCURRENTLY, outside the migration's transaction: a plain CREATE INDEX would hold back every
        # payment, receipt and audit row for the seconds a million-row table takes to index.
        with op.get_context().autocommit_block():
            op.create_index(name, table, columns, unique=False, postgresql_concurrently=True)
    else:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payments_status'), ['status'], unique=False)
        batch_op.drop_index('ix_payments_status_created_at')

    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_messages_status_id')
        batch_op.drop_index(batch_op.f('ix_outbox_messages_payment_id'))
        batch_op.drop_index('ix_outbox_messages_kind_created_at')

    with op.batch_alter_table('agent_audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agent_audit_log_subject'))

    op.drop_table('ops_closed_days')
