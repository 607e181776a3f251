"""Take the README's screenshots from the live demo in headless Chromium.

docs/device-page.png (the account's device with its room devices), docs/room-device.png (one
room's device: unread and last-message sensors, notify entity) and docs/inbox-dashboard.png
(the README's chat inbox card on the demo's dashboard).

.venv/bin/python -m tests.e2e.screenshot  (needs Debian's chromium)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from pathlib import Path
import shutil
import tempfile
from typing import Any

import aiohttp

from .demo import account_device_id, device_list
from .stack import ROOT, LiveStack, free_port

DOCS = ROOT / "docs"
ROOM = "Analytical Engines"  # a seeded group chat the demo community keeps busy
INBOX_MESSAGES = [
    ("Compiler club", "Who has the tape for the A-2 run?"),
    ("COBOL committee", "Minutes attached."),
    ("Alan Turing", "Did the machine pass?"),
    ("Analytical Engines", "The new cards arrived."),
]


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


async def _room_device_id(stack: LiveStack, name: str) -> str:
    devices = await device_list(stack)
    return next(
        d["id"]
        for d in devices
        if stack.entry_id in d["config_entries"]
        and d["via_device_id"] is not None
        and d["name"] == name
    )


# Every text in the page, shadow roots included (Home Assistant's frontend is web components).
PAGE_TEXT = """(() => {
  let text = document.body.innerText;
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot) { text += ' ' + el.shadowRoot.textContent; walk(el.shadowRoot); }
    }
  };
  walk(document);
  return text;
})()"""


class _DevTools:
    """Just enough of the Chrome DevTools protocol: call a method, await its answer."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        await self.ws.send_json(
            {"id": self.next_id, "method": method, "params": params}
        )
        while True:
            answer = await self.ws.receive_json()
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return dict(answer["result"])


async def _page(session: aiohttp.ClientSession, port: int) -> str:
    async with asyncio.timeout(30):
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"http://127.0.0.1:{port}/json/list") as resp:
                    pages = [p for p in await resp.json() if p["type"] == "page"]
                if pages:
                    return str(pages[0]["webSocketDebuggerUrl"])
            await asyncio.sleep(0.2)


async def shoot(
    stack: LiveStack,
    chromium: str,
    shot: tuple[str, Path, str, str],
    tmp: Path,
) -> None:
    """One page, logged in through a fresh auth code in a fresh browser profile, taken once
    the text `ready` shows (real time: Home Assistant's frontend lives on a websocket)."""
    path, out, size, ready = shot
    client_id = stack.url + "/"
    code = await _auth_code(stack, client_id)
    state = base64.b64encode(
        json.dumps({"hassUrl": stack.url, "clientId": client_id}).encode()
    ).decode()
    url = f"{stack.url}{path}?auth_callback=1&code={code}&state={state}"
    port = free_port()
    browser = await asyncio.create_subprocess_exec(
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--window-size={size}",
        f"--remote-debugging-port={port}",
        f"--user-data-dir={tempfile.mkdtemp(dir=tmp)}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with stack.session.ws_connect(
            await _page(stack.session, port), max_msg_size=0
        ) as ws:
            tools = _DevTools(ws)
            width, height = (int(n) for n in size.split(","))
            await tools.call(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=height,
                deviceScaleFactor=1,
                mobile=False,
            )
            await tools.call("Page.navigate", url=url)
            try:
                async with asyncio.timeout(60):
                    while ready not in await _text(tools):
                        await asyncio.sleep(0.5)
            except TimeoutError:
                text = (await _text(tools))[-2000:]
                raise RuntimeError(f"{path} never showed {ready!r}: {text}") from None
            await asyncio.sleep(2)  # icons, fonts and the last card settle
            shot_data = await tools.call("Page.captureScreenshot", format="png")
        out.parent.mkdir(exist_ok=True)
        out.write_bytes(base64.b64decode(shot_data["data"]))
    finally:
        browser.terminate()
        await browser.wait()


async def _text(tools: _DevTools) -> str:
    answer = await tools.call("Runtime.evaluate", expression=PAGE_TEXT)
    return str(answer["result"].get("value", ""))


async def _liven_inbox(stack: LiveStack) -> None:
    """A message in a few rooms, so the inbox shows several unread rooms whatever the demo did."""
    async with stack.session.get(stack.sim["url"] + "/_sim/state") as resp:
        rooms = {r["name"]: r["uuid"] for r in (await resp.json())["rooms"]}
    for name, text in INBOX_MESSAGES:
        await stack.sim_control("message", room_uuid=rooms[name], text=text)
        await asyncio.sleep(1.5)


async def shoot_all(stack: LiveStack, chromium: str, tmp: Path) -> list[Path]:
    await _liven_inbox(stack)
    account = await account_device_id(stack)
    room = await _room_device_id(stack, ROOM)
    shots = [
        ("/lovelace/circle", DOCS / "inbox-dashboard.png", "1000,600", " unread ·"),
        (
            f"/config/devices/device/{room}",
            DOCS / "room-device.png",
            "1400,900",
            "Last message",
        ),
        (
            f"/config/devices/device/{account}",
            DOCS / "device-page.png",
            "1400,1150",
            "Unread notifications",
        ),
    ]
    for shot in shots:
        await shoot(stack, chromium, shot, tmp)
    return [shot[1] for shot in shots]


async def main() -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("install Debian's chromium first (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        stack = LiveStack(Path(tmp) / "config", demo=True)
        await stack.start()
        try:
            await asyncio.sleep(12)  # let the demo community produce some traffic
            outs = await shoot_all(stack, chromium, Path(tmp))
        finally:
            await stack.stop()
    for out in outs:
        print(out)


if __name__ == "__main__":
    asyncio.run(main())
