"""The lock files agree with pyproject.toml, and the SBOM generates from the runtime lock.

``bash .ci/lock`` regenerates both locks after any dependency change; these tests fail until
it has been run, naming what disagrees.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = canonicalize_name(PYPROJECT["project"]["name"])
RUNTIME_LOCK = REPO_ROOT / "requirements" / "runtime.lock"
DEV_LOCK = REPO_ROOT / "requirements" / "dev.lock"
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)")


@dataclass
class Pin:
    version: str
    hashes: int = 0
    via: list[str] = field(default_factory=list)


def read_lock(path: Path) -> dict[str, Pin]:
    pins: dict[str, Pin] = {}
    current: Pin | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := PIN.match(line):
            current = pins.setdefault(canonicalize_name(match["name"]), Pin(match["version"]))
        elif current is not None and "--hash=sha256:" in line:
            current.hashes += 1
        elif current is not None and line.strip().startswith("#"):
            text = line.strip("# ").removeprefix("via").strip()
            if text:
                current.via.append(text)
    return pins


def requirements(*extras: str) -> list[Requirement]:
    listed = [*PYPROJECT["project"]["dependencies"]]
    for extra in extras:
        listed += PYPROJECT["project"]["optional-dependencies"][extra]
    # Self-references (mscc-cds[report] in dev) name extras listed here already.
    return [Requirement(text) for text in listed if canonicalize_name(Requirement(text).name) != PROJECT]


@pytest.mark.parametrize(
    ("lock", "extras"), [(RUNTIME_LOCK, ()), (DEV_LOCK, ("report", "dev", "spark"))], ids=["runtime", "dev"]
)
def test_lock_matches_pyproject(lock: Path, extras: tuple[str, ...]) -> None:
    pins = read_lock(lock)
    wanted = requirements(*extras)
    hint = "; run `bash .ci/lock`"
    direct = {name for name, pin in pins.items() if f"{PROJECT} (pyproject.toml)" in pin.via}
    named = {canonicalize_name(requirement.name) for requirement in wanted}
    assert named - pins.keys() == set(), f"in pyproject.toml, not in {lock.name}{hint}"
    assert direct - named == set(), f"in {lock.name} as a direct dependency, no longer in pyproject.toml{hint}"
    for requirement in wanted:
        pin = pins[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(pin.version, prereleases=True), (
            f"{lock.name} pins {requirement.name}=={pin.version}, outside {requirement}{hint}"
        )
    assert all(pin.hashes for pin in pins.values()), "every pin needs its hashes (--generate-hashes)"


def test_runtime_lock_leaves_out_the_report_extra_and_the_reload_watcher() -> None:
    pins = read_lock(RUNTIME_LOCK)
    assert {"matplotlib", "watchfiles", "websockets", "numpy"}.isdisjoint(pins)
    environment = default_environment()
    runtime = [
        requirement
        for requirement in requirements()
        if requirement.marker is None or requirement.marker.evaluate(environment)
    ]
    assert {"httptools", "uvloop", "uvicorn"} <= {canonicalize_name(r.name) for r in runtime}


def test_dev_lock_pins_the_runtime_at_the_same_versions() -> None:
    # .ci/test must test what the image ships.
    runtime, dev = read_lock(RUNTIME_LOCK), read_lock(DEV_LOCK)
    assert {name: pin.version for name, pin in runtime.items()} == {name: dev[name].version for name in runtime}


def test_sbom_generates_from_the_runtime_lock(tmp_path: Path) -> None:
    output = tmp_path / "sbom.cdx.json"
    result = subprocess.run(
        ["bash", str(REPO_ROOT / ".ci" / "sbom"), str(output)], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    bom = json.loads(output.read_text(encoding="utf-8"))
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.6"
    assert bom["metadata"]["component"]["name"] == PYPROJECT["project"]["name"]
    assert bom["metadata"]["component"]["licenses"] == [
        {"license": {"acknowledgement": "declared", "id": "Apache-2.0"}}
    ]
    listed = {(canonicalize_name(component["name"]), component["version"]) for component in bom["components"]}
    assert listed == {(name, pin.version) for name, pin in read_lock(RUNTIME_LOCK).items()}


def test_license_is_the_apache_2_text() -> None:
    assert PYPROJECT["project"]["license"] == {"text": "Apache-2.0"}
    text = (REPO_ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
