"""The lanes: what each installs is what it says, and the running one is one of them.

`scripts/setup` installs requirements_test.txt (the oldest release we support) and
`scripts/setup --ha-current` scripts/requirements_ha_current.txt; `scripts/release-smoke`
installs scripts/requirements_ha_2026.11.txt (the release users run, end to end only). Each
uses the package constraints of its Home Assistant release (scripts/constraints/ha-<version>.txt).
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
import re

import homeassistant
from homeassistant.const import __version__ as ha_version

ROOT = Path(__file__).resolve().parents[1]
# The lanes that run the whole suite (each with its test plugin), oldest first.
LANES = {
    "oldest": ROOT / "requirements_test.txt",
    "current": ROOT / "scripts" / "requirements_ha_current.txt",
}
# The end-to-end lane on the newest release (no test plugin supports it yet).
RELEASE_SMOKE = ROOT / "scripts" / "requirements_ha_2026.11.txt"


def _pins(requirements: Path) -> dict[str, str]:
    pins = {}
    for line in requirements.read_text().splitlines():
        if match := re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line.strip()):
            pins[match[1].lower()] = match[2]
    return pins


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def test_each_lane_has_the_constraints_of_its_release() -> None:
    """A lane pins one Home Assistant, and its setup uses that release's constraints."""
    lanes = {**LANES, "release": RELEASE_SMOKE}
    versions = {lane: _pins(path)["homeassistant"] for lane, path in lanes.items()}
    order = [_release(versions[lane]) for lane in ("oldest", "current", "release")]
    assert order == sorted(order) and len(set(order)) == 3, versions
    assert "pytest-homeassistant-custom-component" not in _pins(RELEASE_SMOKE)
    setup = (ROOT / "scripts" / "setup").read_text()
    lib = (ROOT / "scripts" / "lib" / "ha-current.sh").read_text()
    assert f"scripts/constraints/ha-{versions['oldest']}.txt" in setup
    assert f"scripts/constraints/ha-{versions['current']}.txt" in lib
    assert f"scripts/constraints/ha-{versions['release']}.txt" in lib
    kept = {path.name for path in (ROOT / "scripts" / "constraints").iterdir()}
    assert kept == {f"ha-{version}.txt" for version in versions.values()}


def test_the_running_lane_is_installed_as_pinned() -> None:
    """This run's Home Assistant, its test plugin and its constraints are one lane's pins."""
    lane = next(
        (
            name
            for name, path in LANES.items()
            if _pins(path)["homeassistant"] == ha_version
        ),
        None,
    )
    assert lane, f"Home Assistant {ha_version} is not pinned by any lane"
    pins = _pins(LANES[lane])
    plugin = "pytest-homeassistant-custom-component"
    assert metadata.version(plugin) == pins[plugin]
    # The plugin is built for exactly one Home Assistant release: the pair must match.
    assert f"homeassistant=={ha_version}" in [
        requirement.replace(" ", "") for requirement in metadata.requires(plugin) or []
    ]
    shipped = Path(homeassistant.__file__).parent / "package_constraints.txt"
    ours = ROOT / "scripts" / "constraints" / f"ha-{ha_version}.txt"
    assert ours.read_text() == shipped.read_text(), (
        f"{ours.name} is not Home Assistant's package_constraints.txt"
    )
