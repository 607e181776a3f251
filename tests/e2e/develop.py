"""`scripts/develop`: the live demo in a real Home Assistant, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
import signal
import sys

from .stack import ROOT, LiveStack


async def _main(args: argparse.Namespace) -> int:
    stack = LiveStack(Path(args.config), port=args.port, demo=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stack.start()
    except Exception as err:
        print(f"scripts/develop: {err}", file=sys.stderr)
        return 1
    print(stack.ready_line(), flush=True)
    print(
        f"Open {stack.url} (user {stack.user}); the Circle device updates every few seconds. Ctrl-C stops.",
        file=sys.stderr,
        flush=True,
    )
    await stop.wait()
    await stack.stop()
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="scripts/develop")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument(
        "--config",
        default=str(ROOT / "config"),
        help="Home Assistant config dir (wiped)",
    )
    sys.exit(asyncio.run(_main(parser.parse_args())))


if __name__ == "__main__":
    main()
