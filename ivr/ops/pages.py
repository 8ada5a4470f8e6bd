"""Routes of the operations console (filled in below)."""

from flask import Blueprint

bp = Blueprint("ops", __name__)
