"""The repository stands on its own and builds as declared: every link resolves inside
it, and the build backend it asks for understands pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: what the repository's own files may say: nothing of the machine it was written on
SOURCES = [
    ROOT / name for name in ("README.md", "Dockerfile", "Makefile", "pyproject.toml", ".ci/run")
] + [
    path
    for folder in ("docs", "src", "tests", "bench", "scripts")
    for path in sorted((ROOT / folder).rglob("*"))
    if path.is_file()
    and path.suffix in ("", ".md", ".py", ".sh", ".toml", ".mako", ".ini")
    and "egg-info" not in str(path)
    # installed packages (bench/mesh after `make bench`, tests/clients): not ours to check
    and "node_modules" not in path.parts
]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_every_relative_link_resolves_inside_the_repository() -> None:
    for document in DOCUMENTS:
        for target in LINK.findall(document.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # a URL
            resolved = (document.parent / target).resolve()
            assert resolved.is_relative_to(ROOT), (document.name, target)
            assert resolved.exists(), (document.name, target)


def test_no_file_points_outside_the_repository() -> None:
    outside = re.compile(r"\.\./" + "shared|/work/" + "shared")
    for path in SOURCES:
        text = path.read_text(errors="replace")
        assert outside.search(text) is None, path.relative_to(ROOT)
    assert (ROOT / "docs" / "design.md").is_file() and (ROOT / "docs" / "providers.md").is_file()


def test_the_build_backend_understands_the_license_expression() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    license_ = pyproject["project"]["license"]
    (setuptools,) = [
        Requirement(r) for r in pyproject["build-system"]["requires"] if r.startswith("setuptools")
    ]
    floor = min(Version(s.version) for s in setuptools.specifier if s.operator in (">=", "=="))
    if isinstance(license_, str):
        # an SPDX expression string (PEP 639) is understood from setuptools 77 on
        assert floor >= Version("77"), setuptools
