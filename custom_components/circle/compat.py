"""The one place where Home Assistant releases differ for this integration.

`OptionsFlowWithReload` (Home Assistant 2025.8) reloads the entry when an options flow changes
the options, with no update listener. Older releases get the same behaviour here.
`DeviceRegistry.async_get_device` is deprecated from 2026.9 for one identifier's look-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigFlowResult, OptionsFlow
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr

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
    hass: HomeAssistant, identifier: tuple[str, str]
) -> dr.DeviceEntry | None:
    """Return the device with this identifier, with the API of the running release."""
    registry = dr.async_get(hass)
    if (
        by_identifier := getattr(registry, "async_get_device_by_identifier", None)
    ) is not None:
        device: dr.DeviceEntry | None = by_identifier(identifier)
        return device
    return registry.async_get_device(identifiers={identifier})


__all__ = ["OptionsFlowWithReload", "async_get_device_by_identifier"]
