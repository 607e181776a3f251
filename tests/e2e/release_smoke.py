"""`scripts/release-smoke`: the end-to-end tests on a Home Assistant no test plugin supports yet.

pytest-homeassistant-custom-component pins one Home Assistant each and lags the releases; the
end-to-end tests need none of it (Home Assistant and the simulator run as processes). So they
run here as plain coroutines, and each Home Assistant's log must then hold nothing from or
about the integration at WARNING or above (a deprecation report included), apart from core's
notice that a custom integration is loaded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
import re
import sys
import tempfile
import time

import homeassistant
from homeassistant.const import __version__ as ha_version

from tests import test_e2e

SCENARIOS: tuple[Callable[[None, Path], Awaitable[None]], ...] = (
    test_e2e.test_message_and_notification_reach_home_assistant,
    test_e2e.test_demo_replies_from_home_assistant_and_has_a_dashboard,
)
# A log record's first line: "2026-12-07 01:56:48.912+00:00 WARNING (MainThread) [name] text".
_RECORD = re.compile(
    r"^\S+ \S+ (WARNING|ERROR|CRITICAL) \((?:[^)]*)\) \[([^\]]+)\] (.*)$"
)
_LOADER_NOTICE = "We found a custom integration circle which has not been tested"
_SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def lane_problems() -> list[str]:
    """This Home Assistant and its constraints are the ones the lane pins."""
    pinned = re.search(
        r"^homeassistant==(\S+)$",
        (_SCRIPTS / "requirements_ha_2026.11.txt").read_text(),
        re.MULTILINE,
    )
    if pinned is None or pinned[1] != ha_version:
        return [f"Home Assistant {ha_version} is not the lane's pin"]
    shipped = Path(homeassistant.__file__).parent / "package_constraints.txt"
    ours = _SCRIPTS / "constraints" / f"ha-{ha_version}.txt"
    if not ours.exists() or ours.read_text() != shipped.read_text():
        return [f"{ours.name} is not Home Assistant's package_constraints.txt"]
    return []


def integration_problems(log: str) -> list[str]:
    """Records at WARNING or above from the integration, or naming it (deprecation reports)."""
    problems = []
    for line in log.splitlines():
        if (record := _RECORD.match(line)) is None:
            continue
        logger, text = record.group(2), record.group(3)
        if _LOADER_NOTICE in text:
            continue
        if logger.startswith("custom_components.circle") or re.search(
            r"\bcircle\b", text, re.IGNORECASE
        ):
            problems.append(line)
    return problems


async def _run(config_root: Path) -> int:
    failed = 0
    for number, scenario in enumerate(SCENARIOS):
        started = time.monotonic()
        workdir = config_root / str(number)
        problems: list[str] = []
        try:
            await scenario(None, workdir)
        except Exception as err:  # reported, and the run fails
            problems.append(f"{type(err).__name__}: {err}")
        log = workdir / "config" / "home-assistant.log"
        if log.exists():
            problems += [
                f"log: {line}" for line in integration_problems(log.read_text())
            ]
        else:
            problems.append(f"no log at {log}")
        for problem in problems:
            print(f"FAILED {scenario.__name__}: {problem}", flush=True)
        if problems:
            failed += 1
        else:
            print(f"passed {scenario.__name__} ({time.monotonic() - started:.1f} s)")
    return failed


def main() -> None:
    print(f"Home Assistant {ha_version} on Python {sys.version.split()[0]}", flush=True)
    if problems := lane_problems():
        print(f"FAILED: {problems[0]}", flush=True)
        sys.exit(1)
    with tempfile.TemporaryDirectory(prefix="circle-release-smoke-") as root:
        failed = asyncio.run(_run(Path(root)))
    print(f"release smoke: {len(SCENARIOS) - failed} of {len(SCENARIOS)} passed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
