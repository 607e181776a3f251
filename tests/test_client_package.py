"""The client as its own package: one version source, no Home Assistant, a README that runs.

Client-only: it runs in the integration's suite (against the source) and in scripts/test-client
(against the installed `circle-cable` wheel, in a virtualenv without Home Assistant).
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import importlib.metadata
import importlib.util
from pathlib import Path
import re
import sys
import tomllib

from tests.simulator import CircleSimulator

INSTALLED = importlib.util.find_spec("circle_cable") is not None
CLIENT = importlib.import_module(
    "circle_cable" if INSTALLED else "custom_components.circle.client"
)
CLIENT_DIR = Path(CLIENT.__file__).parent
ROOT = Path(__file__).resolve().parent.parent
# Outside the standard library, the client may import only its declared dependencies.
DEPENDENCIES = {"aiohttp", "yarl"}
OPTIONAL = {"orjson"}  # the `speedups` extra, imported with a fallback
# Lets the README's `circle_cable` imports run against the source tree too.
PRELUDE = """
import importlib, pkgutil, sys
try:
    import circle_cable
except ImportError:
    import custom_components.circle.client as circle_cable
    sys.modules["circle_cable"] = circle_cable
    for info in pkgutil.iter_modules(circle_cable.__path__):
        module = importlib.import_module(f"{circle_cable.__name__}.{info.name}")
        sys.modules[f"circle_cable.{info.name}"] = module
"""


def readme() -> str:
    """The package's README: from the installed metadata, else from the source folder."""
    if INSTALLED:
        payload = importlib.metadata.metadata("circle-cable").get_payload()
        assert isinstance(payload, str)
        return payload
    return (CLIENT_DIR / "README.md").read_text(encoding="utf-8")


def test_the_version_has_one_source() -> None:
    source = (CLIENT_DIR / "_version.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"$', source, re.MULTILINE)
    assert match is not None and CLIENT.__version__ == match[1]
    if INSTALLED:
        assert importlib.metadata.version("circle-cable") == CLIENT.__version__
        assert (CLIENT_DIR / "py.typed").is_file()
    else:
        project = tomllib.loads((CLIENT_DIR / "pyproject.toml").read_text("utf-8"))
        assert project["project"]["dynamic"] == ["version"]
        assert "version" not in project["project"]
        assert project["tool"]["hatch"]["version"]["path"] == "_version.py"
        assert (
            "py.typed"
            in project["tool"]["hatch"]["build"]["targets"]["wheel"]["include"]
        )
        deps = {re.split(r"[<>=]", d)[0] for d in project["project"]["dependencies"]}
        assert deps == DEPENDENCIES
        extras = project["project"]["optional-dependencies"]
        assert {re.split(r"[<>=]", d)[0] for d in extras["speedups"]} == OPTIONAL


def test_the_client_imports_only_the_standard_library_and_aiohttp() -> None:
    """No Home Assistant, nothing above the package: it must work as `circle_cable`."""
    allowed = set(sys.stdlib_module_names) | DEPENDENCIES | OPTIONAL
    files = sorted(CLIENT_DIR.glob("*.py"))
    assert len(files) >= 10
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level <= 1, f"{path.name} imports from above the package"
                names = [node.module or ""] if node.level == 0 else []
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


def readme_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", readme(), re.DOTALL)
    assert len(blocks) == 1
    return blocks[0]


async def _line(stream: asyncio.StreamReader, prefix: str) -> str:
    async with asyncio.timeout(20):
        while line := (await stream.readline()).decode():
            if line.startswith(prefix):
                return line
    raise AssertionError(f"the example ended before printing {prefix!r}")


async def test_the_readme_example_runs_against_the_simulator(
    simulator: CircleSimulator,
) -> None:
    """The example in the README connects, listens and prints a message sent to the member."""
    env = {
        "CIRCLE_SERVER": simulator.url,
        "CIRCLE_APP_TOKEN": simulator.app_token,
        "CIRCLE_MEMBER_ID": str(simulator.member_id),
        "CIRCLE_COMMUNITY": simulator.community_url,
        "CIRCLE_SECONDS": "30",
        "PATH": "",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PRELUDE + readme_example(),
        stdout=asyncio.subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    try:
        member = await _line(proc.stdout, "member ")
        assert member.startswith(f"member {simulator.member_id}: ")
        await _line(proc.stdout, "listening")
        seeded = simulator.seeded
        simulator.community.post_message(
            seeded["dm"], seeded["ada"].id, "hello from the README"
        )
        event = await _line(proc.stdout, "event ")
        assert "hello from the README" in event
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()
