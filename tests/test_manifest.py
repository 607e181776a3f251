"""manifest.json, hacs.json, the brand folder and quality_scale.yaml, as HA, hassfest and HACS read them."""

from __future__ import annotations

from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader
import json
import logging
from pathlib import Path
from types import ModuleType
from typing import Any

from homeassistant import loader
from homeassistant.core import HomeAssistant
from homeassistant.util.yaml import load_yaml_dict
from PIL import Image
import pytest
import voluptuous as vol

from custom_components.circle.const import DOMAIN

ROOT = Path(__file__).resolve().parents[1]
INTEGRATION = ROOT / "custom_components" / "circle"
BRAND = INTEGRATION / "brand"


def _manifest() -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((INTEGRATION / "manifest.json").read_text())
    return manifest


def test_manifest_says_what_the_integration_is() -> None:
    """A cloud-push service with a config flow, no extra requirements, a semver version."""
    manifest = _manifest()
    assert manifest["domain"] == INTEGRATION.name == DOMAIN
    assert manifest["config_flow"] is True
    assert manifest["iot_class"] == "cloud_push"
    assert manifest["integration_type"] == "service"
    assert manifest["requirements"] == []  # aiohttp and voluptuous come with HA
    assert manifest["codeowners"]
    assert all(c.startswith("@") for c in manifest["codeowners"])
    parts = manifest["version"].split(".")
    assert len(parts) == 3 and all(p.isdigit() for p in parts)


# HACS: hacs/integration custom_components/hacs/utils/validate.py
HACS_JSON_SCHEMA = vol.Schema(
    {
        vol.Required("name"): str,
        vol.Optional("content_in_root"): bool,
        vol.Optional("country"): vol.Any(str, [str]),
        vol.Optional("filename"): str,
        vol.Optional("hacs"): str,
        vol.Optional("hide_default_branch"): bool,
        vol.Optional("homeassistant"): str,
        vol.Optional("persistent_directory"): str,
        vol.Optional("render_readme"): bool,
        vol.Optional("zip_release"): bool,
    },
    extra=vol.PREVENT_EXTRA,
)
HACS_INTEGRATION_MANIFEST_SCHEMA = vol.Schema(
    {
        vol.Required("codeowners"): list,
        vol.Required("documentation"): vol.Url(),
        vol.Required("domain"): str,
        vol.Required("issue_tracker"): vol.Url(),
        vol.Required("name"): str,
        vol.Required("version"): str,
    },
    extra=vol.ALLOW_EXTRA,
)


def test_hacs_json_and_manifest_pass_hacs_validation() -> None:
    """hacs.json and the integration manifest as HACS's validation reads them."""
    hacs = HACS_JSON_SCHEMA(json.loads((ROOT / "hacs.json").read_text()))
    HACS_INTEGRATION_MANIFEST_SCHEMA(_manifest())
    assert hacs["name"] == _manifest()["name"]
    assert hacs["render_readme"] is True
    year, month, _ = hacs["homeassistant"].split(".")
    assert (int(year), int(month)) <= (2025, 4), "the oldest release we support"
    assert not hacs.get("zip_release") and not hacs.get("content_in_root")


async def test_home_assistant_loads_the_manifest(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    """homeassistant.loader accepts the custom integration, its version and platforms."""
    caplog.set_level(logging.WARNING, "homeassistant.loader")
    integration = await loader.async_get_integration(hass, DOMAIN)
    assert not integration.is_built_in
    assert str(integration.version) == _manifest()["version"]
    assert integration.config_flow is True
    assert integration.integration_type == "service"
    assert integration.iot_class == "cloud_push"
    loaded: dict[str, Any] = dict(integration.manifest)
    assert {k: loaded[k] for k in _manifest()} == _manifest()
    for platform in ("config_flow", "diagnostics", "sensor", "event", "binary_sensor"):
        assert integration.platforms_exists([platform]), platform
    assert not [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR
        or (DOMAIN in r.getMessage() and "not been tested" not in r.getMessage())
    ]


# --- brand images: home-assistant/brands rules, served locally since HA 2026.3 -----------

BRAND_FILES = {
    f"{dark}{kind}{hidpi}.png"
    for dark in ("", "dark_")
    for kind in ("icon", "logo")
    for hidpi in ("", "@2x")
}


def _brand_script() -> ModuleType:
    path = ROOT / "scripts" / "brand"
    spec = spec_from_loader("brand_script", SourceFileLoader("brand_script", str(path)))
    assert spec is not None and spec.loader is not None
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _alpha_bbox(img: Image.Image) -> tuple[int, int, int, int]:
    bbox = img.getchannel("A").getbbox()
    assert bbox is not None, "an empty image"
    return bbox


def test_brand_folder_has_the_images() -> None:
    """icon.png and logo.png at least; only file names Home Assistant knows."""
    names = {p.name for p in BRAND.iterdir()}
    assert {"icon.png", "icon@2x.png", "logo.png", "logo@2x.png"} <= names
    assert names <= BRAND_FILES, names - BRAND_FILES


@pytest.mark.parametrize("name", sorted(BRAND_FILES))
def test_brand_image(name: str) -> None:
    """PNG, RGBA on a transparent background, the sizes of the brands rules, trimmed."""
    path = BRAND / name
    if not path.exists():
        assert name.startswith("dark_"), f"{name} is missing"
        return
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.mode == "RGBA"
        width, height = img.size
        hidpi = 2 if "@2x" in name else 1
        left, top, right, bottom = _alpha_bbox(img)
        if "icon" in name:
            assert img.size == (256 * hidpi, 256 * hidpi)
            corners = [(0, 0), (width - 1, 0), (0, height - 1), (width - 1, height - 1)]
            assert all(img.getpixel(c)[3] == 0 for c in corners), "background"
            # Trimmed: the drawing spans the whole width or the whole height.
            assert (left, right) == (0, width) or (top, bottom) == (0, height)
        else:
            assert 128 * hidpi <= min(width, height) <= 256 * hidpi
            assert (left, top, right, bottom) == (0, 0, width, height), "not trimmed"
        if hidpi == 2:
            with Image.open(BRAND / name.replace("@2x", "")) as base:
                assert img.size == (base.width * 2, base.height * 2)


def test_brand_images_come_from_the_script() -> None:
    """scripts/brand redraws exactly the committed images (deterministic, not hand-edited)."""
    drawn = _brand_script().images()
    assert set(drawn) == {p.name for p in BRAND.iterdir()}
    for name, img in drawn.items():
        with Image.open(BRAND / name) as on_disk:
            assert on_disk.size == img.size, name
            assert on_disk.convert("RGBA").tobytes() == img.tobytes(), name


# --- quality_scale.yaml: hassfest's schema and the rules of Home Assistant 2025.4 ---------

RULES = {
    # Bronze
    "action-setup",
    "appropriate-polling",
    "brands",
    "common-modules",
    "config-flow",
    "config-flow-test-coverage",
    "dependency-transparency",
    "docs-actions",
    "docs-high-level-description",
    "docs-installation-instructions",
    "docs-removal-instructions",
    "entity-event-setup",
    "entity-unique-id",
    "has-entity-name",
    "runtime-data",
    "test-before-configure",
    "test-before-setup",
    "unique-config-entry",
    # Silver
    "action-exceptions",
    "config-entry-unloading",
    "docs-configuration-parameters",
    "docs-installation-parameters",
    "entity-unavailable",
    "integration-owner",
    "log-when-unavailable",
    "parallel-updates",
    "reauthentication-flow",
    "test-coverage",
    # Gold
    "devices",
    "diagnostics",
    "discovery",
    "discovery-update-info",
    "docs-data-update",
    "docs-examples",
    "docs-known-limitations",
    "docs-supported-devices",
    "docs-supported-functions",
    "docs-troubleshooting",
    "docs-use-cases",
    "dynamic-devices",
    "entity-category",
    "entity-device-class",
    "entity-disabled-by-default",
    "entity-translations",
    "exception-translations",
    "icon-translations",
    "reconfiguration-flow",
    "repair-issues",
    "stale-devices",
    # Platinum
    "async-dependency",
    "inject-websession",
    "strict-typing",
}
QUALITY_SCALE_SCHEMA = vol.Schema(
    {
        vol.Required("rules"): vol.Schema(
            {
                vol.Optional(rule): vol.Any(
                    vol.In(["todo", "done"]),
                    vol.Schema(
                        {
                            vol.Required("status"): vol.In(["todo", "done"]),
                            vol.Optional("comment"): str,
                        }
                    ),
                    vol.Schema(
                        {vol.Required("status"): "exempt", vol.Required("comment"): str}
                    ),
                )
                for rule in RULES
            }
        )
    }
)


def _rules() -> dict[str, Any]:
    data = load_yaml_dict(str(INTEGRATION / "quality_scale.yaml"))
    rules: dict[str, Any] = QUALITY_SCALE_SCHEMA(data)["rules"]
    return rules


def _status(value: Any) -> str:
    return value if isinstance(value, str) else str(value["status"])


def test_quality_scale_lists_every_rule() -> None:
    """Every rule has a status; an exemption says why."""
    rules = _rules()
    assert set(rules) == RULES
    for rule, value in rules.items():
        if _status(value) == "exempt":
            assert len(value["comment"].split()) >= 5, f"{rule}: give a real reason"


def test_quality_scale_claims_hold() -> None:
    """The rules marked done that a file can prove."""
    rules = {rule: _status(value) for rule, value in _rules().items()}
    assert rules["brands"] == "done"
    assert (BRAND / "icon.png").exists()
    assert rules["icon-translations"] == "done"
    assert json.loads((INTEGRATION / "icons.json").read_text())["services"]
    assert rules["diagnostics"] == "done"
    assert (INTEGRATION / "diagnostics.py").exists()
    assert rules["config-flow"] == rules["reconfiguration-flow"] == "done"
    flow = (INTEGRATION / "config_flow.py").read_text()
    assert "async_step_reconfigure" in flow and "async_step_reauth" in flow
    assert "_abort_if_unique_id_mismatch" in flow
    for platform in ("sensor", "binary_sensor", "event"):
        text = (INTEGRATION / f"{platform}.py").read_text()
        assert "PARALLEL_UPDATES = 0" in text, f"parallel-updates: {platform}"
    assert "_attr_has_entity_name = True" in (INTEGRATION / "entity.py").read_text()
    if rules["strict-typing"] == "done":
        assert (INTEGRATION / "client" / "py.typed").exists()
    if rules["entity-disabled-by-default"] == "done":
        # Room entities: space chats (possibly hundreds) are disabled by default.
        assert (
            "_attr_entity_registry_enabled_default"
            in (INTEGRATION / "entity.py").read_text()
        )
    if rules["dynamic-devices"] == rules["stale-devices"] == "done":
        init = (INTEGRATION / "__init__.py").read_text()
        assert "async_remove_config_entry_device" in init


def test_client_package_has_no_home_assistant_imports() -> None:
    """The embedded client stays a library (dependency-transparency)."""
    for path in (INTEGRATION / "client").glob("*.py"):
        text = path.read_text()
        assert (
            "import homeassistant" not in text and "from homeassistant" not in text
        ), path
    assert (INTEGRATION / "client" / "py.typed").exists()
