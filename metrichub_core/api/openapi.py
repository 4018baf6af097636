"""The OpenAPI 3.1 document, generated from the ``Operation`` list and the pydantic models they name."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from metrichub_core import __version__
from metrichub_core.api.auth import BearerAuth
from metrichub_core.api.envelope import Envelope, ErrorEnvelope
from metrichub_core.api.errors import ERROR_STATUS, ErrorCode
from metrichub_core.api.mediatype import takes_json_body
from metrichub_core.api.operations import API_PREFIX, Operation

__all__ = ["build_openapi"]

_REF = "#/components/schemas/{model}"

_ERROR_TEXT: dict[ErrorCode, str] = {
    "validation_error": "Invalid query, path or body; `details` names each field.",
    "unauthorized": "No or a malformed bearer token (sent with a `WWW-Authenticate: Bearer` challenge).",
    "forbidden": "The bearer token is not one of the configured tokens, or is a read-only token on a write route.",
    "not_found": "No such resource.",
    "method_not_allowed": "The path does not take this method.",
    "conflict": "The request conflicts with the resource's current state.",
    "payload_too_large": "The body is larger than `[api] max_body_bytes`.",
    "unsupported_media_type": "A body (or a Content-Type) other than `application/json` on a write route.",
    "timeout": "The request took longer than `[api] request_timeout_seconds`.",
    "internal_error": "An unexpected error (logged with the trace id).",
}


def build_openapi(operations: Iterable[Operation], *, auth: BearerAuth) -> dict[str, Any]:
    operations = [operation for operation in operations if operation.in_schema]
    envelopes: dict[int, type[BaseModel]] = {}
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorEnvelope, "serialization")]
    for operation in operations:
        if operation.response is not None and operation.media_type == "application/json":
            envelope = Envelope[operation.response]  # type: ignore[name-defined]
            envelopes[id(operation)] = envelope
            wanted.append((envelope, "serialization"))
        if operation.body is not None:
            wanted.append((operation.body, "validation"))
    refs, top = models_json_schema(wanted, ref_template=_REF)
    schemas = dict(top.get("$defs", {}))

    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        item: dict[str, Any] = {
            "operationId": operation.operation_id,
            "summary": operation.summary,
            "tags": [operation.tag],
        }
        if operation.description:
            item["description"] = operation.description
        parameters = _path_parameters(operation) + _query_parameters(operation)
        if parameters:
            item["parameters"] = parameters
        if operation.body is not None:
            item["requestBody"] = {
                "required": operation.body_required,
                "content": {"application/json": {"schema": refs[(operation.body, "validation")]}},
            }
        item["responses"] = _responses(operation, refs, envelopes, auth.guards(operation))
        if auth.guards(operation):
            item["security"] = [{"bearerAuth": []}]
        paths.setdefault(operation.path, {})[operation.method.lower()] = item

    components: dict[str, Any] = {
        "schemas": schemas,
        "headers": {
            "X-Request-ID": {
                "description": "The request's id: the client's X-Request-ID when given, else generated; "
                "equal to the body's trace_id.",
                "schema": {"type": "string"},
            }
        },
    }
    if auth.enabled:
        components["securitySchemes"] = {"bearerAuth": {"type": "http", "scheme": "bearer"}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "MetricHub API",
            "version": __version__,
            "description": "DORA metrics, ingestion, sources and webhooks. Every JSON response is an envelope: "
            '`{"data": ..., "trace_id": ...}` or `{"error": {"code", "message", "details", "trace_id"}}`.',
        },
        "paths": paths,
        "components": components,
        "tags": [{"name": name} for name in dict.fromkeys(operation.tag for operation in operations)],
    }


def _responses(
    operation: Operation,
    refs: Mapping[Any, Any],
    envelopes: dict[int, type[BaseModel]],
    guarded: bool,
) -> dict[str, Any]:
    headers = {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}}
    if operation.media_type == "application/json":
        schema = refs[(envelopes[id(operation)], "serialization")] if id(operation) in envelopes else {}
    else:
        schema = {"type": "string"}
    content = {operation.media_type: {"schema": schema}}
    success_headers: dict[str, Any] = {
        **headers,
        **{
            name: {"description": description, "schema": {"type": "string"}}
            for name, description in operation.response_headers.items()
        },
    }
    responses: dict[str, Any] = {
        str(operation.status_code): {"description": operation.summary, "headers": success_headers, "content": content}
    }
    for status, description in operation.statuses.items():
        responses[str(status)] = {"description": description, "headers": success_headers, "content": content}
    codes: list[ErrorCode] = [*operation.errors, "internal_error", "timeout"]
    if operation.query is not None or operation.body is not None or operation.path.startswith(API_PREFIX):
        codes.append("validation_error")  # unknown query parameters are refused everywhere under /api/v1
    if operation.method in {"POST", "PUT", "PATCH"}:
        codes.append("payload_too_large")
    if takes_json_body(operation):
        codes.append("unsupported_media_type")
    if guarded:
        codes += ["unauthorized", "forbidden"]
    error_content = {"application/json": {"schema": refs[(ErrorEnvelope, "serialization")]}}
    for code in sorted(set(codes), key=lambda name: ERROR_STATUS[name]):
        responses[str(ERROR_STATUS[code])] = {
            "description": f"`{code}`: {_ERROR_TEXT[code]}",
            "headers": headers,
            "content": error_content,
        }
    return responses


def _path_parameters(operation: Operation) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": description,
            "schema": {"type": "string", "minLength": 1},
        }
        for name, description in operation.path_params.items()
    ]


def _query_parameters(operation: Operation) -> list[dict[str, Any]]:
    if operation.query is None:
        return []
    schema = operation.query.model_json_schema(ref_template=_REF)
    required = set(schema.get("required", []))
    parameters = []
    for name, property_schema in schema.get("properties", {}).items():
        property_schema = _without_null(dict(property_schema))
        description = property_schema.pop("description", None)
        property_schema.pop("title", None)
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": property_schema,
        }
        if description:
            parameter["description"] = description
        if property_schema.get("type") == "array":
            parameter["style"] = "form"
            parameter["explode"] = True
        parameters.append(parameter)
    return parameters


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a value, never JSON null: keep the non-null branch of ``X | None``."""
    options = schema.get("anyOf")
    if isinstance(options, list):
        non_null = [option for option in options if option.get("type") != "null"]
        if len(non_null) == 1:
            merged = {**{key: value for key, value in schema.items() if key != "anyOf"}, **non_null[0]}
            if merged.get("default") is None:
                merged.pop("default", None)
            return merged
    if schema.get("default") is None:
        schema.pop("default", None)
    return schema
