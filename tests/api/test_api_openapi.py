from __future__ import annotations

import re
from typing import Any

import httpx
from api_helpers import make_hub

from metrichub_core import __version__
from metrichub_core.api.routes import OPERATIONS

DESIGN_ROUTES = {
    ("get", "/api/v1/health"),
    ("get", "/api/v1/health/storage"),
    ("get", "/api/v1/plugins"),
    ("get", "/api/v1/sources"),
    ("get", "/api/v1/sources/{id}/health"),
    ("post", "/api/v1/sources/{id}/collect"),
    ("get", "/api/v1/metrics/dora"),
    ("get", "/api/v1/metrics/dora/trend"),
    ("post", "/api/v1/deployments"),
    ("post", "/api/v1/changes"),
    ("post", "/api/v1/incidents"),
    ("post", "/api/v1/incidents/{id}/resolve"),
    ("get", "/api/v1/deployments"),
    ("get", "/api/v1/changes"),
    ("get", "/api/v1/incidents"),
    ("post", "/api/v1/webhooks/{source_id}"),
    ("get", "/openapi.json"),
    ("get", "/metrics"),
}


async def schema_of(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    return response.json()  # type: ignore[no-any-return]


async def test_every_design_route_is_in_the_schema(client: httpx.AsyncClient) -> None:
    schema = await schema_of(client)
    assert schema["openapi"] == "3.1.0" and schema["info"]["version"] == __version__
    documented = {(method, path) for path, item in schema["paths"].items() for method in item}
    assert DESIGN_ROUTES <= documented
    assert len({operation["operationId"] for item in schema["paths"].values() for operation in item.values()}) == len(
        OPERATIONS
    )


async def test_schemas_come_from_the_models(client: httpx.AsyncClient) -> None:
    schema = await schema_of(client)
    components = schema["components"]["schemas"]
    deployment = components["Deployment"]
    assert deployment["additionalProperties"] is False
    assert set(deployment["required"]) == {"id", "source", "service", "status", "started_at"}
    assert deployment["properties"]["status"]["enum"] == ["success", "failure", "cancelled", "running"]
    body = schema["paths"]["/api/v1/deployments"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert components[body["$ref"].rsplit("/", 1)[1]]["anyOf"][1]["type"] == "array"
    report = schema["paths"]["/api/v1/metrics/dora"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    envelope = components[report["$ref"].rsplit("/", 1)[1]]
    assert envelope["properties"]["data"]["$ref"].endswith("/DoraReport")
    assert set(components["DoraReport"]["required"]) >= {"window", "lead_time", "change_failure_rate", "overall"}


async def test_query_parameters_and_errors_are_documented(client: httpx.AsyncClient) -> None:
    operation = (await schema_of(client))["paths"]["/api/v1/metrics/dora/trend"]["get"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    assert set(parameters) == {"since", "until", "days", "service", "environment", "label", "profile", "bucket"}
    assert parameters["bucket"]["schema"]["enum"] == ["day", "week", "month"]
    assert parameters["days"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 3660}
    assert parameters["label"]["schema"]["type"] == "array" and parameters["label"]["explode"] is True
    assert not any("null" in str(parameter["schema"]) for parameter in operation["parameters"])
    assert {"200", "400", "500", "504"} <= set(operation["responses"])
    error = operation["responses"]["400"]["content"]["application/json"]["schema"]
    assert error["$ref"].endswith("/ErrorEnvelope")


async def test_security_is_documented_only_when_tokens_are_configured(
    client: httpx.AsyncClient, make_app: Any, client_for: Any
) -> None:
    open_schema = await schema_of(client)
    assert "securitySchemes" not in open_schema["components"]
    guarded = await schema_of(client_for(make_app(make_hub(tokens=["t"]))))
    assert guarded["components"]["securitySchemes"] == {"bearerAuth": {"type": "http", "scheme": "bearer"}}
    post = guarded["paths"]["/api/v1/deployments"]["post"]
    assert post["security"] == [{"bearerAuth": []}] and {"401", "403", "413"} <= set(post["responses"])
    assert "security" not in guarded["paths"]["/api/v1/webhooks/{source_id}"]["post"]
    assert "security" not in guarded["paths"]["/api/v1/deployments"]["get"]


def test_paths_match_the_routes() -> None:
    for operation in OPERATIONS:
        assert set(re.findall(r"{(\w+)}", operation.path)) == set(operation.path_params), operation.path


async def test_the_lead_time_breakdown_is_in_the_schema(client: httpx.AsyncClient) -> None:
    components = (await schema_of(client))["components"]["schemas"]
    breakdown = components["LeadTime"]["properties"]["breakdown"]
    assert {"$ref": "#/components/schemas/LeadTimeBreakdown"} in breakdown["anyOf"]
    assert {"type": "null"} in breakdown["anyOf"]
    stages = components["LeadTimeBreakdown"]
    assert set(stages["required"]) == {"commit_to_merge", "merge_to_deploy"}
    assert stages["properties"]["commit_to_merge"]["$ref"].endswith("/LeadTimeStage")
    assert set(components["LeadTimeStage"]["properties"]) == {"median_seconds", "p90_seconds", "count"}
