"""A server that echoes the app token encoded: not in the config flow's warning log (issue 22 #3).

Through Home Assistant's flow manager against the simulator: the 400 answer to the mint call
ends as the form's "unknown" error and one warning line, which must hold no form of the token.
"""

from __future__ import annotations

import base64
import logging

from homeassistant.config_entries import SOURCE_USER
from homeassistant.data_entry_flow import FlowResultType
import pytest

from custom_components.circle.const import DOMAIN
from tests.test_config_flow import user_input
from tests.test_hostile_http import ENCODINGS, leaks


@pytest.mark.parametrize("encoding", ["json-u-mixed-case", "percent-upper", "base64"])
async def test_the_flows_warning_holds_no_echoed_app_token(
    hass, simulator, caplog, encoding: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="custom_components.circle")
    echoed = ENCODINGS[encoding](simulator.app_token)
    simulator.add_fault(
        "mint", 400, raw=('{"message": "bad request: ' + echoed + '"}').encode()
    )
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], user_input(simulator)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "unknown"}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "Unexpected answer from Circle" in w and "bad request" in w for w in warnings
    )
    assert not leaks(caplog.text + str(result), simulator.app_token, encoding)
    assert base64.b64encode(simulator.app_token.encode()).decode() not in caplog.text
