"""The catalog refuses to start with a weak or default admin token, and says why."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
from pydantic import SecretStr, ValidationError

from awe_catalog.config import ADMIN_TOKEN_MIN_LENGTH, CatalogSettings, weak_admin_token
from awe_catalog.main import create_app

WEAK = ["change-me", "CHANGE_ME", "admin", "password", "secret", "",
        "awe_bench_admin",  # 15 characters
        "awe_test_admin_token",  # 20: the test fixtures' token until they made one
        "4Qf-9s_kT2mZx7LpR0vBq8Y",  # 23 characters: one short
        "change-me-change-me-please", "Replace_Me_With_A_Real_Token", "passwordpassword",
        "aaaaaaaaaaaaaaaaaaaaaaaa", "abababababababababab"]
STRONG = ["4Qf-9s_kT2mZx7LpR0vBq8Yw",  # 24 characters
          "awe_" + secrets.token_urlsafe(32)]  # as tests/conftest.py and the stack make them


@pytest.mark.parametrize("token", WEAK)
def test_weak_tokens_are_refused_by_the_settings(token: str) -> None:
    with pytest.raises(ValidationError) as info:
        CatalogSettings(admin_token=SecretStr(token))
    message = str(info.value)
    assert "admin token" in message and "AWE_CATALOG_ADMIN_TOKEN" in message
    assert f"at least {ADMIN_TOKEN_MIN_LENGTH} characters" in message
    assert "input_value" not in message, "the refused token must not be printed"
    if len(token) > 8:  # shorter ones ("admin") are words of the message itself
        assert token not in message


def test_the_reasons_are_specific() -> None:
    assert "9 characters long" in (weak_admin_token("change-me") or "")
    assert "known default or placeholder" in (weak_admin_token("Change-Me-Before-Using-It") or "")
    assert "distinct characters" in (weak_admin_token("x1x1x1x1x1x1x1x1x1x1x1x1x1") or "")


@pytest.mark.parametrize("token", STRONG)
def test_strong_tokens_are_accepted(token: str) -> None:
    assert weak_admin_token(token) is None
    assert CatalogSettings(admin_token=SecretStr(token)).admin_token == SecretStr(token)


def test_generated_tokens_are_never_refused() -> None:
    # the local stack (awecore.stack, Stack.up) makes "awe_" + secrets.token_urlsafe(32)
    refused = [t for t in ("awe_" + secrets.token_urlsafe(32) for _ in range(20_000))
               if weak_admin_token(t)]
    assert refused == []


def test_no_admin_token_is_allowed() -> None:
    assert CatalogSettings(admin_token=None).admin_token is None


def test_the_environment_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWE_CATALOG_ADMIN_TOKEN", "change-me")
    with pytest.raises(ValidationError, match="9 characters long"):
        CatalogSettings()


def test_create_app_checks_unvalidated_settings() -> None:
    settings = CatalogSettings.model_construct(admin_token=SecretStr("change-me"))
    with pytest.raises(ValueError, match="the catalog refuses to start"):
        create_app(settings)


@pytest.mark.parametrize("argv", [
    ["-m", "uvicorn", "awe_catalog.main:create_app", "--factory", "--port", "0"],
    ["-m", "awe_catalog.relay"],
], ids=["catalog", "relay"])
def test_processes_refuse_to_start(argv: list[str]) -> None:
    """What an operator sees: the process exits at once, naming the setting and the fix;
    nothing is connected to (the database URL points nowhere)."""
    env = {**os.environ, "AWE_CATALOG_ADMIN_TOKEN": "change-me",
           "AWE_CATALOG_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    done = subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "AWE_CATALOG_ADMIN_TOKEN" in output and "admin token" in output
    assert "change-me" not in output
