"""Helpers shared by the tests (importable from any test module: tests/ is on sys.path via its conftest)."""
from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, reason: str) -> None:
    """Skip the calling test with ``reason`` unless ``condition`` holds; in CI, fail instead."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"needed in CI: {reason}")
    pytest.skip(reason)
