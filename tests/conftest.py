"""Suite-wide rules.

In CI (``CI=true``) a skipped test is a failure, so nothing that needs a system package (Chromium, Debian's
Fashion-MNIST) is silently left untested; only tests marked ``gpu`` may skip there (CI has no GPU).
"""
from __future__ import annotations

import pytest
import torch
from _support import IN_CI


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and item.get_closest_marker("gpu") is None:
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which counts as a failure: {reason}"


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield
