"""Schemathesis over the live OpenAPI of all five services: zero 5xx, zero responses that
break their own schema (issue 15).

The services run as processes beside a catalogue of their own (its own database), so that
what the fuzzer registers, as the admin, reaches no other test. Bounded: a few examples per
operation, one worker, a fixed seed (a failure is reproducible: the report names the
request, and ``--seed`` replays it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ADMIN_TOKEN, start_service
from test_http_contract import start_five

from awecore.stack import Broker, PostgresServer, ServiceProcess

pytestmark = pytest.mark.integration

SERVICES = ("catalog", "storage", "compute", "lineage", "federation")
#: test cases per operation and phase: enough to find the crashes issue 15 lists, a few
#: minutes for all five services on two cores
EXAMPLES = int(os.environ.get("AWE_FUZZ_EXAMPLES", "8"))
SEED = int(os.environ.get("AWE_FUZZ_SEED", "15"))


@pytest.fixture(scope="module")
def fuzzed(postgres: PostgresServer, broker: Broker,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    logs = tmp_path_factory.mktemp("fuzz-logs")
    env = {**os.environ, "AWE_SITE": "test", "AWE_LOG_LEVEL": "WARNING",
           "AWE_CATALOG_DATABASE_URL": postgres.create_database("awe_fuzz_catalog"),
           "AWE_CATALOG_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
           "AWE_CATALOG_ADMIN_TOKEN": ADMIN_TOKEN}
    catalog, url = start_service("fuzz-catalog", "awe_catalog.main:create_app", env, logs)
    procs: dict[str, ServiceProcess] = {"catalog": catalog}
    try:
        urls, others, root = start_five(postgres, broker, url, logs, prefix="fuzz")
        procs.update(others)
        yield urls
    finally:
        for proc in procs.values():
            proc.stop()
        if "storage" in procs:
            shutil.rmtree(root, ignore_errors=True)


def schemathesis(url: str, phases: str, report: Path, *extra: str,
                 token: str | None = ADMIN_TOKEN) -> None:
    """One run; ``token=None`` sends no Authorization header (an anonymous caller)."""
    auth = ["--header", f"Authorization: Bearer {token}"] if token else []
    argv = [str(Path(sys.executable).with_name("schemathesis")), "run", f"{url}/openapi.json",
            "--checks", "not_a_server_error,response_schema_conformance",
            "--max-examples", str(EXAMPLES), "--seed", str(SEED), "--workers", "1",
            "--phases", phases, "--no-shrink", "--request-timeout", "60",
            "--suppress-health-check", "all", "--warnings", "off",
            *auth, "--report-dir", str(report), *extra]
    # its example database goes where it runs: the report's folder, not the checkout
    report.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False,
                         env={**os.environ, "NO_COLOR": "1"}, cwd=report)
    assert run.returncode == 0, f"{run.stdout[-20000:]}\n{run.stderr[-3000:]}"


@pytest.mark.parametrize("service", SERVICES)
def test_schemathesis(fuzzed: dict[str, str], service: str, tmp_path: Path) -> None:
    """Generated requests (fuzzing) for every operation, and the coverage phase's every
    boundary value (ints past int64, odd datetimes, NULs...) for every operation but the
    catalogue's bodies: their recursive query trees alone make some 75 000 cases (a quarter
    of an hour); its GET operations, where such values come as parameters, are covered."""
    schemathesis(fuzzed[service], "examples,fuzzing", tmp_path / "fuzz")
    only = ("--include-method", "GET") if service == "catalog" else ()
    schemathesis(fuzzed[service], "coverage", tmp_path / "coverage", *only)
