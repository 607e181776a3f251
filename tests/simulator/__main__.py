"""`scripts/simulator`: run the simulator until SIGTERM/SIGINT, printing one JSON line when ready."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from .server import CircleSimulator, SimConfig


async def _main(args: argparse.Namespace) -> None:
    sim = CircleSimulator(SimConfig(flavour=args.flavour), demo=args.demo)
    await sim.start(args.host, args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps(sim.info()), flush=True)
    try:
        await stop.wait()
    finally:
        await sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="scripts/simulator", description="Circle simulator on loopback"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--demo", action="store_true", help="seed a lively community")
    parser.add_argument(
        "--flavour",
        choices=("rails", "anycable"),
        default="rails",
        help="the cable server to play: stock Rails Action Cable or AnyCable (anycable-go)",
    )
    asyncio.run(_main(parser.parse_args()))
    sys.exit(0)


if __name__ == "__main__":
    main()
