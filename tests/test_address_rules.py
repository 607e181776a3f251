"""The config flow and the client (probe, setup) apply one address rule, not two copies."""

from __future__ import annotations

import pytest
import voluptuous as vol

from custom_components.circle import address as address_rules, config_flow
from custom_components.circle.client import urls


def test_the_config_flow_uses_the_clients_rule() -> None:
    assert address_rules._client_normalise_url is urls.normalise_url
    assert config_flow._normalise_url("app.circle.so") == "https://app.circle.so"
    for address, reason in [
        ("http://example.com", urls.INSECURE),
        ("https://a@example.com", urls.CREDENTIALS),
        ("https://example.com:0", urls.INVALID),
    ]:
        with pytest.raises(vol.Invalid) as info:
            config_flow._normalise_url(address)
        assert str(info.value) == reason
