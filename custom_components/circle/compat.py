"""The one place where Home Assistant releases differ for this integration.

`OptionsFlowWithReload` (Home Assistant 2025.8) reloads the entry when an options flow changes
the options, with no update listener. Older releases get the same behaviour here.
`DeviceRegistry.async_get_device` is deprecated from 2026.9 for one identifier's look-up;
`DeviceInfo.via_device` (an identifier) from 2026.8 for `via_device_id` (a device id).
Schemas are voluptuous up to 2026.x and probatio (same API) after: `vol` is the running one.
`BinarySensorDeviceClass` is no longer re-exported explicitly by 2026.10's binary_sensor.
Targets (devices, areas, floors, labels) are resolved by `helpers.service` up to 2025.x and by
`helpers.target` (from a `TargetSelection`) after.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any, cast

from homeassistant.config_entries import ConfigFlowResult, OptionsFlow
from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo

if TYPE_CHECKING:
    # Python 3.14 means Home Assistant 2026.3 or later: type-check against its modules there.
    if sys.version_info >= (3, 14):
        from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
        from homeassistant.components.notify.const import NotifyEntityFeature
        import probatio as vol
    else:
        from homeassistant.components.binary_sensor import BinarySensorDeviceClass
        from homeassistant.components.notify import NotifyEntityFeature
        import voluptuous as vol
else:
    try:
        import probatio as vol
    except ImportError:  # Home Assistant before probatio
        import voluptuous as vol
    try:  # the modules that define them, where they are no longer re-exported
        from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
        from homeassistant.components.notify.const import NotifyEntityFeature
    except ImportError:
        from homeassistant.components.binary_sensor import BinarySensorDeviceClass
        from homeassistant.components.notify import NotifyEntityFeature

if TYPE_CHECKING:
    OptionsFlowWithReload = OptionsFlow
else:
    try:
        from homeassistant.config_entries import OptionsFlowWithReload
    except ImportError:  # Home Assistant before 2025.8

        class OptionsFlowWithReload(OptionsFlow):
            """Reload the entry once the flow has stored changed options."""

            @callback
            def async_create_entry(
                self, *, data: Any = None, **kwargs: Any
            ) -> ConfigFlowResult:
                """Schedule the reload to run after the options are stored (not eager)."""
                result = super().async_create_entry(data=data, **kwargs)
                entry = self.config_entry
                if data is not None and dict(data) != dict(entry.options):
                    self.hass.async_create_task(
                        self.hass.config_entries.async_reload(entry.entry_id),
                        f"circle options reload {entry.entry_id}",
                        eager_start=False,
                    )
                return result


@callback
def async_get_device_by_identifier(
    hass: HomeAssistant, identifier: tuple[str, str], config_entry_id: str
) -> dr.DeviceEntry | None:
    """Return the entry's device with this identifier, with the API of the running release."""
    registry = dr.async_get(hass)
    if (
        by_identifier := getattr(registry, "async_get_device_by_identifier", None)
    ) is not None:
        device: dr.DeviceEntry | None = by_identifier(identifier, config_entry_id)
        return device
    return next(
        (
            device
            for device in dr.async_entries_for_config_entry(registry, config_entry_id)
            if identifier in device.identifiers
        ),
        None,
    )


def with_via_device(
    info: DeviceInfo, identifier: tuple[str, str], device_id: str | None
) -> DeviceInfo:
    """Link a device to its parent: by device id where the release has it, else by identifier."""
    if "via_device_id" in DeviceInfo.__annotations__:
        if device_id is not None:
            cast("dict[str, Any]", info)["via_device_id"] = device_id
    else:
        cast("dict[str, Any]", info)["via_device"] = identifier
    return info


@callback
def async_referenced(
    hass: HomeAssistant, call: ServiceCall
) -> tuple[set[str], set[str], set[str]]:
    """Resolve a call's target: (entities named, entities reached otherwise, devices)."""
    # Imported by name: each release's type checker knows only one of the two modules.
    try:
        target: Any = importlib.import_module("homeassistant.helpers.target")
    except ImportError:  # Home Assistant before helpers.target
        service: Any = importlib.import_module("homeassistant.helpers.service")
        selected = service.async_extract_referenced_entity_ids(hass, call)
    else:
        selected = target.async_extract_referenced_entity_ids(
            hass, target.TargetSelection(call.data)
        )
    return (
        set(selected.referenced),
        set(selected.indirectly_referenced),
        set(selected.referenced_devices),
    )


__all__ = [
    "BinarySensorDeviceClass",
    "NotifyEntityFeature",
    "OptionsFlowWithReload",
    "async_get_device_by_identifier",
    "async_referenced",
    "vol",
    "with_via_device",
]
