"""A thin Jenkins JSON API client over the host's ``httpx.AsyncClient``: basic auth, errors, job URLs.

Retries, the circuit breaker and pacing are the host's job. Jenkins answers ``api/json``
without ETags, so every request tells the host's cache to keep nothing
(``CACHE_EXTENSION: False``): a re-run's "nothing new" is one small ranged request per job,
not a ``304``.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from metrichub_core.errors import UpstreamError
from metrichub_core.resilience import CACHE_EXTENSION

__all__ = ["JenkinsClient", "JenkinsError", "job_path"]


class JenkinsError(UpstreamError):
    """Jenkins answered with an error the source cannot work around."""


def job_path(full_name: str) -> str:
    """``a/b/feature%2Fx`` → ``/job/a/job/b/job/feature%252Fx`` (each name encoded as Jenkins does)."""
    return "".join(f"/job/{quote(segment, safe='')}" for segment in full_name.split("/"))


@dataclass
class JenkinsClient:
    """Sends Jenkins API requests through ``http`` (the host's policy-wrapped client).

    Basic auth goes with every request, pre-emptively: Jenkins answers an anonymous request
    with ``403`` (or with less data), never with a ``401`` challenge.
    """

    http: httpx.AsyncClient
    base_url: str
    username: str | None
    api_token: str | None = field(repr=False)
    logger: logging.Logger
    requests: int = 0

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.username is not None and self.api_token is not None:
            pair = f"{self.username}:{self.api_token}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        return headers

    async def job_json(self, full_name: str, tree: str) -> Any:
        """``GET /job/…/api/json?tree=…`` of the job (or folder) ``full_name``."""
        return await self.get_json(job_path(full_name) + "/api/json", tree)

    async def get_json(self, path: str, tree: str | None = None) -> Any:
        """GET ``base_url + path`` (with ``?tree=`` when given); error statuses raise ``JenkinsError``."""
        self.requests += 1
        params = {"tree": tree} if tree is not None else None
        response = await self.http.get(
            self.base_url + path, params=params, headers=self._headers(), extensions={CACHE_EXTENSION: False}
        )
        if response.is_error:
            raise _error(response, path)
        try:
            return response.json()
        except ValueError:
            raise JenkinsError(
                f"GET {path}: {response.status_code} but not JSON (is base_url the Jenkins root?)"
            ) from None


def _error(response: httpx.Response, path: str) -> JenkinsError:
    status = response.status_code
    where = f"GET {path}"
    if status == 401:
        return JenkinsError(f"{where}: 401 Unauthorized: check the source's username and api_token", status)
    if status == 403:
        return JenkinsError(
            f"{where}: 403 Forbidden: Jenkins refused the request (check username and api_token, "
            "and that the user has Overall/Read and Job/Read)",
            status,
        )
    if status == 404:
        return JenkinsError(f"{where}: 404 not found (wrong job name, or the user cannot see it)", status)
    return JenkinsError(f"{where}: {status} {response.reason_phrase}".rstrip(), status)
