"""`scripts/bench`: figures for the cable path, and the soak.

    scripts/bench [--quick] [--json PATH]     throughput, latency, reconnect, half-open, memory
    scripts/bench soak --minutes N            traffic plus random faults; lost/duplicated/out-of-order

Every figure is measured side by side with its floor in the same run, on the same frames.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import itertools
import json
import os
from pathlib import Path
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from typing import Any, Self

import aiohttp
from aiohttp import web
import orjson

from custom_components.circle.client import (
    CableEvent,
    CableOptions,
    Channel,
    CircleAuth,
    CircleCable,
    StaticAccessToken,
)
from custom_components.circle.client.delivery import DeliveryCore, Snapshot
from custom_components.circle.client.frames import read_frames
from custom_components.circle.client.models import ChatRoom
from custom_components.circle.client.protocol import identifier
from tests.e2e.stack import ROOT, LiveStack
from tests.simulator import CircleSimulator, SimConfig
from tests.simulator.model import Community, seed

MEMBER = 42
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process in MB."""
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 1e6


def ws_frame(text: str) -> bytes:
    """An unmasked server-to-client text frame (RFC 6455)."""
    data = text.encode()
    size = len(data)
    if size < 126:
        header = struct.pack("!BB", 0x81, size)
    elif size < 65536:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + data


def payloads(count: int, first_id: int = 10_000_000) -> list[str]:
    """Realistic broadcast payloads: mostly newMessage (distinct ids), some counts."""
    community = Community()
    s = seed(community)
    message = community.post_message(
        s["dm"], s["ada"].id, "Has anyone tried the new engine?"
    )
    template = community.message_json(message, with_kind=True)
    out: list[str] = []
    for i in range(count):
        if i % 10 == 9:
            out.append(
                json.dumps(
                    {
                        "event": "updateNewNotificationCount",
                        "data": {"new_notifications_count": i},
                    }
                )
            )
        else:
            out.append(
                json.dumps(
                    {"event": "newMessage", "data": {**template, "id": first_id + i}}
                )
            )
    return out


class BlastServer:
    """After a client subscribes to ChatRoomChannel, write every frame to the socket at once.

    Each connection gets new message ids, so nothing is dropped as a duplicate.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self.connections = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/cable", self._cable)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"ws://127.0.0.1:{port}/cable"

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def _cable(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("actioncable-v1-json",), compress=False)
        await ws.prepare(request)
        self.connections += 1
        texts = payloads(self.count, 10_000_000 + self.connections * self.count)
        await ws.send_str('{"type":"welcome"}')
        async for msg in ws:
            frame = json.loads(msg.data)
            if frame.get("command") != "subscribe":
                continue
            ident = frame["identifier"]
            confirm = ws_frame(
                json.dumps({"identifier": ident, "type": "confirm_subscription"})
            )
            if json.loads(ident).get("channel") != "ChatRoomChannel":
                request.transport.write(confirm)  # type: ignore[union-attr]
                continue
            prefix = '{"identifier":' + json.dumps(ident) + ',"message":'
            blob = b"".join(ws_frame(prefix + p + "}") for p in texts)
            request.transport.write(confirm)  # type: ignore[union-attr]
            # A pause between confirm and the burst: aioactioncable loses messages that
            # arrive before its subscribe() has returned. Every client times from its first
            # broadcast, so the pause is not measured.
            await asyncio.sleep(0.2)
            request.transport.write(blob)  # type: ignore[union-attr]
        return ws


class BlastProcess:
    """The blast server in its own process: no client shares its event loop or its core."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""

    async def __aenter__(self) -> Self:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.bench",
            "blast-server",
            "--count",
            str(self.count),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        self.url = (await self.proc.stdout.readline()).decode().strip()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        await self.proc.wait()


async def serve_blast(count: int) -> None:
    server = BlastServer(count)
    await server.start()
    print(server.url, flush=True)
    await asyncio.Event().wait()


# --- 1. throughput ---------------------------------------------------------------------------


async def floor_client(session: aiohttp.ClientSession, url: str, count: int) -> float:
    """Bare aiohttp receive plus JSON decode: the fastest anything can read these frames."""
    async with session.ws_connect(url, protocols=("actioncable-v1-json",)) as ws:
        await ws.receive()
        ident = json.dumps(
            {"channel": "ChatRoomChannel", "community_member_id": MEMBER}
        )
        await ws.send_str(json.dumps({"command": "subscribe", "identifier": ident}))
        await ws.receive()  # confirm
        msg = await ws.receive()
        start = time.perf_counter()
        orjson.loads(msg.data)
        for _ in range(count - 1):
            msg = await ws.receive()
            orjson.loads(msg.data)
        return time.perf_counter() - start


async def our_client(session: aiohttp.ClientSession, url: str, count: int) -> float:
    """The client's full path: receive, parse, route, type, dedupe, dispatch."""
    cable = CircleCable(
        session,
        url,
        StaticAccessToken("t"),
        MEMBER,
        options=CableOptions(stale_after=60),
    )
    done = asyncio.Event()
    seen = 0
    start = 0.0

    def on_event(_event: CableEvent) -> None:
        nonlocal seen, start
        seen += 1
        if seen == 1:
            start = time.perf_counter()
        elif seen == count:
            done.set()

    cable.add_event_listener(on_event)
    task = asyncio.get_running_loop().create_task(cable.run())
    await done.wait()
    elapsed = time.perf_counter() - start
    await cable.stop()
    await task
    return elapsed


def aioactioncable_module() -> Any | None:
    """Import aioactioncable, installing it into a side folder on first use."""
    target = ROOT / ".bench-deps"
    sys.path.insert(0, str(target))
    try:
        return importlib.import_module("aioactioncable")
    except ImportError:
        pass
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(target),
            "aioactioncable",
        ],
        check=False,
        capture_output=True,
    )
    if result.returncode != 0:
        return None
    importlib.invalidate_caches()
    try:
        return importlib.import_module("aioactioncable")
    except ImportError:
        return None


async def aioactioncable_client(module: Any, url: str, count: int) -> float:
    """The existing Python ActionCable client (built on `websockets`, with its own loop thread).

    Its API blocks the caller's loop on every call, by design; that cost is part of it.
    """
    connection = await module.connect(url)
    subscription = await connection.subscribe(
        {"channel": "ChatRoomChannel", "community_member_id": MEMBER}
    )
    await subscription.recv()
    start = time.perf_counter()
    for _ in range(count - 1):
        await subscription.recv()
    elapsed = time.perf_counter() - start
    with contextlib.suppress(Exception):
        await connection.close()
    return elapsed


async def bench_throughput(count: int, rounds: int) -> dict[str, Any]:
    module = aioactioncable_module()
    results: dict[str, list[float]] = {"floor": [], "client": [], "aioactioncable": []}
    async with BlastProcess(count) as server, aiohttp.ClientSession() as session:
        for _ in range(rounds):
            results["floor"].append(
                count / await floor_client(session, server.url, count)
            )
            results["client"].append(
                count / await our_client(session, server.url, count)
            )
            if module is not None:
                try:
                    elapsed = await asyncio.wait_for(
                        aioactioncable_client(module, server.url, count), 120
                    )
                except Exception as err:
                    print(f"aioactioncable failed: {err!r}", file=sys.stderr)
                else:
                    results["aioactioncable"].append(count / elapsed)
    best = {k: max(v) if v else None for k, v in results.items()}
    return {
        "frames": count,
        "rounds": rounds,
        "floor_fps": best["floor"],
        "client_fps": best["client"],
        "aioactioncable_fps": best["aioactioncable"],
        "client_vs_floor": best["client"] / best["floor"],
        "client_vs_aioactioncable": (best["client"] / best["aioactioncable"])
        if best["aioactioncable"]
        else None,
    }


# --- 2. latency through Home Assistant ------------------------------------------------------------


async def bench_frame_path(count: int, rounds: int) -> dict[str, Any]:
    """In-process, no socket: the cost per frame of the cable's read path and of the core.

    Steadier than the socket figures on a shared machine (no other process to wait for).
    floor: receive + orjson.loads; cable: CircleCable's read loop with one listener; core:
    the delivery core taking each event (live, synced) and the driver draining its outputs.
    """
    ident = identifier(Channel.CHAT_ROOM, community_member_id=42)
    texts = [
        orjson.dumps({"identifier": ident, "message": orjson.loads(p)}).decode()
        for p in payloads(count)
    ]
    messages = [aiohttp.WSMessage(aiohttp.WSMsgType.TEXT, t, None) for t in texts]
    messages.append(aiohttp.WSMessage(aiohttp.WSMsgType.CLOSED, None, None))

    class FakeSocket:
        def __init__(self) -> None:
            self.frames = iter(messages)

        async def receive(self) -> aiohttp.WSMessage:
            return next(self.frames)

    async def floor() -> None:
        ws = FakeSocket()
        while (msg := await ws.receive()).type is aiohttp.WSMsgType.TEXT:
            orjson.loads(msg.data)

    events: list[CableEvent] = []
    delivered = 0

    def count_event(_event: CableEvent) -> None:
        nonlocal delivered
        delivered += 1

    async def cable(listener: Any = count_event) -> None:
        client = CircleCable(None, "ws://x/cable", StaticAccessToken("t"), 42)  # type: ignore[arg-type]
        client.add_event_listener(listener)
        await read_frames(client._socket_for(FakeSocket()))  # type: ignore[arg-type]

    async def timed(run: Any) -> float:
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            await run()
            times.append(time.perf_counter() - start)
        return min(times) / count * 1e6

    floor_us = await timed(floor)
    cable_us = await timed(cable)
    await cable(events.append)  # the events for the core, untimed
    room = ChatRoom.from_json(orjson.loads(payloads(1)[0])["data"])
    core_times = []
    for _ in range(rounds):
        core = DeliveryCore(42)
        core.connected(0.0, ())
        core.snapshot_read(0.0, 1, Snapshot(0, frozenset(), (room,) if room else ()))
        core.drain()
        start = time.perf_counter()
        for event in events:
            core.event(event, 0.0)
            if core.outbox:
                core.drain()
        core_times.append(time.perf_counter() - start)
        for event in events:  # each round parses the messages again
            with contextlib.suppress(AttributeError):
                del event._message  # type: ignore[attr-defined]
    return {
        "frames": count,
        "floor_us": floor_us,
        "cable_us": cable_us,
        "core_us": min(core_times) / len(events) * 1e6,
    }


async def bench_latency(samples: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        stack = LiveStack(Path(tmp) / "config", log_level="warning")
        await stack.start()
        try:
            return await _latency(stack, samples)
        finally:
            await stack.stop()


async def _latency(stack: LiveStack, samples: int) -> dict[str, Any]:
    session = stack.session
    async with session.post(
        stack.sim["url"] + "/api/v1/headless/auth_token",
        headers={"Authorization": f"Bearer {stack.sim['app_token']}"},
        json={"community_member_id": stack.sim["member_id"]},
    ) as resp:
        token = (await resp.json())["access_token"]
    async with session.get(stack.sim["url"] + "/_sim/state") as resp:
        rooms = (await resp.json())["rooms"]
    dm = next(r for r in rooms if r["kind"] == "direct")
    floor_at: dict[int, float] = {}
    hass_at: dict[int, float] = {}
    floor = await session.ws_connect(
        stack.sim["cable_url"],
        headers={"Authorization": f"Bearer {token}", "Origin": stack.sim["origin"]},
    )
    hass = await stack.websocket()
    try:
        await floor.receive()
        ident = json.dumps(
            {
                "channel": "ChatRoomChannel",
                "community_member_id": stack.sim["member_id"],
            }
        )
        await floor.send_str(json.dumps({"command": "subscribe", "identifier": ident}))
        await hass.send_json(
            {"id": 1, "type": "subscribe_events", "event_type": "circle_new_message"}
        )
        await hass.receive_json()

        async def read_floor() -> None:
            async for msg in floor:
                frame = orjson.loads(msg.data)
                if "message" in frame and isinstance(frame["message"], dict):
                    data = frame["message"].get("data") or {}
                    if "id" in data:
                        floor_at.setdefault(data["id"], time.perf_counter())

        async def read_hass() -> None:
            async for msg in hass:
                frame = orjson.loads(msg.data)
                if frame.get("type") == "event":
                    hass_at[frame["event"]["data"]["message_id"]] = time.perf_counter()

        readers = [asyncio.create_task(read_floor()), asyncio.create_task(read_hass())]
        await asyncio.sleep(0.5)
        floor_ms: list[float] = []
        hass_ms: list[float] = []
        for i in range(samples):
            t0 = time.perf_counter()
            async with session.post(
                stack.sim["url"] + "/_sim/message",
                json={"room_id": dm["id"], "text": f"l{i}"},
            ) as resp:
                message_id = (await resp.json())["result"]["id"]
            deadline = t0 + 5
            while (
                message_id not in floor_at or message_id not in hass_at
            ) and time.perf_counter() < deadline:
                await asyncio.sleep(0.0005)
            floor_ms.append((floor_at[message_id] - t0) * 1000)
            hass_ms.append((hass_at[message_id] - t0) * 1000)
            await asyncio.sleep(0.02)
        for reader in readers:
            reader.cancel()
    finally:
        await floor.close()
        await hass.close()

    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return {
        "samples": samples,
        "floor_p50_ms": pct(floor_ms, 0.5),
        "floor_p99_ms": pct(floor_ms, 0.99),
        "hass_p50_ms": pct(hass_ms, 0.5),
        "hass_p99_ms": pct(hass_ms, 0.99),
        "p50_over_floor_ms": pct(hass_ms, 0.5) - pct(floor_ms, 0.5),
    }


# --- 3. reconnect and half-open ------------------------------------------------------------------


async def bench_reconnect(restarts: int) -> dict[str, Any]:
    """Time from `server_restart` to every subscription confirmed again, after a stable period."""
    sim = CircleSimulator(SimConfig())
    await sim.start()
    times: list[float] = []
    stale_after: list[float] = []
    try:
        async with aiohttp.ClientSession() as session:
            auth = CircleAuth(session, sim.url, sim.app_token, member_id=sim.member_id)
            options = CableOptions()  # the defaults
            cable = CircleCable(
                session,
                sim.cable_url,
                auth,
                sim.member_id,
                origin=sim.origin,
                options=options,
            )
            confirmed = asyncio.Event()

            def on_sub(_sub: Any) -> None:
                if all(s.state == "confirmed" for s in cable.subscriptions):
                    confirmed.set()

            cable.add_subscription_listener(on_sub)
            task = asyncio.get_running_loop().create_task(cable.run())
            await asyncio.wait_for(confirmed.wait(), 10)
            for _ in range(restarts):
                await asyncio.sleep(options.stable_after + 0.3)  # after a stable period
                confirmed.clear()
                start = time.perf_counter()
                await sim.disconnect_all("server_restart", True)
                await asyncio.wait_for(confirmed.wait(), 30)
                times.append(time.perf_counter() - start)
            # Half-open: the socket stays open, nothing comes any more.
            stale = asyncio.Event()
            unsub = cable.add_state_listener(
                lambda s: stale.set() if s.reason == "stale" else None
            )
            await asyncio.sleep(0.5)
            start = time.perf_counter()
            sim.silence()
            await asyncio.wait_for(stale.wait(), 30)
            stale_after.append(time.perf_counter() - start)
            unsub()
            await cable.stop()
            await task
    finally:
        await sim.stop()
    return {
        "restarts": restarts,
        "reconnect_median_s": statistics.median(times),
        "reconnect_max_s": max(times),
        "half_open_detect_s": max(stale_after),
        "ping_interval_s": SimConfig().ping_interval,
    }


# --- 4. memory ---------------------------------------------------------------------------------


async def bench_memory(count: int) -> dict[str, Any]:
    """RSS of this process before and after `count` messages (after a warm-up tenth)."""
    batches = 10
    async with (
        BlastProcess(count // batches) as server,
        aiohttp.ClientSession() as session,
    ):
        cable = CircleCable(
            session,
            server.url,
            StaticAccessToken("t"),
            MEMBER,
            options=CableOptions(
                stale_after=120, backoff_initial=0.05, backoff_max=0.1
            ),
        )
        seen = 0
        goal = count // batches
        reached = asyncio.Event()

        def on_event(_event: CableEvent) -> None:
            nonlocal seen
            seen += 1
            if seen >= goal:
                reached.set()

        cable.add_event_listener(on_event)
        task = asyncio.get_running_loop().create_task(cable.run())
        await reached.wait()  # warm-up batch
        gc.collect()
        before = rss_mb()
        for _ in range(batches):
            reached.clear()
            goal = seen + count // batches
            if cable._socket is not None:
                await cable._socket.ws.close()
            await reached.wait()
        gc.collect()
        after = rss_mb()
        await cable.stop()
        await task
    return {
        "messages": count,
        "rss_before_mb": before,
        "rss_after_mb": after,
        "growth_mb": after - before,
    }


# --- the run ---------------------------------------------------------------------------------------


TARGETS = {
    "throughput": "client >= 0.8x floor and ahead of aioactioncable",
    "latency": "p50 within 1 ms of the floor, p99 under 10 ms",
    "reconnect": "median under 1.5 s; half-open detected under 7 s",
    "memory": "growth under 5 MB over 100,000 messages",
    "frame_path": "the delivery core under 25 µs per event, message parsing included (in-process)",
}


def verdicts(figures: dict[str, Any]) -> dict[str, bool]:
    t, lat, rec, mem = (
        figures[k] for k in ("throughput", "latency", "reconnect", "memory")
    )
    return {
        "throughput": t["client_vs_floor"] >= 0.8
        and (
            t["client_vs_aioactioncable"] is None or t["client_vs_aioactioncable"] > 1
        ),
        "latency": lat["p50_over_floor_ms"] <= 1.0 and lat["hass_p99_ms"] < 10,
        "reconnect": rec["reconnect_median_s"] < 1.5 and rec["half_open_detect_s"] < 7,
        "memory": mem["growth_mb"] < 5,
        "frame_path": figures["frame_path"]["core_us"] < 25,
    }


def table(figures: dict[str, Any], ok: dict[str, bool]) -> str:
    t, lat, rec, mem = (
        figures[k] for k in ("throughput", "latency", "reconnect", "memory")
    )
    aio = (
        f"{t['aioactioncable_fps']:,.0f}"
        if t["aioactioncable_fps"]
        else "not installed"
    )
    rows = [
        (
            "throughput (frames/s)",
            f"client {t['client_fps']:,.0f} | floor {t['floor_fps']:,.0f} | aioactioncable {aio}",
            f"{t['client_vs_floor']:.2f}x floor",
            ok["throughput"],
        ),
        (
            "latency publish→bus event (ms)",
            f"p50 {lat['hass_p50_ms']:.2f} p99 {lat['hass_p99_ms']:.2f} | floor p50 {lat['floor_p50_ms']:.2f} p99 {lat['floor_p99_ms']:.2f}",
            f"+{lat['p50_over_floor_ms']:.2f} ms p50",
            ok["latency"],
        ),
        (
            "reconnect after server_restart (s)",
            f"median {rec['reconnect_median_s']:.2f} max {rec['reconnect_max_s']:.2f} (n={rec['restarts']})",
            f"half-open {rec['half_open_detect_s']:.2f} s",
            ok["reconnect"],
        ),
        (
            "frame path in-process (µs/frame)",
            f"cable {figures['frame_path']['cable_us']:.2f} | floor {figures['frame_path']['floor_us']:.2f} | delivery core {figures['frame_path']['core_us']:.2f}",
            "core < 25 µs",
            ok["frame_path"],
        ),
        (
            "memory over messages",
            f"{mem['messages']:,} msgs: {mem['rss_before_mb']:.1f} → {mem['rss_after_mb']:.1f} MB",
            f"{mem['growth_mb']:+.2f} MB",
            ok["memory"],
        ),
    ]
    lines = [f"{'measure':36} {'figures':78} {'vs target':18} ok", "-" * 138]
    lines += [f"{a:36} {b:78} {c:18} {'yes' if d else 'NO'}" for a, b, c, d in rows]
    return "\n".join(lines)


async def run_bench(quick: bool) -> dict[str, Any]:
    figures: dict[str, Any] = {"quick": quick, "python": sys.version.split()[0]}
    figures["throughput"] = await bench_throughput(
        5_000 if quick else 50_000, 1 if quick else 5
    )
    figures["latency"] = await bench_latency(30 if quick else 300)
    figures["reconnect"] = await bench_reconnect(3 if quick else 20)
    figures["memory"] = await bench_memory(10_000 if quick else 100_000)
    figures["frame_path"] = await bench_frame_path(
        10_000 if quick else 100_000, 1 if quick else 5
    )
    return figures


# --- soak --------------------------------------------------------------------------------------------


async def soak(minutes: float, seed_value: int = 1) -> dict[str, Any]:
    rng = random.Random(seed_value)
    with tempfile.TemporaryDirectory() as tmp:
        stack = LiveStack(Path(tmp) / "config", log_level="debug")
        await stack.start()
        try:
            return await _soak(stack, minutes, rng)
        finally:
            await stack.stop()
            log = stack.config_dir / "hass.log"
            if log.exists():
                (ROOT / "soak-hass.log").write_bytes(log.read_bytes())


async def _soak(stack: LiveStack, minutes: float, rng: random.Random) -> dict[str, Any]:
    session = stack.session
    async with session.get(stack.sim["url"] + "/_sim/state") as resp:
        state = await resp.json()
    rooms = [r for r in state["rooms"] if not r["embedded"]]
    events: list[dict[str, Any]] = []
    posted: list[int] = []
    faults: list[str] = []
    hass = await stack.websocket()
    await hass.send_json(
        {"id": 1, "type": "subscribe_events", "event_type": "circle_new_message"}
    )
    await hass.receive_json()

    async def read() -> None:
        async for msg in hass:
            frame = orjson.loads(msg.data)
            if frame.get("type") == "event":
                events.append(frame["event"]["data"])

    reader = asyncio.create_task(read())
    assert stack.hass_proc is not None
    await asyncio.sleep(2)
    rss_start = rss_mb(stack.hass_proc.pid)
    end = time.monotonic() + minutes * 60
    next_fault = time.monotonic() + rng.uniform(5, 15)
    fault_kinds = [
        "drop",
        "server_restart",
        "remote",
        "silence",
        "expire",
        "rest_503",
        "refresh_429",
        "frames",
    ]
    while time.monotonic() < end:
        room = rng.choice(rooms)
        async with session.post(
            stack.sim["url"] + "/_sim/message",
            json={"room_id": room["id"], "text": "soak"},
        ) as resp:
            posted.append((await resp.json())["result"]["id"])
        if time.monotonic() > next_fault:
            kind = rng.choice(fault_kinds)
            faults.append(kind)
            await _soak_fault(stack, kind)
            next_fault = time.monotonic() + rng.uniform(5, 15)
        await asyncio.sleep(rng.uniform(0.05, 0.25))
    # Settle: connected again and the last backfill done.
    with contextlib.suppress(TimeoutError):
        await stack.wait_state(
            "binary_sensor.circle_grace_hopper_connection", "on", timeout=60
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not set(posted) <= {
        e["message_id"] for e in events
    }:
        await asyncio.sleep(0.2)
    await asyncio.sleep(1)
    reader.cancel()
    await hass.close()
    rss_end = rss_mb(stack.hass_proc.pid)
    delivered = [e["message_id"] for e in events]
    counts: dict[int, int] = {}
    for message_id in delivered:
        counts[message_id] = counts.get(message_id, 0) + 1
    out_of_order = 0
    for room in {e["room_uuid"] for e in events}:
        ids = [e["message_id"] for e in events if e["room_uuid"] == room]
        out_of_order += sum(1 for a, b in itertools.pairwise(ids) if b < a)
    connection = await stack.state("binary_sensor.circle_grace_hopper_connection")
    return {
        "minutes": minutes,
        "posted": len(posted),
        "delivered": len(delivered),
        "lost": len(set(posted) - set(counts)),
        "duplicated": sum(v - 1 for v in counts.values() if v > 1),
        "out_of_order": out_of_order,
        "backfilled": sum(1 for e in events if e.get("backfilled")),
        "faults": len(faults),
        "fault_kinds": sorted(set(faults)),
        "reconnects": (connection or {}).get("attributes", {}).get("reconnects"),
        "connected_at_end": (connection or {}).get("state") == "on",
        "last_reason": (connection or {}).get("attributes", {}).get("reason"),
        "hass_rss_start_mb": rss_start,
        "hass_rss_end_mb": rss_end,
        "memory_growth_mb": rss_end - rss_start,
    }


async def _soak_fault(stack: LiveStack, kind: str) -> None:
    if kind in ("server_restart", "remote"):
        await stack.sim_control("disconnect", reason=kind, reconnect=True)
    elif kind == "drop":
        await stack.sim_control("drop")
    elif kind == "silence":
        await stack.sim_control("silence")
    elif kind == "expire":
        await stack.sim_control("expire_tokens")
        await stack.sim_control("drop")
    elif kind == "rest_503":
        await stack.sim_control("fault", target="rest", status=503, count=3)
        await stack.sim_control("drop")
    elif kind == "refresh_429":
        await stack.sim_control("fault", target="refresh", status=429, retry_after="2")
        await stack.sim_control("revoke_tokens", kind="access")
        await stack.sim_control("drop")
    else:
        for frame in ("truncated", "non_json", "oversized", "malformed"):
            await stack.sim_control("frame", kind=frame)


async def bench_idle(seconds: float) -> dict[str, Any]:
    """Event-loop wake-ups and CPU per second of a connected, idle cable (real timings).

    The simulator runs in another process (pings every 3 s, as Rails), so every wake-up
    counted here is the client's own: socket reads, the watchdog, aiohttp's timers.
    """
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.simulator",
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(await proc.stdout.readline())
        async with aiohttp.ClientSession() as session:
            auth = CircleAuth(
                session, info["url"], info["app_token"], member_id=info["member_id"]
            )
            cable = CircleCable(
                session,
                info["cable_url"],
                auth,
                info["member_id"],
                origin=info["origin"],
            )
            task = asyncio.get_running_loop().create_task(cable.run())
            while not (
                cable.status.state == "connected"
                and all(sub.state == "confirmed" for sub in cable.subscriptions)
            ):
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
            loop: Any = asyncio.get_running_loop()
            original = loop._run_once
            wakes = 0

            def counting() -> None:
                # An iteration with nothing ready blocks in select(): each is one wake-up.
                # (Iterations that only run what the last one made ready do not sleep.)
                nonlocal wakes
                if not loop._ready:
                    wakes += 1
                original()

            loop._run_once = counting
            cpu, wall = time.process_time(), time.monotonic()
            await asyncio.sleep(seconds)
            cpu, wall = time.process_time() - cpu, time.monotonic() - wall
            loop._run_once = original
            await cable.stop()
            await task
    finally:
        proc.terminate()
        await proc.wait()
    return {
        "seconds": round(wall, 1),
        # The sleep that measures ends with one wake-up of its own.
        "wakeups_per_s": round((wakes - 1) / wall, 3),
        "cpu_ms_per_s": round(cpu * 1000 / wall, 3),
        "target_wakeups_per_s": 0.5,
    }


def bench_recovery(schedules: int, seed: int = 1) -> dict[str, Any]:
    """Seconds from "Circle healthy" to "confirmed again" over random fault schedules."""
    from tests.recovery_model import run_many

    times = sorted(run_many(schedules, seed))
    down = [t for t in times if t > 0]
    return {
        "schedules": schedules,
        "max_s": round(times[-1], 2),
        "p99_s": round(times[int(len(times) * 0.99)], 2),
        "median_s": round(statistics.median(times), 2),
        "connected_through_healthy": sum(t == 0 for t in times),
        "down_at_healthy_median_s": round(statistics.median(down), 2) if down else 0,
        "target_s": 20.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="scripts/bench")
    sub = parser.add_subparsers(dest="command")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    blast = sub.add_parser("blast-server", help=argparse.SUPPRESS)
    blast.add_argument("--count", type=int, default=10_000)
    soak_parser = sub.add_parser("soak", help="traffic plus random faults")
    soak_parser.add_argument("--minutes", type=float, default=5)
    soak_parser.add_argument("--json", type=Path, dest="soak_json")
    recovery_parser = sub.add_parser(
        "recovery",
        help="fake clock: healthy -> confirmed again over random fault schedules",
    )
    recovery_parser.add_argument("--schedules", type=int, default=10_000)
    recovery_parser.add_argument("--seed", type=int, default=1)
    idle_parser = sub.add_parser("idle", help="wake-ups and CPU of an idle cable")
    idle_parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    if args.command == "idle":
        idle = asyncio.run(bench_idle(args.seconds))
        print(json.dumps(idle, indent=2))
        sys.exit(0 if idle["wakeups_per_s"] <= 0.5 else 1)
    if args.command == "recovery":
        figures = bench_recovery(args.schedules, args.seed)
        print(json.dumps(figures, indent=2))
        sys.exit(0 if figures["max_s"] <= 20.0 else 1)
    if args.command == "blast-server":
        asyncio.run(serve_blast(args.count))
        return
    if args.command == "soak":
        result = asyncio.run(soak(args.minutes))
        print(json.dumps(result, indent=2))
        if args.soak_json:
            args.soak_json.write_text(json.dumps(result, indent=2))
        ok = (
            result["lost"] == 0
            and result["duplicated"] == 0
            and result["out_of_order"] == 0
            and result["connected_at_end"]
        )
        sys.exit(0 if ok else 1)
    figures = asyncio.run(run_bench(args.quick))
    ok = verdicts(figures)
    figures["targets"] = TARGETS
    figures["met"] = ok
    print(table(figures, ok))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    sys.exit(0)


if __name__ == "__main__":
    main()
