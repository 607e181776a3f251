"""The log verdict of `scripts/release-smoke` (its scenarios are tests/test_e2e.py's)."""

from __future__ import annotations

from tests.e2e.release_smoke import integration_problems

STAMP = "2026-12-07 01:56:48.912+00:00"


def test_only_the_integrations_warnings_and_reports_about_it_count() -> None:
    log = "\n".join(
        [
            f"{STAMP} WARNING (SyncWorker_0) [homeassistant.loader] We found a custom "
            "integration circle which has not been tested by Home Assistant.",
            f"{STAMP} INFO (MainThread) [custom_components.circle] Connected to Circle",
            f"{STAMP} ERROR (MainThread) [homeassistant.setup] Setup failed for 'ffmpeg'",
            f"{STAMP} WARNING (MainThread) [custom_components.circle.client.cable] Dropped",
            f"{STAMP} WARNING (MainThread) [homeassistant.helpers.frame] Detected that "
            "custom integration 'circle' calls a deprecated method",
            "Traceback (most recent call last):",
        ]
    )
    problems = integration_problems(log)
    assert [line.split("[", 1)[1].split("]")[0] for line in problems] == [
        "custom_components.circle.client.cable",
        "homeassistant.helpers.frame",
    ]


def test_a_clean_log_has_no_problems() -> None:
    assert integration_problems("") == []
