"""saved_cards (a card on file per account, with its consent); payments keep Stripe's customer and PaymentMethod ids

Revision ID: c41f0a7d2e90
Revises: b7d41e0c9a52
Create Date: 2026-12-03 16:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

import ivr.models

revision = 'c41f0a7d2e90'
down_revision = 'b7d41e0c9a52'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stripe_customer', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('stripe_payment_method', sa.String(length=64), nullable=True))
    op.create_table(
        'saved_cards',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('stripe_customer', sa.String(length=64), nullable=False),
        sa.Column('stripe_payment_method', sa.String(length=64), nullable=False),
        sa.Column('card_brand', sa.String(length=20), nullable=True),
        sa.Column('card_last4', sa.String(length=4), nullable=True),
        sa.Column('saved_at', ivr.models.UTCDateTime(), nullable=False),
        sa.Column('consent_channel', sa.String(length=16), nullable=False),
        sa.Column('consent_call_sid', sa.String(length=64), nullable=True),
        sa.Column('consent_payment_id', sa.Integer(), nullable=True),
        sa.Column('consent_language', sa.String(length=2), nullable=False),
        sa.Column('consent_words', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id']),
        sa.ForeignKeyConstraint(['consent_payment_id'], ['payments.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('account_id'),
    )


def downgrade() -> None:
    op.drop_table('saved_cards')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_column('stripe_payment_method')
        batch_op.drop_column('stripe_customer')
