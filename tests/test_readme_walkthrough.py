"""The README's commands, pasted in order into one fresh shell on a fresh clone, do what it says.

The ```bash blocks of "Quick start", "Calling the service" and "Testing against a sandbox
FHIR server" run in one bash process (so `source`, exported variables and background
processes carry from block to block, as in a terminal), in a `git clone` of this working
copy with its uncommitted changes copied over. A block the README marks
``<!-- readme-walkthrough: skip (reason) -->`` is left out (Docker, the whole suite).

Adapted, and only this: the fixed ports 8080 and 8091 become free ones (MSCC_PORT too), /tmp/mscc-sandbox a
temporary folder, and the two virtualenvs are pre-seeded so that no package is downloaded
again: ``.venv`` reads this checkout's installed dependencies through a ``.pth`` file (the
README's own ``pip install -e .`` then installs the clone itself), ``.venv-fhir-sandbox`` is
a copy of the one the integration tests built. Measured: about 3 minutes on a busy 2-core
machine (pip's editable build and the 87 scenarios seeded into SEKMET dominate).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sysconfig
from pathlib import Path

import pytest

from tests.processes import free_port

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("## Quick start", "## Calling the service", "## Testing against a sandbox FHIR server")
SKIP = re.compile(r"<!-- readme-walkthrough: skip \(([^)]+)\) -->\s*$")
BLOCK = re.compile(r"^```bash\n(.*?)^```$", re.MULTILINE | re.DOTALL)
MARK = "::readme-block-end"


def walkthrough_blocks(readme: str) -> list[str]:
    """The runnable bash blocks of the walkthrough sections, in order."""
    blocks = []
    for section in re.split(r"(?m)^(?=## )", readme):
        if not section.startswith(SECTIONS):
            continue
        for match in BLOCK.finditer(section):
            before = section[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            if not SKIP.search(before):
                blocks.append(match.group(1))
    return blocks


def test_walkthrough_blocks_are_found() -> None:
    blocks = walkthrough_blocks((REPO_ROOT / "README.md").read_text(encoding="utf-8"))
    joined = "\n".join(blocks)
    assert "docker compose" not in joined and "bash .ci/test" not in joined
    for command in ("source .venv/bin/activate", "mscc-cds seed", "mscc-cds screen", "mscc-cds call", "mscc-cds token"):
        assert command in joined, command
    assert "kill %" not in joined, "job numbers assume one interactive shell: keep the process ids"


def fresh_clone(target: Path) -> Path:
    clone = target / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True, timeout=300)
    changed = subprocess.run(
        ["git", "ls-files", "--modified", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in changed:
        source = REPO_ROOT / name
        if source.is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)
    return clone


def preseed_virtualenvs(clone: Path) -> None:
    """No downloads: the packages this test run already has, as a pip cache would provide them."""
    subprocess.run(["python3", "-m", "venv", str(clone / ".venv")], check=True, timeout=300)
    (site,) = (clone / ".venv" / "lib").glob("python3*/site-packages")
    # A path line, not a site dir: this checkout's own editable install is not picked up.
    (site / "_readme_walkthrough_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    from tests.integration.conftest import _ensure_sandbox_venv

    _ensure_sandbox_venv()
    shutil.copytree(REPO_ROOT / ".venv-fhir-sandbox", clone / ".venv-fhir-sandbox", symlinks=True)


def test_readme_commands_work_pasted_in_order_into_a_fresh_clone(tmp_path: Path) -> None:
    clone = fresh_clone(tmp_path)
    preseed_virtualenvs(clone)
    service_port, fhir_port = free_port(), free_port()
    sandbox = tmp_path / "mscc-sandbox"
    blocks = walkthrough_blocks((clone / "README.md").read_text(encoding="utf-8"))
    script = []
    for number, block in enumerate(blocks):
        adapted = block.replace("8091", str(fhir_port)).replace("8080", str(service_port))
        adapted = adapted.replace("/tmp/mscc-sandbox", str(sandbox))
        script.append(f"{adapted}\necho '{MARK} {number}' $? >&2\n")
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path / "home"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        # The Quick start's `mscc-cds serve` takes the default port: the same free one.
        "MSCC_PORT": str(service_port),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "LANG": "C.UTF-8",
    }
    output = tmp_path / "walkthrough.log"
    with output.open("wb") as sink:
        shell = subprocess.Popen(
            ["bash"],
            cwd=clone,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            # Each block waits for its servers with `until curl ...`: bounded here.
            shell.communicate("".join(script).encode(), timeout=1200)
        finally:
            # The README's last block stops the servers; this covers a failure before it
            # (the shell leads its own process group: only what it started is stopped).
            try:
                os.killpg(shell.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    log = output.read_text(encoding="utf-8", errors="replace")
    ends = re.findall(rf"{MARK} (\d+) (\d+)", log)
    assert [int(number) for number, _ in ends] == list(range(len(blocks))), log[-5000:]

    def after(command: str) -> str:
        """What the shell printed from the block holding ``command`` to the end of that block."""
        number = next(i for i, block in enumerate(blocks) if command in block)
        start = log.index(f"{MARK} {number - 1} ") if number else 0
        return log[start : log.index(f"{MARK} {number} ")]

    assert "mscc-cds 0.1.0" in after("mscc-cds --version")
    assert '"indicator":"critical"' in after("--data-binary @profiles/examples/01").replace(" ", "")
    seeded = after("mscc-cds seed")
    # The sample output the README shows is what seed prints (columns are tabs).
    seed_block = next(block for block in blocks if "mscc-cds seed" in block)
    (shown,) = [line[2:].split() for line in seed_block.splitlines() if line.startswith("# s01-patient")]
    assert f"{shown[0]}\t{shown[1]}\t{' '.join(shown[2:])}" in seeded
    assert re.search(r"Loaded \d+ patients", seeded)
    screened = after("mscc-cds screen")
    assert "1 card for patient s01-patient" in screened and "CRITICAL R1" in screened
    assert "for patient s01-patient" in after("# 1 card from")
    signed = after("--jwks-out")
    assert "Public JWK Set written" in signed and "HTTP 401" in signed
    assert '"indicator":"critical"' in after("mscc-cds token").replace(" ", "")
    statuses = {int(number): int(status) for number, status in ends}
    assert statuses[len(blocks) - 1] == 0, "the last block stops every server it started"
