"""Agents: send a caller into secure pay (transfer) or guide them through it (assisted).

No card data ever passes through here: the caller keys it into Twilio, which hands Stripe a token.
"""
