"""Routes described once: the Starlette route and its OpenAPI operation come from the same ``Operation``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from metrichub_core.api.errors import ErrorCode

__all__ = ["API_PREFIX", "Endpoint", "Operation", "Operations"]

API_PREFIX = "/api/v1"

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Operation:
    """One method on one path.

    Parameters:
        response: the type of the envelope's ``data`` (a pydantic model or any type
            pydantic can describe); ``None`` for a non-JSON ``media_type``.
        body: the request body model; ``None`` when the route takes no body.
        write: the route changes data, so it requires a bearer token when tokens are configured.
        statuses: other success statuses and their descriptions (``{202: "started"}``).
        errors: the error codes the route itself raises (the common ones are added).
        response_headers: headers of the success responses, with their descriptions.
    """

    method: str
    path: str
    endpoint: Endpoint
    summary: str
    tag: str
    description: str = ""
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    body_required: bool = True
    response: Any = None
    media_type: str = "application/json"
    status_code: int = 200
    statuses: Mapping[int, str] = field(default_factory=dict)
    errors: tuple[ErrorCode, ...] = ()
    write: bool = False
    path_params: Mapping[str, str] = field(default_factory=dict)
    response_headers: Mapping[str, str] = field(default_factory=dict)
    in_schema: bool = True

    @property
    def operation_id(self) -> str:
        return self.endpoint.__name__.strip("_")


class Operations:
    """Collects a module's operations: ``@operations.route("GET", "/health", ...)``."""

    def __init__(self, tag: str, *, prefix: str = API_PREFIX) -> None:
        self.tag = tag
        self.prefix = prefix
        self.items: list[Operation] = []

    def route(self, method: str, path: str, *, summary: str, **options: Any) -> Callable[[Endpoint], Endpoint]:
        def register(endpoint: Endpoint) -> Endpoint:
            description = options.pop("description", None) or (endpoint.__doc__ or "").strip()
            self.items.append(
                Operation(
                    method=method,
                    path=self.prefix + path,
                    endpoint=endpoint,
                    summary=summary,
                    tag=options.pop("tag", self.tag),
                    description=description,
                    **options,
                )
            )
            return endpoint

        return register
