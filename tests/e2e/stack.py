"""The product as real processes: the Circle simulator and a Home Assistant with this integration.

Used by `scripts/develop` (the live demo) and by the end-to-end test. Home Assistant is onboarded
through its own API and the Circle entry is created through the real config flow over REST.
Nothing reaches the network: only loopback, and no integration that phones home is loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
import secrets
import shutil
import signal
import socket
import sys
from typing import Any

import aiohttp

from . import demo as demo_setup

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "http://127.0.0.1/"

CONFIG_YAML = """\
homeassistant:
  name: Circle demo
  latitude: 52.37
  longitude: 4.89
  elevation: 0
  unit_system: metric
  time_zone: UTC
  country: NL
  currency: EUR
  language: en
http:
  server_host: 127.0.0.1
  server_port: {port}
logger:
  default: warning
  logs:
    custom_components.circle: {log_level}
{components}
"""
E2E_COMPONENTS = ["api", "config", "onboarding", "websocket_api"]
DEMO_COMPONENTS = [
    "api",
    "config",
    "onboarding",
    "websocket_api",
    "frontend",
    "recorder",
    "history",
    "logbook",
    "automation",
    "blueprint",
    "script",
    "person",
    "system_log",
    "energy",
    "notify",
]


# `python -m homeassistant`, except that Home Assistant's check of the minimum Python patch
# release is skipped: it would stop the demo on an older 3.13.x that runs the suite fine.
HASS_LAUNCHER = (
    "import sys, homeassistant.__main__ as m; "
    "m.validate_python = lambda: None; sys.exit(m.main())"
)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveStack:
    """Start, onboard, configure and stop the simulator and Home Assistant."""

    def __init__(
        self,
        config_dir: Path,
        *,
        port: int | None = None,
        python: str = sys.executable,
        demo: bool = False,
        components: list[str] | None = None,
        log_level: str = "info",
    ) -> None:
        self.config_dir = config_dir
        self.port = port or free_port()
        self.python = python
        self.demo = demo
        self.components = components or (DEMO_COMPONENTS if demo else E2E_COMPONENTS)
        self.log_level = log_level
        self.url = f"http://127.0.0.1:{self.port}"
        self.user = "demo"
        self.password = secrets.token_urlsafe(12)
        self.token = ""
        self.sim: dict[str, Any] = {}
        self.entry_id = ""
        self.sim_proc: asyncio.subprocess.Process | None = None
        self.hass_proc: asyncio.subprocess.Process | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None
        return self._session

    async def start(self, timeout: float = 90.0) -> None:
        self._session = aiohttp.ClientSession()
        try:
            async with asyncio.timeout(timeout):
                await self._start_simulator()
                self._write_config()
                await self._start_hass()
                await self._onboard()
                await self._create_entry()
        except BaseException:
            await self.stop()
            raise

    async def _start_simulator(self) -> None:
        args = [self.python, "-m", "tests.simulator", "--port", "0"]
        if self.demo:
            args.append("--demo")
        self.sim_proc = await asyncio.create_subprocess_exec(
            *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE, start_new_session=True
        )
        assert self.sim_proc.stdout is not None
        line = await self.sim_proc.stdout.readline()
        if not line:
            raise RuntimeError("the simulator did not start")
        self.sim = json.loads(line)

    def _write_config(self) -> None:
        if self.config_dir.exists():
            shutil.rmtree(self.config_dir)
        (self.config_dir / "custom_components").mkdir(parents=True)
        (self.config_dir / "custom_components" / "circle").symlink_to(
            ROOT / "custom_components" / "circle", target_is_directory=True
        )
        blueprints = ROOT / "blueprints"
        if blueprints.is_dir():
            shutil.copytree(blueprints, self.config_dir / "blueprints")
        components = "\n".join(
            "automation: !include automations.yaml" if c == "automation" else f"{c}:"
            for c in self.components
        )
        (self.config_dir / "configuration.yaml").write_text(
            CONFIG_YAML.format(
                port=self.port, components=components, log_level=self.log_level
            )
        )
        if "automation" in self.components:
            (self.config_dir / "automations.yaml").write_text("[]\n")
        # Everything but the owner account is marked done: the core-config step would set up
        # integrations that reach the internet.
        storage = self.config_dir / ".storage"
        storage.mkdir()
        (storage / "onboarding").write_text(
            json.dumps(
                {
                    "version": 4,
                    "minor_version": 1,
                    "key": "onboarding",
                    "data": {"done": ["core_config", "analytics", "integration"]},
                }
            )
        )

    async def _start_hass(self) -> None:
        log = open(self.config_dir / "hass.log", "wb")  # noqa: SIM115 - child's log
        self.hass_proc = await asyncio.create_subprocess_exec(
            self.python,
            "-c",
            HASS_LAUNCHER,
            "--config",
            str(self.config_dir),
            "--skip-pip",
            cwd=ROOT,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        log.close()
        while True:
            if self.hass_proc.returncode is not None:
                raise RuntimeError(
                    f"Home Assistant exited; see {self.config_dir / 'hass.log'}"
                )
            with contextlib.suppress(aiohttp.ClientError):
                async with self.session.get(self.url + "/api/onboarding") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.25)

    async def _onboard(self) -> None:
        async with self.session.post(
            self.url + "/api/onboarding/users",
            json={
                "client_id": CLIENT_ID,
                "name": "Demo",
                "username": self.user,
                "password": self.password,
                "language": "en",
            },
        ) as resp:
            resp.raise_for_status()
            code = (await resp.json())["auth_code"]
        async with self.session.post(
            self.url + "/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "client_id": CLIENT_ID,
            },
        ) as resp:
            resp.raise_for_status()
            access = (await resp.json())["access_token"]
        async with await self.websocket(access) as ws:
            await ws.send_json(
                {
                    "id": 1,
                    "type": "auth/long_lived_access_token",
                    "client_name": "circle-develop",
                    "lifespan": 365,
                }
            )
            result = await ws.receive_json()
            assert result["success"], result
            self.token = result["result"]

    async def websocket(
        self, access_token: str | None = None
    ) -> aiohttp.ClientWebSocketResponse:
        """Home Assistant's websocket API, authenticated (use it with `async with`)."""
        ws = await self.session.ws_connect(self.url + "/api/websocket")
        await ws.receive_json()
        await ws.send_json({"type": "auth", "access_token": access_token or self.token})
        answer = await ws.receive_json()
        if answer.get("type") != "auth_ok":
            await ws.close()
            raise RuntimeError(
                f"Home Assistant refused the token: {answer.get('type')}"
            )
        return ws

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def _create_entry(self) -> None:
        async with self.session.post(
            self.url + "/api/config/config_entries/flow",
            json={"handler": "circle", "show_advanced_options": True},
            headers=self.headers,
        ) as resp:
            resp.raise_for_status()
            flow = await resp.json()
        async with self.session.post(
            f"{self.url}/api/config/config_entries/flow/{flow['flow_id']}",
            json={
                "community_url": self.sim["url"],
                "member": str(self.sim["member_id"]),
                "app_token": self.sim["app_token"],
                "advanced": {
                    "server_url": self.sim["url"],
                    "origin": self.sim["origin"],
                },
            },
            headers=self.headers,
        ) as resp:
            resp.raise_for_status()
            result = await resp.json()
        if result.get("type") != "create_entry":
            raise RuntimeError(
                f"config flow did not create the entry: {result.get('errors')}"
            )
        self.entry_id = result["result"]["entry_id"]
        await self.wait_state(
            "binary_sensor.circle_grace_hopper_connection", "on", timeout=20
        )
        if self.demo:
            await demo_setup.install(self)

    async def state(self, entity_id: str) -> dict[str, Any] | None:
        async with self.session.get(
            f"{self.url}/api/states/{entity_id}", headers=self.headers
        ) as resp:
            return await resp.json() if resp.status == 200 else None

    async def wait_state(
        self, entity_id: str, value: str, timeout: float = 10.0
    ) -> None:
        async with asyncio.timeout(timeout):
            while (state := await self.state(entity_id)) is None or state[
                "state"
            ] != value:
                await asyncio.sleep(0.05)

    async def sim_control(self, action: str, **body: Any) -> Any:
        async with self.session.post(
            f"{self.sim['url']}/_sim/{action}", json=body
        ) as resp:
            resp.raise_for_status()
            return (await resp.json())["result"]

    async def stop(self) -> None:
        for proc in (self.hass_proc, self.sim_proc):
            if proc is None or proc.returncode is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def ready_line(self) -> str:
        return f"READY url={self.url} user={self.user} password={self.password} token={self.token}"
