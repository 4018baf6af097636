"""Pure ASGI middleware, one job per module."""
