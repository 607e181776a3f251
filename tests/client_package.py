"""Build the client's wheel, install it in a fresh virtualenv without Home Assistant, test it.

Run by scripts/test-client. The client's own tests (CLIENT_TESTS, with the simulator and
tests/conftest.py, which works without Home Assistant) run against the installed
`circle_cable`: a shim maps `custom_components.circle.client` onto it, so the same test files
run unchanged in both places, and the shim refuses any copy other than the installed one.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "custom_components" / "circle" / "client"
# Client-only test files: no Home Assistant fixture, only the client and the simulator.
# (test_simulator.py is left out: it tests the simulator, and needs node.)
CLIENT_TESTS = (
    "test_client_auth_api.py",
    "test_client_cable.py",
    "test_client_package.py",
    "test_client_protocol.py",
    "test_delivery_core.py",
    "test_delivery_model.py",
    "test_fuzz.py",
    "test_hostile_frames.py",
    "test_hostile_http.py",
    "test_probe.py",
    "test_session.py",
)
# What Home Assistant 2025.4 ships: the oldest versions the client supports.
CONSTRAINTS = "aiohttp==3.11.16\nyarl==1.18.3\n"
PYTEST_INI = """[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
timeout = 120
filterwarnings = ignore::DeprecationWarning:pytest_asyncio.*
"""
SHIM = '''"""Test-run shim: `custom_components.circle.client` is the installed circle_cable wheel."""

import importlib
import logging
from pathlib import Path
import pkgutil
import sys

import circle_cable

assert "site-packages" in Path(circle_cable.__file__).parts, circle_cable.__file__
# Log records keep their names (circle_cable.*); levels the tests set on
# custom_components.circle apply to them too, as they do to the integration's client.
logging.getLogger("circle_cable").parent = logging.getLogger(__name__ + ".client")
sys.modules[__name__ + ".client"] = circle_cable
for _info in pkgutil.iter_modules(circle_cable.__path__):
    _module = importlib.import_module(f"circle_cable.{_info.name}")
    sys.modules[f"{__name__}.client.{_info.name}"] = _module
client = circle_cable
'''


def _run(*args: str | Path, cwd: Path | None = None) -> None:
    print("$", " ".join(map(str, args)), flush=True)
    subprocess.run([str(a) for a in args], check=True, cwd=cwd)


def build_wheel(work: Path, python: Path) -> Path:
    """Build from a copy of the client folder (the build writes nothing into the source)."""
    source = work / "src"
    shutil.copytree(CLIENT, source, ignore=shutil.ignore_patterns("__pycache__"))
    _run(python, "-m", "pip", "wheel", "-q", "--no-deps", "-w", work / "dist", source)
    (wheel,) = (work / "dist").glob("circle_cable-*.whl")
    return wheel


def copy_tests(work: Path) -> Path:
    """The client-only tests, the simulator and the conftest; no integration, no source."""
    run = work / "run"
    (run / "tests").mkdir(parents=True)
    for name in ("__init__.py", "conftest.py", *CLIENT_TESTS):
        shutil.copy2(ROOT / "tests" / name, run / "tests" / name)
    shutil.copytree(
        ROOT / "tests" / "simulator",
        run / "tests" / "simulator",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shim = run / "custom_components" / "circle"
    shim.mkdir(parents=True)
    (run / "custom_components" / "__init__.py").write_text("")
    (shim / "__init__.py").write_text(SHIM)
    (run / "pytest.ini").write_text(PYTEST_INI)
    return run


def main(argv: list[str] | None = None) -> int:
    """Build, install, test; keep the directory with --keep."""
    parser = argparse.ArgumentParser(prog="scripts/test-client")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="circle-cable-"))
    started = time.monotonic()
    try:
        _run(sys.executable, "-m", "venv", work / "venv")
        python = work / "venv" / "bin" / "python"
        wheel = build_wheel(work, python)
        (work / "constraints.txt").write_text(CONSTRAINTS)
        _run(python, "-m", "pip", "install", "-q", "-c", work / "constraints.txt",
             f"{wheel}[test]")  # fmt: skip
        _run(python, "-c", "import importlib.util as u, sys; "
             "sys.exit(u.find_spec('homeassistant') is not None)")  # fmt: skip
        run = copy_tests(work)
        _run(python, "-m", "pytest", "-p", "no:cacheprovider", "-q",
             *args.pytest_args, *(f"tests/{name}" for name in CLIENT_TESTS), cwd=run)  # fmt: skip
    except subprocess.CalledProcessError as err:
        print(f"scripts/test-client: failed ({err.returncode})", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{wheel.name}: the client's tests pass against the installed wheel, "
          f"without Home Assistant ({time.monotonic() - started:.0f} s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
