"""The synchronous client of the compute service."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from ..errors import AweError, ServiceUnavailable
from ..jobs import MAX_LOOKUP, JobOut, JobPage, PlanIn, Submitted, TargetIn
from ._problem import raise_for_problem
from ._request_id import request_id_hooks

__all__ = ["ComputeClient", "JobFailed"]


class JobFailed(AweError):
    error = "job_failed"
    status_code = 500
    title = "A job failed"


class ComputeClient:
    def __init__(self, url: str, token: str | None, timeout: float = 120.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout,
                                  event_hooks=request_id_hooks())

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"cannot reach compute at {self.url}: {exc}") from None
        raise_for_problem(response)
        return response.json()

    def submit(self, target: TargetIn) -> Submitted:
        return Submitted.model_validate(
            self._call("POST", "/jobs", json=target.model_dump(mode="json")))

    def submit_plan(self, plan: PlanIn) -> Submitted:
        """Many targets as one DAG: what they share is made once."""
        return Submitted.model_validate(
            self._call("POST", "/jobs/plan", json=plan.model_dump(mode="json")))

    def lookup(self, ids: Sequence[str]) -> list[JobOut]:
        out: list[JobOut] = []
        for i in range(0, len(ids), MAX_LOOKUP):
            got = self._call("POST", "/jobs/lookup", json={"ids": list(ids[i:i + MAX_LOOKUP])})
            out.extend(JobOut.model_validate(j) for j in got)
        return out

    def job(self, job_id: str) -> JobOut:
        return JobOut.model_validate(self._call("GET", f"/jobs/{job_id}"))

    def jobs(self, status: str | None = None, offset: int = 0, limit: int = 100) -> JobPage:
        params: dict[str, Any] = {"offset": offset, "limit": limit}
        if status:
            params["status"] = status
        return JobPage.model_validate(self._call("GET", "/jobs", params=params))

    def cancel(self, job_id: str) -> JobOut:
        """Cancel a job that has not finished (a running one is marked at once and its
        worker's result refused), with the jobs waiting for it; Conflict if it finished.
        ``job_id`` may be a unique start of the id, here and in every call taking one."""
        return JobOut.model_validate(self._call("POST", f"/jobs/{job_id}/cancel"))

    def retry(self, job_id: str) -> JobOut:
        """Requeue a failed or cancelled job and the jobs that failed with it; Conflict if
        it did not fail, or an input of it must be retried first."""
        return JobOut.model_validate(self._call("POST", f"/jobs/{job_id}/retry"))

    def log(self, job_id: str) -> str:
        try:
            response = self._http.get(f"/jobs/{job_id}/log")
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"cannot reach compute at {self.url}: {exc}") from None
        raise_for_problem(response)
        return response.text

    def wait(self, ids: Sequence[str], progress: Callable[[int, int], None] | None = None,
             poll: float = 0.3) -> list[JobOut]:
        """Until every job is done; raises JobFailed (with the reason) if one fails."""
        while True:
            jobs = self.lookup(ids)
            done = sum(j.status == "done" for j in jobs)
            if progress:
                progress(done, len(jobs))
            failed = [j for j in jobs if j.status in ("failed", "cancelled")]
            if failed:
                raise JobFailed(f"{failed[0].cls} job {failed[0].id} {failed[0].status}: "
                                f"{failed[0].error}; `awe jobs log {failed[0].id}` tells more")
            if done == len(jobs):
                return jobs
            time.sleep(poll)
