"""pytest plugin: fail on a deprecation caused by this integration.

Loaded by `scripts/test` (`-p tests._deprecation_gate`) on both lanes.
A test fails when, while it runs (setup and teardown included),

- a DeprecationWarning, PendingDeprecationWarning or FutureWarning is issued with a frame
  of custom_components/circle on its stack, or
- Home Assistant reports the integration: `report_usage` / frame.report ("Detected that
  custom integration 'circle' ..."), a deprecated constant or function "used from circle",
  or a blocking call "by custom integration 'circle'".

Warnings at import time (collection) whose source is the integration fail the session.
"""

from __future__ import annotations

from collections.abc import Iterator
import logging
from pathlib import Path
import re
import sys
from types import FrameType
from typing import Any
import warnings

import pytest

DOMAIN = "circle"
SOURCE = str(Path(__file__).resolve().parents[1] / "custom_components" / DOMAIN)
CATEGORIES = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
# frame.report_usage, blocking-call detection, deprecation helpers (2025.4 to 2026.10).
REPORTS = re.compile(
    rf"custom integration '{DOMAIN}'|was \w+ from {DOMAIN}\b|'{DOMAIN}' custom integration"
)
HARMLESS = ("has not been tested by Home Assistant",)

_COLLECTION_OFFENCES: list[str] = []


def _ours(filename: str) -> bool:
    return filename.startswith(SOURCE)


def _frames_of_ours(frame: FrameType | None) -> str | None:
    """The first frame of the integration on the stack, as file:line."""
    while frame is not None:
        if _ours(frame.f_code.co_filename):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return None


class _ReportHandler(logging.Handler):
    """Collects Home Assistant's reports about the integration."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.offences: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:
            return
        if any(text in message for text in HARMLESS):
            return
        if (
            REPORTS.search(message)
            or (_ours(record.pathname) and "deprecat" in message.lower())
            # report_usage without an integration frame logs the stack instead.
            or (
                message.startswith("Detected code that")
                and SOURCE in (record.stack_info or "")
            )
        ):
            self.offences.append(f"{record.name}: {message}")


@pytest.fixture(autouse=True)
def _deprecation_gate() -> Iterator[None]:
    """Watch one test; fail it if the integration caused a deprecation report."""
    offences: list[str] = []
    handler = _ReportHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    try:  # Home Assistant reports each place once per process: forget earlier tests
        from homeassistant.helpers import frame

        frame._REPORTED_INTEGRATIONS.clear()
    except (ImportError, AttributeError):
        pass

    previous = warnings.showwarning

    def showwarning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        if issubclass(category, CATEGORIES):
            where = (
                f"{filename}:{lineno}"
                if _ours(filename)
                else _frames_of_ours(sys._getframe(1))
            )
            if where:
                offences.append(f"{category.__name__} at {where}: {message}")
        # Hand it on to pytest's recorder (its catch_warnings), as if we were not here.
        warnings._showwarnmsg_impl(  # type: ignore[attr-defined]
            warnings.WarningMessage(message, category, filename, lineno, file, line)
        )

    warnings.showwarning = showwarning
    try:
        yield
    finally:
        warnings.showwarning = previous
        root.removeHandler(handler)
    offences += handler.offences
    if offences:
        pytest.fail(
            "deprecation caused by custom_components/circle:\n  "
            + "\n  ".join(dict.fromkeys(offences)),
            pytrace=False,
        )


def pytest_warning_recorded(
    warning_message: warnings.WarningMessage, when: str, nodeid: str, location: Any
) -> None:
    """Warnings while importing the integration (collection) count too."""
    if (
        when in ("collect", "config")
        and issubclass(warning_message.category, CATEGORIES)
        and _ours(str(warning_message.filename))
    ):
        _COLLECTION_OFFENCES.append(
            f"{warning_message.category.__name__} at "
            f"{warning_message.filename}:{warning_message.lineno}: {warning_message.message}"
        )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Name the import-time offences."""
    if _COLLECTION_OFFENCES:
        terminalreporter.section("deprecations caused by custom_components/circle")
        for line in _COLLECTION_OFFENCES:
            terminalreporter.line(line)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run on an import-time offence."""
    if _COLLECTION_OFFENCES and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
