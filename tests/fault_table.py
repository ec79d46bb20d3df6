"""pytest plugin: the fault tests record ``(area, fault, outcome)`` rows; ``--faults-md PATH`` writes them as
the table of docs/faults.md (``make faults``). Outcomes are what the run printed, with the test's temporary
folder cut out of paths, so the table is reproducible and says exactly what a user sees."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

AREAS = (
    "Preemption and crashes",
    "Numerical faults",
    "Damaged or foreign inputs",
    "Fuzzed inputs",
    "Distributed runs",
)
_ROWS: list[tuple[str, str, str, str]] = []

HEADER = """# Faults and bad inputs: what sagd does

Every row below is produced by a test of the suite, which provokes the fault on a real (tiny) run and
checks the outcome; the outcome column is what the command printed (temporary folders cut out).
Regenerate with `make faults` (runs `pytest tests/test_faults_*.py --faults-md docs/faults.md`).
Exit status 2 is bad input, 1 a run stopped by a fault, 128 + n a run stopped by signal n.
"""


def pytest_addoption(parser):
    parser.addoption("--faults-md", metavar="PATH", help="write the fault table of the tests that ran to PATH")


@pytest.fixture
def fault(request, tmp_path_factory):
    """``fault(area, what, outcome)``: record one row of the fault table (``area`` one of ``AREAS``)."""
    base = re.escape(str(tmp_path_factory.getbasetemp()))

    def record(area: str, what: str, outcome: str) -> None:
        assert area in AREAS, area
        outcome = re.sub(base + r"/[^/'\s]+/", "", outcome.strip())
        outcome = re.sub(base + r"/[^/'\s]+", ".", outcome)
        _ROWS.append((area, what, outcome, request.node.originalname))

    return record


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def pytest_sessionfinish(session):
    path = session.config.getoption("--faults-md")
    if not path or not _ROWS or hasattr(session.config, "workerinput"):  # xdist workers hold a part only
        return
    if session.testsfailed:  # a table of a failing suite would claim what was not shown
        print(f"\n{session.testsfailed} tests failed: {path} left as it was", file=sys.stderr)
        return
    lines = [HEADER]
    for area in AREAS:
        rows = [r for r in _ROWS if r[0] == area]
        if rows:
            lines += [f"\n## {area}\n", "| fault | outcome | test |", "|---|---|---|"]
            lines += [f"| {_cell(what)} | {_cell(outcome)} | `{test}` |" for _, what, outcome, test in rows]
    Path(path).write_text("\n".join(lines) + "\n")
