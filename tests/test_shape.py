"""Small units, counted by the AST: the shape issue 20 asks for, held by a test.

No class over 300 lines, no function over 60, `coordinator.py` at most 250 lines. The
allow-list names each exception exactly, with why, so that it can only shrink.
"""

from __future__ import annotations

import ast
from pathlib import Path

from custom_components.circle.client.cable import PUBLIC_STATE
from custom_components.circle.client.supervisor import TRANSITIONS, CableState

PACKAGE = Path(__file__).parent.parent / "custom_components" / "circle"
MAX_CLASS = 300
MAX_FUNCTION = 60
MAX_COORDINATOR = 250

ALLOWED = {
    # The frame fast path: every frame passes here, handled inline with locals because
    # calls cost per frame (docs/benchmarks.md measures it against its floor).
    "client/frames.py:read_frames",
}


def _units() -> dict[str, tuple[str, int]]:
    """Every class and function by `path:qualified.name`: (kind, lines)."""
    found: dict[str, tuple[str, int]] = {}

    def visit(node: ast.AST, path: str, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                kind = "class" if isinstance(child, ast.ClassDef) else "function"
                assert child.end_lineno is not None
                found[f"{path}:{name}"] = (kind, child.end_lineno - child.lineno + 1)
                visit(child, path, f"{name}.")
            else:
                visit(child, path, prefix)

    for file in sorted(PACKAGE.rglob("*.py")):
        visit(ast.parse(file.read_text()), file.relative_to(PACKAGE).as_posix(), "")
    return found


def test_no_unit_is_too_long() -> None:
    units = _units()
    limits = {"class": MAX_CLASS, "function": MAX_FUNCTION}
    too_long = {
        name: lines
        for name, (kind, lines) in units.items()
        if lines > limits[kind] and name not in ALLOWED
    }
    assert not too_long, f"over {MAX_CLASS} (class) or {MAX_FUNCTION} lines: {too_long}"


def test_the_allow_list_only_names_long_units() -> None:
    """An entry that exists no more, or is short now, is taken off the list."""
    units = _units()
    limits = {"class": MAX_CLASS, "function": MAX_FUNCTION}
    stale = {
        name
        for name in ALLOWED
        if name not in units or units[name][1] <= limits[units[name][0]]
    }
    assert not stale, f"take these off ALLOWED: {sorted(stale)}"


def test_coordinator_is_glue() -> None:
    lines = (PACKAGE / "coordinator.py").read_text().count("\n")
    assert lines <= MAX_COORDINATOR, f"coordinator.py has {lines} lines"


def test_the_counter_sees_nested_units() -> None:
    """The count reaches methods inside classes and functions inside functions."""
    units = _units()
    assert units["client/cable.py:CircleCable.run"][0] == "function"
    assert units["client/probe.py:_Watch.on_state"][0] == "function"
    assert units["client/frames.py:read_frames"][1] > MAX_FUNCTION


def test_architecture_shows_the_supervisor_table() -> None:
    """docs/architecture.md's transition table is the code's, state for state."""
    doc = (PACKAGE.parent.parent / "docs" / "architecture.md").read_text()
    block = doc.split("<!-- supervisor-transitions -->")[1].split("<!--")[0]
    shown: dict[str, set[str]] = {}
    for row in block.strip().splitlines()[2:]:
        source, targets = (cell.strip() for cell in row.strip("|").split("|"))
        shown[source.strip("`")] = {
            t.strip().strip("`") for t in targets.split(",") if t.strip() != "—"
        }
    assert shown == {s.value: {t.value for t in to} for s, to in TRANSITIONS.items()}
    assert set(PUBLIC_STATE) == set(CableState)
