"""The WSGI entry point: ``gunicorn app:app`` and ``flask --app app``."""

from ivr import create_app

app = create_app()
