"""A small async client for service-to-service calls to the catalog."""

from __future__ import annotations

from typing import Any

import httpx

from ..errors import ServiceUnavailable
from ..query import QuerySpec
from ._problem import raise_for_problem

__all__ = ["AsyncCatalogClient"]


class AsyncCatalogClient:
    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(self, method: str, path: str, token: str | None = None,
                      **kwargs: Any) -> Any:
        if token is not None:
            kwargs.setdefault("headers", {})["Authorization"] = f"Bearer {token}"
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"cannot reach the catalog at {self.url}: {exc}") from None
        raise_for_problem(response)
        return response.json()

    async def whoami(self, token: str) -> dict[str, Any]:
        """The user a token belongs to (raises Unauthorized for a bad token)."""
        return dict(await self.request("GET", "/whoami", token=token))

    async def count(self, spec: QuerySpec) -> int:
        got = await self.request("POST", "/query/count", json=spec.model_dump(mode="json"))
        return int(got["count"])
