"""Every function or command a message names exists: a user who is told to call
``awe.X(...)`` or to run ``awe CMD`` can.

The messages are the string literals of libs/awecore/src and services/*/src that read as
prose (they hold whitespace; logger names and event types such as ``awe.catalog.relay`` do
not), and the README and tutorial. ``awe.X.Y`` must resolve, attribute by attribute, from
the awecore package (``import awecore as awe``); ``awe CMD [SUB]`` must be a command of the
typer app, and SUB one of CMD's when CMD is a group. ``awe.env`` is the stack's settings file.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup

import awecore
from awecore.cli import app

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "libs/awecore/src", *sorted((ROOT / "services").glob("*/src"))]
DOCS = [ROOT / "README.md", ROOT / "docs/tutorial.md"]
#: ``awe.X.Y``, not inside a longer name or a path (``.awe/awe.env``, ``pkg.awe.x``)
API = re.compile(r"(?<![\w./-])awe((?:\.[A-Za-z_]\w*)+)")
#: ``awe CMD`` or ``awe GROUP SUB``: lower-case words (OID, FILE, --options are arguments)
COMMAND = re.compile(r"(?<![\w./-])awe ([a-z][\w-]*)(?: ([a-z][\w-]*))?")
FILES = {"env"}  # awe.env, the stack's settings file


def literals() -> Iterator[tuple[str, str]]:
    """(where, text) of every prose string literal of our code, f-string parts included."""
    for root in SOURCES:
        for path in sorted(root.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                        and re.search(r"\s", node.value)):
                    yield f"{path.relative_to(ROOT)}:{node.lineno}", node.value


def texts() -> Iterator[tuple[str, str]]:
    yield from literals()
    for doc in DOCS:
        for n, line in enumerate(doc.read_text().splitlines(), 1):
            yield f"{doc.relative_to(ROOT)}:{n}", line


def api_problem(dotted: str) -> str | None:
    """Why ``awe<dotted>`` names nothing, or None if it resolves."""
    names = dotted.lstrip(".").split(".")
    if names[0] in FILES:
        return None
    obj: object = awecore
    for i, name in enumerate(names):
        if not hasattr(obj, name):
            return f"awe.{'.'.join(names[:i + 1])} does not exist"
        obj = getattr(obj, name)
    return None


def command_problem(cli: TyperGroup, name: str, sub: str | None) -> str | None:
    command = cli.commands.get(name)
    if command is None:
        return f"`awe {name}` is no command; there are {sorted(cli.commands)}"
    if isinstance(command, TyperGroup) and sub is not None and sub not in command.commands:
        return f"`awe {name} {sub}` is no command; {name} has {sorted(command.commands)}"
    return None


def test_every_named_function_and_command_exists() -> None:
    cli = typer.main.get_command(app)
    assert isinstance(cli, TyperGroup)
    problems, checked = [], 0
    for where, text in texts():
        for m in API.finditer(text):
            checked += 1
            why = api_problem(m.group(1))
            if why:
                problems.append(f"{where}: {why} (in {text.strip()[:100]!r})")
        for m in COMMAND.finditer(text):
            checked += 1
            why = command_problem(cli, m.group(1), m.group(2))
            if why:
                problems.append(f"{where}: {why} (in {text.strip()[:100]!r})")
    assert checked > 40  # the scan sees the messages (awe up, awe.connect(), ...)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("text", "ok"), [
    ("call awe.connect() first", True),
    ("change through awe.curate()", False),
    ("awe.CatalogClient.curate and awe.current().curate(oid)", True),
    ("awe.HotPixelMap.plan('2003-02-14', 'ccd53')", True),
    ("awe.HotPixelMap.plot()", False),
    ("or AWE_TOKEN from the stack's awe.env", True),
    ("run `awe up`", True),
    ("see `awe undo OID`", False),
    ("`awe token create`", True),
    ("`awe token rotate`", False),
    ("awe lineage OID --at 2012-12-12", True),
])
def test_the_check_tells_right_from_wrong(text: str, ok: bool) -> None:
    cli = typer.main.get_command(app)
    assert isinstance(cli, TyperGroup)
    problems = [api_problem(m.group(1)) for m in API.finditer(text)]
    problems += [command_problem(cli, m.group(1), m.group(2)) for m in COMMAND.finditer(text)]
    assert (not any(problems)) is ok, problems
