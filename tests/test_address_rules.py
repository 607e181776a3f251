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


@pytest.mark.parametrize(
    ("address", "printed"),
    [
        ("wss://h.example/cable?token=abc#frag", "wss://h.example/cable"),
        ("wss://h.example/;token=abc", "wss://h.example/"),
        ("wss://h.example/cable;token=abc?x=1", "wss://h.example/cable"),
        ("wss://h.example/a;b/c;token=x", "wss://h.example/a/c"),
        ("wss://h.example/%3Btoken=abc", "wss://h.example/"),
        ("wss://user:pw@h.example:8443/cable", "wss://h.example:8443/cable"),
        ("/cable", "<not an absolute URL>"),
    ],
)
def test_a_printed_address_holds_no_query_fragment_user_or_path_parameter(
    address: str, printed: str
) -> None:
    """Printed addresses are documented as holding no token: `;token=` is one too."""
    assert urls.printable_url(address) == printed
