"""hassfest's checks for a custom integration, and every translation key the code uses.

The Home Assistant wheel does not ship `script/hassfest`, so its schemas are rebuilt here
from home-assistant/core `script/hassfest/{manifest,services,icons,translations}.py`, with
Home Assistant's own validators (config_validation, selector, service and icon helpers).

The translation keys are read from the code (its syntax tree), not from a list: a new
`errors[...] = "..."`, `async_abort(reason=...)`, `translation_key=...`, issue, action or
entity without its string in `translations/en.json` fails this file.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import re
import string
import subprocess
import sys
from typing import Any

from homeassistant.const import CONF_SELECTOR, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import (
    config_validation as cv,
    entity_registry as er,
    selector,
    service,
)
from homeassistant.helpers.data_entry_flow import _BaseFlowManagerView
from homeassistant.helpers.icon import convert_shorthand_service_icon
from homeassistant.setup import async_setup_component
from homeassistant.util.yaml import load_yaml_dict
import pytest
from pytest_homeassistant_custom_component.common import (  # type: ignore[import-untyped]
    MockConfigEntry,
)
import voluptuous as vol

from custom_components.circle.const import DOMAIN
from tests.conftest import entry_data, wait_for

ROOT = Path(__file__).resolve().parents[1]
INTEGRATION = ROOT / "custom_components" / "circle"
PLATFORMS = {platform.value for platform in Platform}


def _en() -> dict[str, Any]:
    strings: dict[str, Any] = json.loads(
        (INTEGRATION / "translations" / "en.json").read_text()
    )
    return strings


def _leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out |= _leaves(value, f"{prefix}{key}.")
        else:
            out[prefix + key] = value
    return out


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


# --- hassfest: translations.py -------------------------------------------------------------

RE_TRANSLATION_KEY = re.compile(r"^(?!.+[_-]{2})(?![_-])[a-z0-9-_]+(?<![_-])$")
RE_COMBINED_REFERENCE = re.compile(r"(.+\[%)|(%\].+)")
RE_PLACEHOLDER_IN_SINGLE_QUOTES = re.compile(r"'{\w+}'")


def translation_key_validator(value: str) -> str:
    """hassfest: [a-z0-9-_]+, no leading, trailing or doubled separators."""
    if RE_TRANSLATION_KEY.match(value) is None:
        raise vol.Invalid(f"Invalid translation key '{value}'")
    return value


def translation_value_validator(value: Any) -> str:
    """hassfest: no HTML, no '{placeholder}' in single quotes, no combined refs, no padding."""
    text = cv.string_with_no_html(value)
    if RE_PLACEHOLDER_IN_SINGLE_QUOTES.search(text):
        raise vol.Invalid("placeholder inside single quotes")
    if RE_COMBINED_REFERENCE.search(text):
        raise vol.Invalid("combined translations")
    if text != text.strip():
        raise vol.Invalid("leading or trailing spaces")
    if not text:
        raise vol.Invalid("empty string")
    return text


def _data_entry_schema(*, title_allowed: bool) -> vol.All:
    """hassfest's gen_data_entry_schema (config, options and fix flows)."""
    fields = {str: translation_value_validator}
    schema: dict[Any, Any] = {
        vol.Optional("flow_title"): translation_value_validator,
        vol.Required("step"): {
            str: {
                vol.Optional("title"): translation_value_validator,
                vol.Optional("description"): translation_value_validator,
                vol.Optional("data"): fields,
                vol.Optional("data_description"): fields,
                vol.Optional("menu_options"): fields,
                vol.Optional("submit"): translation_value_validator,
                vol.Optional("sections"): {
                    str: {
                        vol.Optional("data"): fields,
                        vol.Optional("data_description"): fields,
                        vol.Optional("description"): translation_value_validator,
                        vol.Optional("name"): translation_value_validator,
                    }
                },
            }
        },
        vol.Optional("error"): fields,
        vol.Optional("abort"): fields,
        vol.Optional("progress"): fields,
        vol.Optional("create_entry"): fields,
    }
    if title_allowed:
        schema[vol.Optional("title")] = translation_value_validator

    def data_description_validator(value: dict[str, Any]) -> dict[str, Any]:
        for step in value["step"].values():
            for key in step.get("data_description", {}):
                if key not in step.get("data", {}):
                    raise vol.Invalid(f"data_description key {key} is not in data")
            for name, sec in step.get("sections", {}).items():
                for key in sec.get("data_description", {}):
                    if key not in sec.get("data", {}):
                        raise vol.Invalid(
                            f"data_description key {key} is not in section {name}"
                        )
        return value

    return vol.All(vol.Schema(schema), data_description_validator)


def _state_validator() -> Any:
    return cv.schema_with_slug_keys(
        translation_value_validator, slug_validator=translation_key_validator
    )


STRINGS_SCHEMA = vol.Schema(
    {
        vol.Optional("title"): translation_value_validator,
        vol.Optional("config"): _data_entry_schema(title_allowed=True),
        vol.Optional("options"): _data_entry_schema(title_allowed=False),
        vol.Optional("selector"): cv.schema_with_slug_keys(
            {"options": _state_validator()}, slug_validator=vol.Any("_", cv.slug)
        ),
        vol.Optional("issues"): {
            str: vol.All(
                cv.has_at_least_one_key("description", "fix_flow"),
                vol.Schema(
                    {
                        vol.Required("title"): translation_value_validator,
                        vol.Exclusive(
                            "description", "fixable"
                        ): translation_value_validator,
                        vol.Exclusive("fix_flow", "fixable"): _data_entry_schema(
                            title_allowed=False
                        ),
                    }
                ),
            )
        },
        vol.Optional("device"): cv.schema_with_slug_keys(
            {vol.Optional("name"): translation_value_validator},
            slug_validator=translation_key_validator,
        ),
        vol.Optional("entity"): cv.schema_with_slug_keys(
            cv.schema_with_slug_keys(
                {
                    vol.Optional("name"): translation_value_validator,
                    vol.Optional("state"): _state_validator(),
                    vol.Optional("state_attributes"): cv.schema_with_slug_keys(
                        {
                            vol.Optional("name"): translation_value_validator,
                            vol.Optional("state"): _state_validator(),
                        },
                        slug_validator=translation_key_validator,
                    ),
                },
                slug_validator=translation_key_validator,
            ),
            slug_validator=cv.slug,
        ),
        vol.Optional("exceptions"): cv.schema_with_slug_keys(
            {vol.Optional("message"): translation_value_validator},
            slug_validator=cv.slug,
        ),
        vol.Optional("services"): cv.schema_with_slug_keys(
            {
                vol.Required("name"): translation_value_validator,
                vol.Required("description"): translation_value_validator,
                vol.Optional("fields"): cv.schema_with_slug_keys(
                    {
                        vol.Required("name"): str,
                        vol.Required("description"): translation_value_validator,
                        vol.Optional("example"): translation_value_validator,
                    },
                    slug_validator=translation_key_validator,
                ),
                vol.Optional("sections"): cv.schema_with_slug_keys(
                    {
                        vol.Required("name"): str,
                        vol.Optional("description"): translation_value_validator,
                    },
                    slug_validator=translation_key_validator,
                ),
            },
            slug_validator=translation_key_validator,
        ),
        vol.Optional("common"): vol.Schema({cv.slug: translation_value_validator}),
    }
)


# --- hassfest: manifest.py -----------------------------------------------------------------


def verify_version(value: str) -> str:
    """hassfest: a version AwesomeVersion understands (Home Assistant refuses the rest)."""
    from awesomeversion import (
        AwesomeVersion,
        AwesomeVersionException,
        AwesomeVersionStrategy,
    )

    try:
        AwesomeVersion(
            value,
            ensure_strategy=[
                AwesomeVersionStrategy.CALVER,
                AwesomeVersionStrategy.SEMVER,
                AwesomeVersionStrategy.SIMPLEVER,
                AwesomeVersionStrategy.BUILDVER,
                AwesomeVersionStrategy.PEP440,
            ],
        )
    except AwesomeVersionException as err:
        raise vol.Invalid(f"'{value}' is not a valid version.") from err
    return value


def documentation_url(value: str) -> str:
    """hassfest: https only."""
    if not value.startswith("https://"):
        raise vol.Invalid("Documentation url is not prefixed with https")
    return value


CUSTOM_INTEGRATION_MANIFEST_SCHEMA = vol.Schema(
    {
        vol.Required("domain"): str,
        vol.Required("name"): str,
        vol.Optional("integration_type", default="hub"): vol.In(
            ["device", "entity", "hardware", "helper", "hub", "service", "system"]
        ),
        vol.Optional("config_flow"): bool,
        vol.Optional("mqtt"): [str],
        vol.Optional("zeroconf"): list,
        vol.Optional("ssdp"): list,
        vol.Optional("bluetooth"): list,
        vol.Optional("homekit"): dict,
        vol.Optional("dhcp"): list,
        vol.Optional("usb"): list,
        vol.Required("documentation"): vol.All(vol.Url(), documentation_url),
        vol.Optional("issue_tracker"): vol.Url(),
        vol.Optional("quality_scale"): vol.In(
            ["bronze", "silver", "gold", "platinum", "internal"]
        ),
        vol.Optional("requirements"): [str],
        vol.Optional("dependencies"): [str],
        vol.Optional("after_dependencies"): [str],
        vol.Required("codeowners"): [str],
        vol.Optional("loggers"): [str],
        vol.Optional("disabled"): str,
        vol.Optional("iot_class"): vol.In(
            [
                "assumed_state",
                "calculated",
                "cloud_polling",
                "cloud_push",
                "local_polling",
                "local_push",
            ]
        ),
        vol.Optional("single_config_entry"): bool,
        vol.Optional("version"): vol.All(str, verify_version),
        vol.Optional("import_executor"): bool,
    }
)


def test_manifest_schema_and_key_order() -> None:
    """validate_manifest + sort_manifest: schema, domain, IoT class, version, key order."""
    manifest = json.loads((INTEGRATION / "manifest.json").read_text())
    CUSTOM_INTEGRATION_MANIFEST_SCHEMA(manifest)
    assert manifest["domain"] == INTEGRATION.name
    assert "iot_class" in manifest, "Domain is missing an IoT Class"
    assert manifest.get("version"), "No 'version' key in the manifest file."
    keys = list(manifest)
    order = {"domain": ".domain", "name": ".name"}
    assert keys == sorted(keys, key=lambda k: order.get(k, k)), (
        "Manifest keys are not sorted correctly: domain, name, then alphabetical order"
    )
    core = ROOT / ".venv/lib/python3.13/site-packages/homeassistant/components"
    assert not (core / manifest["domain"]).exists(), (
        "Domain collides with built-in core integration"
    )


# --- hassfest: services.py -----------------------------------------------------------------


def _exists(value: Any) -> Any:
    if value is None:
        raise vol.Invalid("Value cannot be None")
    return value


def _unique_field_validator(fields: Any) -> Any:
    seen: set[str] = set()
    for key, value in fields.items():
        for name in value["fields"] if value and "fields" in value else [key]:
            if name in seen:
                raise vol.Invalid(f"Duplicate use of field {name} in service.")
            seen.add(name)
    return fields


def _field_schema(targeted: bool) -> vol.Schema:
    schema: dict[Any, Any] = {
        vol.Optional("example"): _exists,
        vol.Optional("default"): _exists,
        vol.Optional("required"): bool,
        vol.Optional("advanced"): bool,
        vol.Optional(CONF_SELECTOR): selector.validate_selector,
        vol.Optional("description"): str,
        vol.Optional("name"): str,
    }
    if targeted:
        schema[vol.Optional("filter")] = {
            vol.Exclusive("attribute", "field_filter"): {
                vol.Required(str): [vol.All(str, service.validate_attribute_option)]
            },
            vol.Exclusive("supported_features", "field_filter"): [
                vol.All(str, service.validate_supported_feature)
            ],
        }
    return vol.Schema(schema)


def _service_schema(targeted: bool) -> vol.Schema:
    section = vol.Schema(
        {
            vol.Optional("collapsed"): bool,
            vol.Required("fields"): vol.Schema({str: _field_schema(targeted)}),
            vol.Optional("description"): str,
            vol.Optional("name"): str,
        }
    )
    schema: dict[Any, Any] = {
        vol.Optional("fields"): vol.All(
            vol.Schema({str: vol.Any(_field_schema(targeted), section)}),
            _unique_field_validator,
        ),
        vol.Optional("description"): str,
        vol.Optional("name"): str,
    }
    if targeted:
        schema[vol.Required("target")] = selector.TargetSelector.CONFIG_SCHEMA
    return vol.Schema(schema)


CUSTOM_INTEGRATION_SERVICES_SCHEMA = vol.Schema(
    {cv.slug: vol.Any(_service_schema(True), _service_schema(False), None)}
)


def _services_yaml() -> dict[str, Any]:
    services: dict[str, Any] = CUSTOM_INTEGRATION_SERVICES_SCHEMA(
        load_yaml_dict(str(INTEGRATION / "services.yaml"))
    )
    return services


def test_services_yaml_selectors_translations_and_icons() -> None:
    """validate_services: schema with selectors; names, descriptions and icons of each action."""
    services = _services_yaml()
    strings = _en().get("services", {})
    icons = {
        name: convert_shorthand_service_icon(value)
        for name, value in _icons().get("services", {}).items()
    }
    assert set(services) == CODE.services, "services.yaml and the registered actions"
    assert set(strings) == set(services), "translated actions and services.yaml"
    assert set(icons) == set(services), "icons.json services and services.yaml"
    for name, schema in services.items():
        assert icons[name].get("service"), f"Service {name} has no icon in icons.json."
        for key in ("name", "description"):
            assert strings[name].get(key), f"Service {name} has no {key}"
        fields = (schema or {}).get("fields", {})
        plain = {k for k, v in fields.items() if "fields" not in v}
        sections = {k: v for k, v in fields.items() if "fields" in v}
        in_sections = {f for s in sections.values() for f in s["fields"]}
        translated = set(strings[name].get("fields", {}))
        assert translated == plain | in_sections, f"fields of {name} in en.json"
        for section_name in sections:
            assert strings[name]["sections"][section_name]["name"]
        for field_name, field_schema in fields.items():
            if (
                key := field_schema.get("selector", {})
                .get("select", {})
                .get("translation_key")
            ):
                assert key in _en().get("selector", {}), f"{name}.{field_name}"


async def test_services_yaml_matches_the_registered_schemas(
    hass: HomeAssistant,
) -> None:
    """Each action's voluptuous schema has exactly the fields services.yaml describes."""
    assert await async_setup_component(hass, DOMAIN, {})
    registered = hass.services.async_services_for_domain(DOMAIN)
    services = _services_yaml()
    assert set(registered) == set(services)
    for name, svc in registered.items():
        assert isinstance(svc.schema, vol.Schema)
        keys = {str(key) for key in svc.schema.schema}
        if "target" in (services[name] or {}):  # target keys are not fields
            keys -= {"device_id", "entity_id", "area_id", "floor_id", "label_id"}
        described = set((services[name] or {}).get("fields") or {})
        assert keys == described, name
        for key in svc.schema.schema:
            if isinstance(key, vol.Required):
                assert services[name]["fields"][str(key)].get("required") is True, (
                    f"{name}.{key} is required by the schema, not in services.yaml"
                )


# --- hassfest: icons.py --------------------------------------------------------------------


def _icons() -> dict[str, Any]:
    icons: dict[str, Any] = json.loads((INTEGRATION / "icons.json").read_text())
    return icons


def icon_value_validator(value: Any) -> str:
    """hassfest: a Material Design Icon."""
    text = cv.string_with_no_html(value)
    if not text.startswith("mdi:"):
        raise vol.Invalid("The icon needs to start with `mdi:`")
    return str(text)


def ensure_not_same_as_default(value: dict[str, Any]) -> dict[str, Any]:
    """hassfest: a state icon equal to the default icon is redundant."""
    for translation_key, section in value.items():
        if (default := section.get("default")) and (states := section.get("state")):
            for state, icon in states.items():
                if icon == default:
                    raise vol.Invalid(f"`{translation_key}.{state}` = default icon")
    return value


def _icons_schema() -> vol.Schema:
    state_validator = cv.schema_with_slug_keys(
        icon_value_validator, slug_validator=translation_key_validator
    )
    entity_icons = {
        vol.Optional("default"): icon_value_validator,
        vol.Optional("state"): state_validator,
        vol.Optional("range"): dict,
        vol.Optional("state_attributes"): vol.All(
            cv.schema_with_slug_keys(
                {
                    vol.Optional("default"): icon_value_validator,
                    vol.Optional("state"): state_validator,
                },
                slug_validator=translation_key_validator,
            ),
            ensure_not_same_as_default,
        ),
    }
    service_icons = cv.schema_with_slug_keys(
        vol.All(
            convert_shorthand_service_icon,
            vol.Schema(
                {
                    vol.Optional("service"): icon_value_validator,
                    vol.Optional("sections"): cv.schema_with_slug_keys(
                        icon_value_validator, slug_validator=translation_key_validator
                    ),
                }
            ),
        ),
        slug_validator=translation_key_validator,
    )
    data_entry = vol.Schema({"step": {str: {"section": {str: icon_value_validator}}}})
    return vol.Schema(
        {
            vol.Optional("config"): data_entry,
            vol.Optional("options"): data_entry,
            vol.Optional("issues"): vol.Schema({str: {"fix_flow": data_entry}}),
            vol.Optional("services"): service_icons,
            vol.Optional("entity"): vol.All(
                cv.schema_with_slug_keys(
                    vol.All(
                        cv.schema_with_slug_keys(
                            entity_icons, slug_validator=translation_key_validator
                        ),
                        ensure_not_same_as_default,
                    ),
                    slug_validator=cv.slug,
                ),
            ),
        }
    )


def test_icons_json() -> None:
    """validate_icon_file, and an icon for every translated entity (icon-translations)."""
    icons = _icons_schema()(_icons())
    entity_strings = _en().get("entity", {})
    entity_icons = icons.get("entity", {})
    assert set(entity_icons) <= PLATFORMS
    for platform, keys in entity_strings.items():
        assert set(entity_icons.get(platform, {})) == set(keys), (
            f"icons.json and en.json disagree on the {platform} entities"
        )
        for key, value in entity_icons.get(platform, {}).items():
            assert value.get("default"), f"{platform}.{key} has no default icon"


# --- translations used by the code --------------------------------------------------------


class UnresolvedError(Exception):
    """An expression whose string values the checker cannot follow."""


@dataclass
class Code:
    """What the integration's modules (not client/) ask of en.json."""

    required: dict[str, str] = field(default_factory=dict)  # key -> where
    placeholders: dict[str, tuple[set[str], str]] = field(default_factory=dict)
    services: set[str] = field(default_factory=set)
    event_types: set[str] = field(default_factory=set)
    unresolved: list[str] = field(default_factory=list)


class CodeReader:
    """Reads translation keys from the syntax trees of the integration's modules."""

    def __init__(self, package: Path) -> None:
        """Parse every module of the package (the client has no Home Assistant strings)."""
        self.trees = {
            p.stem: ast.parse(p.read_text(), str(p)) for p in package.glob("*.py")
        }
        self.parent: dict[ast.AST, ast.AST] = {}
        self.module: dict[ast.AST, str] = {}
        self.globals: dict[str, list[ast.expr]] = {}
        self.functions: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = {}
        self.calls: list[ast.Call] = []
        for name, tree in self.trees.items():
            for node in ast.walk(tree):
                self.module[node] = name
                for child in ast.iter_child_nodes(node):
                    self.parent[child] = node
                if isinstance(node, ast.Call):
                    self.calls.append(node)
                elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    self.functions.setdefault(node.name, []).append(node)
            for stmt in tree.body:
                for target, value in _assignments(stmt):
                    if isinstance(target, ast.Name):
                        self.globals.setdefault(target.id, []).append(value)

    # -- navigation --

    def enclosing(self, node: ast.AST, kind: type | tuple[type, ...]) -> Any:
        """The nearest ancestor of `kind`, or None."""
        while (node := self.parent.get(node)) is not None:  # type: ignore[assignment]
            if isinstance(node, kind):
                return node
        return None

    def where(self, node: ast.AST) -> str:
        """module:line, for messages."""
        return f"{self.module.get(node, '?')}.py:{getattr(node, 'lineno', '?')}"

    # -- string values of an expression --

    def values(self, node: ast.expr, depth: int = 0) -> set[tuple[str, str]]:
        """Every string `node` can evaluate to, with the module that spells it."""
        if depth > 12:
            raise UnresolvedError(self.where(node))
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {(node.value, self.module[node])}
        if isinstance(node, ast.IfExp):
            return self.values(node.body, depth + 1) | self.values(
                node.orelse, depth + 1
            )
        if isinstance(node, ast.BoolOp):
            return set().union(*(self.values(v, depth + 1) for v in node.values))
        if isinstance(node, ast.Subscript):
            return self._container_strings(node.value, depth + 1)
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            return self._container_strings(node, depth + 1)
        if (  # MAPPING.get(key[, default]): a value of the mapping, or the default
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
        ):
            found = self._container_strings(node.func.value, depth + 1)
            if len(node.args) > 1:
                found |= self.values(node.args[1], depth + 1)
            return found
        if isinstance(node, ast.Attribute) and node.attr in self.globals:
            return self._global(node.attr, depth)
        if isinstance(node, ast.Name):
            return self._name(node, depth)
        raise UnresolvedError(f"{self.where(node)}: {ast.unparse(node)}")

    def _global(self, name: str, depth: int) -> set[tuple[str, str]]:
        return set().union(*(self.values(v, depth + 1) for v in self.globals[name]))

    def _container_strings(self, node: ast.expr, depth: int) -> set[tuple[str, str]]:
        """The string values inside a dict/list literal (`URL_ERRORS[field][reason]`)."""
        if isinstance(node, ast.Subscript):
            return self._container_strings(node.value, depth + 1)
        if isinstance(node, ast.Name | ast.Attribute):
            name = node.id if isinstance(node, ast.Name) else node.attr
            found = self.globals.get(name, [])
            if not found:
                raise UnresolvedError(f"{self.where(node)}: {ast.unparse(node)}")
            return set().union(*(self._container_strings(v, depth + 1) for v in found))
        if isinstance(node, ast.Dict):
            return set().union(
                *(self._container_strings(v, depth + 1) for v in node.values)
            )
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            return set().union(
                *(self._container_strings(v, depth + 1) for v in node.elts)
            )
        return self.values(node, depth + 1)

    def _name(self, node: ast.Name, depth: int) -> set[tuple[str, str]]:
        func = self.enclosing(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        if func is not None:
            found: set[tuple[str, str]] = set()
            local = False
            for stmt in ast.walk(func):
                for target, value in _assignments(stmt):
                    if isinstance(target, ast.Name) and target.id == node.id:
                        local = True
                        found |= self.values(value, depth + 1)
                if (
                    isinstance(stmt, ast.For)
                    and isinstance(stmt.target, ast.Name)
                    and stmt.target.id == node.id
                ):
                    local = True
                    found |= self._container_strings(stmt.iter, depth + 1)
            params = [a.arg for a in (*func.args.posonlyargs, *func.args.args)]
            kwonly = [a.arg for a in func.args.kwonlyargs]
            if node.id in params or node.id in kwonly:
                local = True
                found |= self._arguments(func, node.id, depth + 1)
            if local:
                return found
        if node.id in self.globals:
            return self._global(node.id, depth)
        raise UnresolvedError(f"{self.where(node)}: {node.id}")

    def _arguments(
        self, func: ast.FunctionDef | ast.AsyncFunctionDef, param: str, depth: int
    ) -> set[tuple[str, str]]:
        """What the callers of `func` pass as `param` (or its default)."""
        positional = [a.arg for a in (*func.args.posonlyargs, *func.args.args)]
        cls = self.enclosing(func, ast.ClassDef)
        is_method = (
            cls is not None
            and self.parent.get(func) is cls
            and positional[:1] in (["self"], ["cls"])
        )
        index = positional.index(param) - is_method if param in positional else None
        found: set[tuple[str, str]] = set()
        for call in self._callers(func, cls):
            for kw in call.keywords:
                if kw.arg == param:
                    found |= self.values(kw.value, depth + 1)
                    break
            else:
                if index is not None and index < len(call.args):
                    found |= self.values(call.args[index], depth + 1)
                else:
                    found |= self._default(func, param, depth)
        return found

    def _default(
        self, func: ast.FunctionDef | ast.AsyncFunctionDef, param: str, depth: int
    ) -> set[tuple[str, str]]:
        args = [*func.args.posonlyargs, *func.args.args]
        defaults: dict[str, ast.expr] = {}
        if func.args.defaults:
            names = [a.arg for a in args][-len(func.args.defaults) :]
            defaults = dict(zip(names, func.args.defaults, strict=True))
        for arg, kw_default in zip(
            func.args.kwonlyargs, func.args.kw_defaults, strict=True
        ):
            if kw_default is not None:
                defaults[arg.arg] = kw_default
        default = defaults.get(param)
        if default is None or (
            isinstance(default, ast.Constant) and default.value is None
        ):
            return set()
        return self.values(default, depth + 1)

    def _callers(
        self, func: ast.FunctionDef | ast.AsyncFunctionDef, cls: ast.ClassDef | None
    ) -> Iterator[ast.Call]:
        for call in self.calls:
            target = call.func
            if func.name == "__init__" and cls is not None:
                if isinstance(target, ast.Name) and target.id == cls.name:
                    yield call
                elif (
                    isinstance(target, ast.Attribute)
                    and target.attr == "__init__"
                    and isinstance(target.value, ast.Call)
                    and isinstance(target.value.func, ast.Name)
                    and target.value.func.id == "super"
                ):
                    caller = self.enclosing(call, ast.ClassDef)
                    if caller is not None and cls.name in {
                        ast.unparse(b) for b in caller.bases
                    }:
                        yield call
            elif (isinstance(target, ast.Name) and target.id == func.name) or (
                isinstance(target, ast.Attribute) and target.attr == func.name
            ):
                yield call


def _assignments(stmt: ast.AST) -> Iterator[tuple[ast.expr, ast.expr]]:
    """(target, value) pairs of an assignment, tuple unpacking included."""
    pairs: list[tuple[ast.expr, ast.expr]]
    if isinstance(stmt, ast.Assign):
        pairs = [(t, stmt.value) for t in stmt.targets]
    elif isinstance(stmt, ast.AnnAssign | ast.NamedExpr) and stmt.value is not None:
        pairs = [(stmt.target, stmt.value)]
    else:
        return
    for target, value in pairs:
        if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
            yield from zip(target.elts, value.elts, strict=False)
        else:
            yield target, value


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def _func_name(call: ast.Call) -> str:
    target = call.func
    if isinstance(target, ast.Attribute):
        return target.attr
    return target.id if isinstance(target, ast.Name) else ""


def read_code(package: Path = INTEGRATION) -> Code:
    """Every translation key the integration's code uses."""
    reader = CodeReader(package)
    code = Code()

    def need(key: str, node: ast.AST) -> None:
        code.required.setdefault(key, reader.where(node))

    def strings(node: ast.expr) -> set[str]:
        try:
            return {value for value, _ in reader.values(node)}
        except UnresolvedError as err:
            code.unresolved.append(str(err))
            return set()

    def flow_category(node: ast.AST) -> str:
        cls = reader.enclosing(node, ast.ClassDef)
        bases = {ast.unparse(b) for b in cls.bases} if cls is not None else set()
        return "options" if any("OptionsFlow" in b for b in bases) else "config"

    def method_name(node: ast.AST) -> str:
        func = reader.enclosing(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        return func.name if func is not None else ""

    flow_module = "config_flow"
    for call in reader.calls:
        name = _func_name(call)
        module = reader.module[call]
        key = _keyword(call, "translation_key")
        if key is not None and _keyword(call, "translation_domain") is not None:
            given = _literal_keys(_keyword(call, "translation_placeholders"))
            for value in strings(key):
                need(f"exceptions.{value}.message", call)
                if given is not None:
                    code.placeholders[f"exceptions.{value}.message"] = (
                        given,
                        reader.where(call),
                    )
        elif key is not None and name in ("async_create_issue", "create_issue"):
            for value in strings(key):
                need(f"issues.{value}.title", call)
        elif key is not None and name == "DeviceInfo":
            for value in strings(key):
                need(f"device.{value}.name", call)
        elif key is not None and name.endswith("EntityDescription"):
            platform = module if module in PLATFORMS else None
            for value in strings(key):
                need(f"entity.{platform or '*'}.{value}.name", call)
        elif key is not None and name == "SelectSelectorConfig":
            options = _keyword(call, "options")
            for value in strings(key):
                need(f"selector.{value}", call)
                if options is not None:
                    for option in strings(options):
                        need(f"selector.{value}.options.{option}", call)
        elif key is not None:
            code.unresolved.append(
                f"{reader.where(call)}: translation_key in {name}() is not understood"
            )
        if (event_types := _keyword(call, "event_types")) is not None:
            code.event_types |= strings(event_types)

        # Actions.
        position = {
            "async_register": 1,
            "async_register_admin_service": 2,
            "async_register_entity_service": 0,
            "async_register_platform_entity_service": 2,
        }.get(name)
        if position is not None and len(call.args) > position:
            code.services |= strings(call.args[position])

        if module != flow_module:
            continue
        category = flow_category(call)
        if name == "async_abort" and (
            reason := _keyword(call, "reason") or next(iter(call.args), None)
        ):
            for value in strings(reason):
                need(f"{category}.abort.{value}", call)
        elif name == "async_show_progress" and (
            action := _keyword(call, "progress_action")
        ):
            for value in strings(action):
                need(f"{category}.progress.{value}", call)
        elif name == "_abort_if_unique_id_mismatch":
            reason = _keyword(call, "reason")
            for value in strings(reason) if reason else {"unique_id_mismatch"}:
                need(f"config.abort.{value}", call)
        elif name == "_abort_if_unique_id_configured":
            need("config.abort.already_configured", call)
        elif name == "async_set_unique_id":
            progress = _keyword(call, "raise_on_progress")
            if not (isinstance(progress, ast.Constant) and progress.value is False):
                need("config.abort.already_in_progress", call)
        elif name == "async_update_reload_and_abort":
            if (reason := _keyword(call, "reason")) is not None:
                for value in strings(reason):
                    need(f"config.abort.{value}", call)
            else:
                method = method_name(call)
                sources = [s for s in ("reauth", "reconfigure") if s in method]
                for source in sources or ("reauth", "reconfigure"):
                    need(f"config.abort.{source}_successful", call)
        elif name in ("async_show_form", "async_show_menu"):
            step_id = _keyword(call, "step_id")
            steps = (
                strings(step_id)
                if step_id is not None
                else {method_name(call).removeprefix("async_step_")}
            )
            given = _literal_keys(_keyword(call, "description_placeholders"))
            for step in steps:
                need(f"{category}.step.{step}", call)
                if given is not None:
                    code.placeholders[f"{category}.step.{step}"] = (
                        given,
                        reader.where(call),
                    )
                if name == "async_show_menu" and (
                    menu := _keyword(call, "menu_options")
                ):
                    for option in strings(menu):
                        need(f"{category}.step.{step}.menu_options.{option}", call)
        elif (
            name == "setdefault"
            and isinstance(call.func, ast.Attribute)
            and _is_errors(call.func.value)
        ):
            for value in strings(call.args[1]):
                need(f"{category}.error.{value}", call)

    for tree in reader.trees.values():
        for node in ast.walk(tree):
            # errors[...] = "..." in a flow.
            if reader.module[node] == flow_module:
                for target, assigned in _assignments(node):
                    if isinstance(target, ast.Subscript) and _is_errors(target.value):
                        for text in strings(assigned):
                            need(f"{flow_category(node)}.error.{text}", node)
            # {"translation_domain": ..., "translation_key": ...} handed to an exception.
            if isinstance(node, ast.Dict):
                keys = {
                    k.value: v
                    for k, v in zip(node.keys, node.values, strict=True)
                    if isinstance(k, ast.Constant)
                }
                if "translation_key" in keys and "translation_domain" in keys:
                    for text in strings(keys["translation_key"]):
                        need(f"exceptions.{text}.message", node)
            # _attr_translation_key = ... in an entity class.
            for target, assigned in _assignments(node):
                attr = (
                    target.attr
                    if isinstance(target, ast.Attribute)
                    else getattr(target, "id", "")
                )
                if attr == "_attr_translation_key":
                    try:
                        found = reader.values(assigned)
                    except UnresolvedError:
                        continue  # e.g. entity_description.translation_key: read above
                    for text, where in found:
                        platform = where if where in PLATFORMS else "*"
                        need(f"entity.{platform}.{text}.name", node)
                if attr == "_attr_event_types":
                    code.event_types |= strings(assigned)
    return code


def _literal_keys(node: ast.expr | None) -> set[str] | None:
    """The keys of a placeholders dict literal; set() for none given, None if unknown."""
    if node is None:
        return set()
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {k.value for k in node.keys if isinstance(k, ast.Constant)}
    return None


def _is_errors(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "errors"


CODE = read_code()


def _has(strings: dict[str, Any], dotted: str) -> bool:
    """Whether en.json has `dotted`; `*` matches any one key."""
    nodes: list[Any] = [strings]
    for part in dotted.split("."):
        nxt: list[Any] = []
        for node in nodes:
            if not isinstance(node, dict):
                continue
            if part == "*":
                nxt.extend(node.values())
            elif part in node:
                nxt.append(node[part])
        nodes = nxt
    return bool(nodes)


def test_en_json_is_valid_for_hassfest() -> None:
    """translations/en.json passes hassfest's strings schema."""
    STRINGS_SCHEMA(_en())


def test_code_is_readable() -> None:
    """Every translation key in the code is a literal or a name this checker can follow."""
    assert not CODE.unresolved, CODE.unresolved
    assert CODE.services, "no action found: the checker lost track of services.py"
    assert any(k.startswith("entity.") for k in CODE.required), "no entity found"
    assert any(k.startswith("config.error.") for k in CODE.required), "no flow error"
    assert any(k.startswith("exceptions.") for k in CODE.required), "no exception"
    assert any(k.startswith("issues.") for k in CODE.required), "no repair issue"


def test_every_key_the_code_uses_is_translated() -> None:
    """Flows, errors, aborts, entities, selectors, exceptions and repair issues."""
    strings = _en()
    missing = {
        key: where for key, where in CODE.required.items() if not _has(strings, key)
    }
    assert not missing, f"missing in translations/en.json: {missing}"
    for issue in {k.split(".")[1] for k in CODE.required if k.startswith("issues.")}:
        body = strings["issues"][issue]
        assert "description" in body or "fix_flow" in body, issue
    for event_type in CODE.event_types:
        assert _has(
            strings, f"entity.event.*.state_attributes.event_type.state.{event_type}"
        ), f"event type {event_type} is not translated"


def test_placeholders_the_code_passes_fill_the_strings() -> None:
    """A string's {placeholders} are all given where the code raises or shows it."""
    strings = _leaves(_en())
    for key, (given, where) in CODE.placeholders.items():
        texts = [v for k, v in strings.items() if k == key or k.startswith(f"{key}.")]
        wanted = set().union(*(_placeholders(t) for t in texts)) if texts else set()
        assert wanted <= given, f"{key} needs {wanted - given} at {where}"


def test_no_stale_strings() -> None:
    """Flow errors and aborts, exceptions and issues in en.json are all used by the code."""
    strings = _en()
    used = set(CODE.required)
    stale = [
        f"{section}.{key}"
        for section in (
            "config.error",
            "config.abort",
            "options.error",
            "options.abort",
        )
        for key in _dig(strings, section)
        if f"{section}.{key}" not in used
    ]
    stale += [
        f"exceptions.{key}"
        for key in strings.get("exceptions", {})
        if f"exceptions.{key}.message" not in used
    ]
    stale += [
        f"issues.{key}"
        for key in strings.get("issues", {})
        if f"issues.{key}.title" not in used
    ]
    assert not stale, f"strings no code uses: {stale}"


def _dig(tree: dict[str, Any], dotted: str) -> dict[str, Any]:
    for part in dotted.split("."):
        tree = tree.get(part, {})
    return tree


def test_the_checker_finds_a_missing_key(tmp_path: Path) -> None:
    """The reader really reads: each pattern of the integration yields its key."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "const.py").write_text(
        'ISSUE_X = "new_issue"\nISSUE_Y = "mapped_issue"\n'
    )
    (package / "config_flow.py").write_text(
        'URL_ERRORS = {"a": {"bad": "url_bad"}}\n'
        "def check(errors, field):\n"
        '    errors.setdefault("base", URL_ERRORS[field]["bad"])\n'
        "class F(ConfigFlow):\n"
        "    async def async_step_user(self, user_input=None):\n"
        "        errors = {}\n"
        '        errors["base"] = "brand_new_error" if user_input else "other"\n'
        "        await self.async_set_unique_id(user_input)\n"
        "        if errors:\n"
        '            return self.async_show_form(step_id="user", errors=errors)\n'
        '        return self.async_abort(reason="brand_new_abort")\n'
        "    async def async_step_reauth_confirm(self, user_input=None):\n"
        "        return self.async_update_reload_and_abort(self._get_reauth_entry())\n"
        "class O(OptionsFlow):\n"
        "    async def async_step_init(self, user_input=None):\n"
        '        errors = {"base": "opt_error"}\n'
        '        errors["base"] = "opt_error"\n'
        "        return self.async_show_form(errors=errors)\n"
    )
    (package / "sensor.py").write_text(
        "MAP = {1: ISSUE_Y}\n"
        "def describe(err, fallback):\n"
        "    key, extra = fallback, {}\n"
        "    if err:\n"
        '        key, extra = "special", {}\n'
        '    return {"translation_domain": DOMAIN, "translation_key": key}\n'
        "def f(hass):\n"
        '    raise HomeAssistantError(translation_domain=DOMAIN, translation_key="new_exc")\n'
        "def f2(err):\n"
        '    raise HomeAssistantError(**describe(err, "fallback_exc"))\n'
        "def g(self, key):\n"
        "    ir.async_create_issue(hass, DOMAIN, key, translation_key=key)\n"
        "def h(self, reason):\n"
        "    g(self, ISSUE_X)\n"
        "    if issue := MAP.get(reason):\n"
        "        g(self, issue)\n"
        'DESC = SensorEntityDescription(key="x", translation_key="new_sensor")\n'
    )
    (package / "event.py").write_text(
        'DESC = EventEntityDescription(key="e", translation_key="ev", event_types=["t1"])\n'
    )
    found = read_code(package)
    assert not found.unresolved
    assert {
        "config.error.brand_new_error",
        "config.error.other",
        "config.error.url_bad",
        "config.abort.brand_new_abort",
        "config.abort.already_in_progress",
        "config.abort.reauth_successful",
        "config.step.user",
        "options.step.init",
        "options.error.opt_error",
        "exceptions.new_exc.message",
        "exceptions.special.message",
        "exceptions.fallback_exc.message",
        "issues.new_issue.title",
        "issues.mapped_issue.title",
        "entity.sensor.new_sensor.name",
        "entity.event.ev.name",
    } <= set(found.required)
    assert "config.abort.reconfigure_successful" not in found.required
    assert found.event_types == {"t1"}

    (package / "sensor.py").write_text(
        "def f(hass, thing):\n"
        "    raise HomeAssistantError(translation_domain=DOMAIN, translation_key=thing.key)\n"
    )
    assert read_code(package).unresolved, "a key the reader cannot follow must fail"


# --- the same, at run time -----------------------------------------------------------------


@pytest.fixture
def _fast(cable_options: Any) -> None:
    """Fast cable timings."""


def _form_fields(hass: HomeAssistant, result: Any) -> dict[str, set[str]]:
    """{"": top-level fields, section: its fields}, as the frontend receives them.

    Serialised by the flow view of the running release (voluptuous_serialize up to 2025,
    probatio since), so each lane checks what its frontend gets.
    """
    view = _BaseFlowManagerView(hass.config_entries.flow)
    out: dict[str, set[str]] = {"": set()}
    for item in view._prepare_result_json(result)["data_schema"]:
        if item.get("type") == "expandable":
            out[item["name"]] = {f["name"] for f in item["schema"]}
        else:
            out[""].add(item["name"])
    return out


def _assert_form_translated(
    hass: HomeAssistant, strings: dict[str, Any], result: Any, category: str
) -> None:
    assert result["type"] == "form", result
    step = strings[category]["step"][result["step_id"]]
    for section, fields in _form_fields(hass, result).items():
        if not section:
            assert fields <= set(step.get("data", {})), (result["step_id"], fields)
            continue
        sec = step["sections"][section]
        assert sec.get("name"), (result["step_id"], section)
        assert fields <= set(sec.get("data", {})), (result["step_id"], section, fields)


@pytest.mark.usefixtures("_fast")
async def test_forms_and_entities_are_translated(
    hass: HomeAssistant, simulator: Any
) -> None:
    """Every form field, entity and event type Home Assistant shows has its string."""
    strings = _en()
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": "user"}
    )
    _assert_form_translated(hass, strings, result, "config")

    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Grace Hopper",
        unique_id=f"1_{simulator.member_id}",
        data=entry_data(simulator),
        version=2,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(lambda: entry.runtime_data.data.unread_counts)

    for result in (
        await entry.start_reconfigure_flow(hass),
        await entry.start_reauth_flow(hass),
    ):
        _assert_form_translated(hass, strings, result, "config")
    result = await hass.config_entries.options.async_init(entry.entry_id)
    _assert_form_translated(hass, strings, result, "options")

    registry = er.async_get(hass)
    entities = er.async_entries_for_config_entry(registry, entry.entry_id)
    assert entities
    platforms = set()
    for entity in entities:
        platform = entity.domain
        if entity.has_entity_name and entity.original_name is None:
            continue  # the device's main entity, named after the device (a room)
        platforms.add(platform)
        assert entity.translation_key, f"{entity.entity_id} has no translation key"
        assert _has(strings, f"entity.{platform}.{entity.translation_key}.name"), (
            entity.entity_id
        )
        state = hass.states.get(entity.entity_id)
        if state is None:  # disabled by default
            continue
        for event_type in state.attributes.get("event_types", []):
            assert _has(
                strings,
                f"entity.{platform}.{entity.translation_key}.state_attributes.event_type.state.{event_type}",
            ), (entity.entity_id, event_type)
        for option in state.attributes.get("options", []):
            assert _has(
                strings, f"entity.{platform}.{entity.translation_key}.state.{option}"
            ), (entity.entity_id, option)
    assert platforms == set(strings["entity"]), "entity platforms in en.json"
    assert await hass.config_entries.async_unload(entry.entry_id)


# --- forward compatibility: importing the integration -------------------------------------

_IMPORT_EVERYTHING = """
import importlib, json, logging, pkgutil, warnings
logs = []
class Keep(logging.Handler):
    def emit(self, record):
        logs.append(record.getMessage())
logging.getLogger().addHandler(Keep(logging.WARNING))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import custom_components.circle as package
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)
print(json.dumps({
    "warnings": [
        f"{w.category.__name__} at {w.filename}:{w.lineno}: {w.message}"
        for w in caught
        if issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning))
    ],
    "logs": logs,
}))
"""


def test_modules_import_without_deprecations() -> None:
    """A fresh interpreter imports every module: no deprecation from our code, none reported.

    Runs with the Python of the suite, so `scripts/test --ha-current` checks the current release.
    """
    from tests._deprecation_gate import REPORTS, SOURCE

    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_EVERYTHING],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    ours = [w for w in found["warnings"] if SOURCE in w]
    reports = [line for line in found["logs"] if REPORTS.search(line)]
    assert not ours and not reports, ours + reports


# --- hassfest: dependencies.py and config_flow.py -----------------------------------------

ALLOWED_USED_COMPONENTS = {
    *PLATFORMS,
    "alert",
    "automation",
    "conversation",
    "default_config",
    "device_automation",
    "frontend",
    "group",
    "homeassistant",
    "input_boolean",
    "input_button",
    "input_datetime",
    "input_number",
    "input_select",
    "input_text",
    "media_source",
    "onboarding",
    "panel_custom",
    "persistent_notification",
    "person",
    "script",
    "shopping_list",
    "sun",
    "system_health",
    "system_log",
    "timer",
    "webhook",
    "websocket_api",
    "zone",
}


def _referenced_components() -> dict[str, str]:
    """hassfest's ImportCollector: other integrations the code imports (outside TYPE_CHECKING)."""
    found: dict[str, str] = {}

    class Collector(ast.NodeVisitor):
        def __init__(self, where: str) -> None:
            self.where = where

        def visit_If(self, node: ast.If) -> None:  # noqa: N802 - ast.NodeVisitor API
            if not (
                isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
            ):
                self.generic_visit(node)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:  # noqa: N802
            module = node.module or ""
            if module.startswith("homeassistant.components."):
                found.setdefault(module.split(".")[2], f"{self.where}:{node.lineno}")
            elif module == "homeassistant.components":
                for alias in node.names:
                    found.setdefault(alias.name, f"{self.where}:{node.lineno}")

        def visit_Import(self, node: ast.Import) -> None:  # noqa: N802
            for alias in node.names:
                if alias.name.startswith("homeassistant.components."):
                    found.setdefault(
                        alias.name.split(".")[2], f"{self.where}:{node.lineno}"
                    )

    for path in INTEGRATION.glob("**/*.py"):
        Collector(str(path.relative_to(INTEGRATION))).visit(ast.parse(path.read_text()))
    return found


def test_used_components_are_dependencies() -> None:
    """ "Using component X but it's not in 'dependencies' or 'after_dependencies'"."""
    manifest = json.loads((INTEGRATION / "manifest.json").read_text())
    allowed = (
        ALLOWED_USED_COMPONENTS
        | set(manifest.get("dependencies", []))
        | set(manifest.get("after_dependencies", []))
    )
    undeclared = {
        domain: where
        for domain, where in _referenced_components().items()
        if domain not in allowed
        and domain != DOMAIN
        and not (INTEGRATION / f"{domain}.py").is_file()  # a platform of it: ours
    }
    assert not undeclared, undeclared
    deps = set(manifest.get("dependencies", []))
    assert not deps & set(manifest.get("after_dependencies", []))


def test_config_flow_module_matches_the_manifest() -> None:
    """config_flow: true needs config_flow.py with a ConfigFlow for this domain."""
    manifest = json.loads((INTEGRATION / "manifest.json").read_text())
    tree = ast.parse((INTEGRATION / "config_flow.py").read_text())
    flows = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        and any("ConfigFlow" in ast.unparse(base) for base in node.bases)
        and any(kw.arg == "domain" for kw in node.keywords)
    ]
    assert manifest["config_flow"] is True and len(flows) == 1


_PROBE = """
import warnings
from homeassistant.helpers import frame
from tests._deprecation_gate import SOURCE

def _as_integration(code):
    return compile(code, SOURCE + "/probe.py", "exec")

def test_warning():
    exec(_as_integration("import warnings; warnings.warn('old', DeprecationWarning)"), {})

async def test_report_usage(hass):
    exec(_as_integration("frame.report_usage('uses an old API')"), {"frame": frame})

def test_not_ours():
    warnings.warn("someone else's", DeprecationWarning)
"""


def test_the_deprecation_gate_fails_the_run(tmp_path: Path) -> None:
    """scripts/test --ha-current loads tests/_deprecation_gate.py: it fails on our deprecations."""
    probe = tmp_path / "test_probe.py"
    probe.write_text(_PROBE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COV_CORE")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests._deprecation_gate",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:sugar",
            "--rootdir",
            str(ROOT),
            "-c",
            str(ROOT / "pyproject.toml"),
            "-q",
            "-rE",
            str(probe),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 1, out
    assert "ERROR at teardown of test_warning " in out, out
    assert "ERROR at teardown of test_report_usage " in out, out
    assert "custom integration 'circle' uses an old API" in out, out
    assert "of test_not_ours " not in out, out
    assert re.search(r"3 passed.* 2 errors", out), out
