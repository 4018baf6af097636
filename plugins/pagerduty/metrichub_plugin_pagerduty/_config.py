"""``[sources.<id>] kind = "pagerduty"``: the validated configuration of one PagerDuty source."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from metrichub_core import SourceConfig
from metrichub_core.sources import HttpBaseUrl

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_HISTORY_DAYS", "EU_BASE_URL", "PagerDutyConfig"]

DEFAULT_BASE_URL = "https://api.pagerduty.com"
EU_BASE_URL = "https://api.eu.pagerduty.com"
DEFAULT_HISTORY_DAYS = 365

# PagerDuty object ids: upper-case letters and digits ("PABC123", "PIJ90N7").
_SERVICE_ID = re.compile(r"^[A-Z0-9]+$")


class PagerDutyConfig(SourceConfig):
    """Configuration of a PagerDuty source.

    Parameters:
        token: a REST API key (an account key, read-only is enough, or a user key); sent as
            ``Authorization: Token token=…``.
        base_url: the REST API root; ``https://api.eu.pagerduty.com`` for the EU service region.
        services: PagerDuty service id → MetricHub service; incidents of other services are skipped.
        environment: the environment of every incident of this source.
        urgencies: only incidents of these urgencies (``high``, ``low``); empty means all.
        deployment_related: whether these incidents count toward change failure rate.
        webhook_secrets: the v3 webhook subscription secrets (several while one rotates).
        history_days: how far back the first collection (and ``collect --full``) reaches.
        caused_by_from_notes: read an incident's notes once it resolves, for a ``Caused-by:`` line.
    """

    kind: str = "pagerduty"
    base_url: HttpBaseUrl = Field(
        DEFAULT_BASE_URL, description="REST API root (EU region: https://api.eu.pagerduty.com)."
    )
    token: SecretStr = Field(description="REST API key, sent as 'Authorization: Token token=...'.")
    services: dict[str, str] = Field(min_length=1, description="PagerDuty service id -> MetricHub service.")
    environment: str = Field("production", min_length=1, description="Environment of the incidents.")
    urgencies: list[Literal["high", "low"]] = Field(
        default_factory=list, description="Only incidents of these urgencies; empty: all."
    )
    deployment_related: bool = Field(True, description="Incidents of these services count toward change failure rate.")
    webhook_secrets: list[SecretStr] = Field(
        default_factory=list, description="Secrets of the v3 webhook subscription(s); several while rotating."
    )
    history_days: int = Field(
        DEFAULT_HISTORY_DAYS, ge=1, le=3650, description="Days the first collection reaches back."
    )
    caused_by_from_notes: bool = Field(
        True, description="Read each resolved incident's notes once for a 'Caused-by:' line."
    )

    @field_validator("token")
    @classmethod
    def _check_token(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("is empty (is its ${VARIABLE} set?)")
        return value

    @field_validator("services")
    @classmethod
    def _check_services(cls, value: dict[str, str]) -> dict[str, str]:
        cleaned: dict[str, str] = {}
        for service_id, service in value.items():
            key = service_id.strip()
            if not _SERVICE_ID.match(key):
                raise ValueError(f"{service_id!r} is not a PagerDuty service id (like 'PABC123')")
            if not service.strip():
                raise ValueError(f"{service_id!r} maps to an empty service name")
            cleaned[key] = service.strip()
        return cleaned

    @field_validator("urgencies")
    @classmethod
    def _dedupe_urgencies(cls, value: list[str]) -> list[str]:
        return sorted(set(value))

    @field_validator("webhook_secrets")
    @classmethod
    def _check_secrets(cls, value: list[SecretStr]) -> list[SecretStr]:
        for position, secret in enumerate(value):
            if not secret.get_secret_value().strip():
                raise ValueError(f"secret #{position + 1} is empty (is its ${{VARIABLE}} set?)")
        return value

    def wants_urgency(self, urgency: object) -> bool:
        return not self.urgencies or urgency in self.urgencies
