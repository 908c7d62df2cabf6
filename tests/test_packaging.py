"""The declared dependency ranges and the lock agree: every lower bound is the locked version.

`make test` installs requirements/lock.txt, so a lower bound equal to the locked version is
a bound the suite was run at; a looser one would promise what nothing tested.
"""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import REPO


def locked() -> dict[str, Version]:
    versions = {}
    for line in (REPO / "requirements" / "lock.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            versions[canonicalize_name(name)] = Version(version)
    return versions


def declared() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = [spec for specs in project["optional-dependencies"].values() for spec in specs]
    return [Requirement(spec) for spec in [*project["dependencies"], *extras]]


def test_every_dependency_is_locked_at_its_lower_bound() -> None:
    lock = locked()
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{requirement.name} is declared but not in requirements/lock.txt"
        lower = [Version(spec.version) for spec in requirement.specifier if spec.operator == ">="]
        assert lower == [lock[name]], f"{requirement}: the lower bound should be the locked {lock[name]}"
        assert requirement.specifier.contains(lock[name]), f"{requirement} excludes the locked {lock[name]}"


def test_the_lock_pins_torch_without_a_local_build_tag() -> None:
    # `torch==2.13.0` matches the CPU build (2.13.0+cpu) and a plain one alike.
    assert locked()["torch"] == Version("2.13.0")
