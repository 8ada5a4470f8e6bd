"""Payments made later: scheduled payments and autopay, charged by ``ivr worker`` through the one charge step."""
