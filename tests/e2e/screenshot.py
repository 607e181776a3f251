"""Take docs/device-page.png: the Circle device page of the live demo in headless Chromium.

.venv/bin/python -m tests.e2e.screenshot  (needs Debian's chromium)
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
import shutil
import subprocess
import tempfile

from .stack import ROOT, LiveStack


async def _device_id(stack: LiveStack) -> str:
    async with await stack.websocket() as ws:
        await ws.send_json({"id": 1, "type": "config/device_registry/list"})
        devices = (await ws.receive_json())["result"]
    return next(d["id"] for d in devices if stack.entry_id in d["config_entries"])


async def _auth_code(stack: LiveStack, client_id: str) -> str:
    async with stack.session.post(
        stack.url + "/auth/login_flow",
        json={
            "client_id": client_id,
            "handler": ["homeassistant", None],
            "redirect_uri": client_id,
        },
    ) as resp:
        flow = await resp.json()
    async with stack.session.post(
        f"{stack.url}/auth/login_flow/{flow['flow_id']}",
        json={
            "client_id": client_id,
            "username": stack.user,
            "password": stack.password,
        },
    ) as resp:
        return str((await resp.json())["result"])


async def main(out: Path = ROOT / "docs" / "device-page.png") -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("install Debian's chromium first (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        stack = LiveStack(Path(tmp) / "config", demo=True)
        await stack.start()
        try:
            await asyncio.sleep(12)  # let the demo community produce some traffic
            device = await _device_id(stack)
            client_id = stack.url + "/"
            code = await _auth_code(stack, client_id)
            state = base64.b64encode(
                json.dumps({"hassUrl": stack.url, "clientId": client_id}).encode()
            ).decode()
            url = f"{stack.url}/config/devices/device/{device}?auth_callback=1&code={code}&state={state}"
            out.parent.mkdir(exist_ok=True)
            subprocess.run(
                [
                    chromium,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--hide-scrollbars",
                    "--window-size=1400,1000",
                    "--virtual-time-budget=20000",
                    f"--user-data-dir={tmp}/chrome",
                    f"--screenshot={out}",
                    url,
                ],
                check=True,
                capture_output=True,
                timeout=120,
            )
        finally:
            await stack.stop()
    print(out)


if __name__ == "__main__":
    asyncio.run(main())
