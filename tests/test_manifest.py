"""manifest.json and hacs.json stay acceptable to hassfest and HACS; translations stay complete."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
INTEGRATION = ROOT / "custom_components" / "circle"

MANIFEST_KEYS = {
    "domain",
    "name",
    "after_dependencies",
    "codeowners",
    "config_flow",
    "dependencies",
    "documentation",
    "integration_type",
    "iot_class",
    "issue_tracker",
    "loggers",
    "quality_scale",
    "requirements",
    "single_config_entry",
    "version",
}
HACS_KEYS = {
    "name",
    "homeassistant",
    "hacs",
    "render_readme",
    "content_in_root",
    "zip_release",
    "filename",
    "hide_default_branch",
    "country",
    "persistent_directory",
}


def test_manifest_is_what_hassfest_and_hacs_accept() -> None:
    manifest = json.loads((INTEGRATION / "manifest.json").read_text())
    keys = list(manifest)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:]), (
        "keys after domain and name must be alphabetical"
    )
    assert set(keys) <= MANIFEST_KEYS
    assert manifest["domain"] == INTEGRATION.name == "circle"
    assert manifest["config_flow"] is True
    assert manifest["iot_class"] == "cloud_push"
    assert manifest["integration_type"] == "service"
    assert (
        manifest["requirements"] == []
    )  # aiohttp and voluptuous come with Home Assistant
    assert (
        all(c.startswith("@") for c in manifest["codeowners"])
        and manifest["codeowners"]
    )
    assert manifest["documentation"].startswith("https://")
    assert manifest["issue_tracker"].startswith("https://")
    parts = manifest["version"].split(".")
    assert len(parts) == 3 and all(p.isdigit() for p in parts)


def test_hacs_json() -> None:
    hacs = json.loads((ROOT / "hacs.json").read_text())
    assert set(hacs) <= HACS_KEYS
    assert hacs["name"] == "Circle"
    assert hacs["render_readme"] is True
    year, month, _ = hacs["homeassistant"].split(".")
    assert (int(year), int(month)) <= (2025, 4)


def _leaves(tree: dict, prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in tree.items():
        out |= (
            _leaves(value, f"{prefix}{key}.")
            if isinstance(value, dict)
            else {prefix + key}
        )
    return out


def test_translations_cover_every_key_the_code_uses() -> None:
    strings = json.loads((INTEGRATION / "translations" / "en.json").read_text())
    leaves = _leaves(strings)
    for key in ("unread_notifications", "unread_chats"):
        assert f"entity.sensor.{key}.name" in leaves
    for key in ("chat_message", "notification"):
        assert f"entity.event.{key}.name" in leaves
    for event_type in ("new_message", "message_updated", "message_deleted"):
        assert (
            f"entity.event.chat_message.state_attributes.event_type.state.{event_type}"
            in leaves
        )
    for error in (
        "invalid_url",
        "invalid_auth",
        "not_eligible",
        "member_not_found",
        "rate_limited",
        "cannot_connect",
        "unknown",
    ):
        assert f"config.error.{error}" in leaves
    for issue in ("not_eligible", "subscription_rejected", "origin_rejected"):
        assert f"issues.{issue}.title" in leaves
    for exc in (
        "auth_failed",
        "not_eligible",
        "member_not_found",
        "cannot_connect",
        "rate_limited",
    ):
        assert f"exceptions.{exc}.message" in leaves
    icons = json.loads((INTEGRATION / "icons.json").read_text())
    assert set(icons["entity"]["sensor"]) == {
        "unread_notifications",
        "unread_chats",
        "unread_messages",
        "room_unread",
    }
    for service in ("send_message", "mark_chat_read", "mark_notifications_read"):
        assert f"services.{service}.name" in leaves
    for exc in (
        "entry_not_found",
        "entry_not_loaded",
        "room_not_found",
        "room_ambiguous",
        "empty_message",
        "action_failed",
    ):
        assert f"exceptions.{exc}.message" in leaves


def test_quality_scale_lists_every_rule() -> None:
    rules = yaml.safe_load((INTEGRATION / "quality_scale.yaml").read_text())["rules"]
    expected = {
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
        "async-dependency",
        "inject-websession",
        "strict-typing",
    }
    assert set(rules) == expected
    for rule, value in rules.items():
        status = value if isinstance(value, str) else value["status"]
        assert status in {"done", "todo", "exempt"}, rule
        if status == "exempt":
            assert value.get("comment"), f"{rule} is exempt without a reason"


def test_client_package_has_no_home_assistant_imports() -> None:
    for path in (INTEGRATION / "client").glob("*.py"):
        text = path.read_text()
        assert (
            "import homeassistant" not in text and "from homeassistant" not in text
        ), path
    assert (INTEGRATION / "client" / "py.typed").exists()
