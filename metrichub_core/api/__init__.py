"""The hosted API: ``create_app(hub)`` returns the Starlette application ``metrichub serve`` runs."""

from metrichub_core.api.app import create_app

__all__ = ["create_app"]
