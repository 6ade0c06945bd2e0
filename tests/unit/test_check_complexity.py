"""scripts/check-complexity: functions over complexity 15 or 80 lines are listed, the
generated migrations are not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check-complexity"


def branches(name: str, count: int, *, indent: str = "") -> str:
    """A function of cyclomatic complexity `count` + 1 (one `if` per branch)."""
    body = "".join(f"{indent}    if x == {i}:\n{indent}        return {i}\n" for i in range(count))
    return f"{indent}def {name}(x: int) -> int:\n{body}{indent}    return -1\n"


def lines(name: str, count: int) -> str:
    """A straight-line function of `count` lines, `def` included."""
    body = "".join(f"    y = {i}\n" for i in range(count - 2))
    return f"def {name}() -> int:\n{body}    return 0\n"


def check(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own script, fixed arguments, no shell
        [sys.executable, str(SCRIPT), *map(str, paths)],
        capture_output=True,
        text=True,
        cwd=paths[0],
        check=False,
    )


def test_functions_at_the_limits_pass(tmp_path: Path) -> None:
    (tmp_path / "clean.py").write_text(branches("fifteen", 14) + "\n\n" + lines("eighty", 80))
    result = check(tmp_path)
    assert (result.returncode, result.stdout) == (0, "")


def test_each_offender_is_listed_and_the_migrations_are_left_out(tmp_path: Path) -> None:
    (tmp_path / "clean.py").write_text(branches("fifteen", 14) + "\n\n" + lines("eighty", 80))
    offender = "class Tangled:\n" + branches("sixteen", 15, indent="    ")
    (tmp_path / "offender.py").write_text(offender + "\n\n" + lines("eighty_one", 81))
    migrations = tmp_path / "ledger" / "migrations" / "versions"
    migrations.mkdir(parents=True)
    (migrations / "0001_initial.py").write_text(branches("generated", 40))
    result = check(tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "offender.py:2: sixteen: cyclomatic complexity 16 (at most 15)",
        "offender.py:36: eighty_one: 81 lines (at most 80)",
    ]
    assert "2 function(s)" in result.stderr


def test_a_nested_function_is_scored_on_its_own(tmp_path: Path) -> None:
    nested = "def outer() -> None:\n" + branches("inner", 15, indent="    ")
    (tmp_path / "nested.py").write_text(nested)
    result = check(tmp_path)
    assert result.stdout.splitlines() == [
        "nested.py:2: inner: cyclomatic complexity 16 (at most 15)"
    ]


def test_a_missing_path_is_an_error_not_a_pass(tmp_path: Path) -> None:
    result = check(tmp_path, tmp_path / "nowhere")
    assert result.returncode == 2
    assert "nowhere" in result.stderr
