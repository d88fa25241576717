"""The knowledge version: one hash over every FHIR artifact the rules depend on.

``profiles/manifest.json`` lists each artifact under ``profiles/valuesets`` and
``profiles/plandefinitions`` with its SHA-256, plus ``knowledgeVersion``: the first
16 hex digits of a SHA-256 over the sorted per-file hashes. Cards, audit records and
the health endpoint report it, so any answer can be traced to the exact code lists
and rule definitions that produced it.

The manifest is committed and checked at start-up: a service whose artifacts differ
from their manifest refuses to start (``KnowledgeError``) rather than report a version
that does not describe what it runs. Regenerate it after editing an artifact::

    python -m service.clinical.knowledge --write
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import orjson

from service.clinical.artifactcli import CheckResult, check_or_write
from service.clinical.valuesets import DEFAULT_PROFILES_DIR, KnowledgeError

__all__ = [
    "ARTIFACT_FOLDERS",
    "MANIFEST_NAME",
    "compute_manifest",
    "load_knowledge_version",
    "main",
    "write_manifest",
]

MANIFEST_NAME = "manifest.json"
#: Folders under ``profiles`` whose ``*.json`` files are versioned artifacts. Examples and
#: README files are not: they do not change what the service decides.
ARTIFACT_FOLDERS = ("valuesets", "plandefinitions")
# 16 hex digits (64 bits) keep the version short in logs and cards while making an
# accidental collision between two knowledge releases practically impossible.
_VERSION_HEX_DIGITS = 16


def compute_manifest(profiles_dir: Path = DEFAULT_PROFILES_DIR) -> dict[str, object]:
    """The manifest the artifacts under ``profiles_dir`` should have (absent folders are skipped)."""
    artifacts: list[dict[str, str]] = []
    for folder in ARTIFACT_FOLDERS:
        directory = profiles_dir / folder
        if not directory.is_dir():
            continue
        for file in sorted(directory.glob("*.json")):
            artifacts.append({"path": f"{folder}/{file.name}", "sha256": hashlib.sha256(file.read_bytes()).hexdigest()})
    combined = hashlib.sha256("\n".join(sorted(item["sha256"] for item in artifacts)).encode("ascii"))
    return {
        "knowledgeVersion": combined.hexdigest()[:_VERSION_HEX_DIGITS],
        "algorithm": "sha256",
        "artifacts": artifacts,
    }


def write_manifest(profiles_dir: Path = DEFAULT_PROFILES_DIR) -> str:
    """Regenerate ``profiles_dir/manifest.json``; return the new knowledge version."""
    manifest = compute_manifest(profiles_dir)
    payload = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    (profiles_dir / MANIFEST_NAME).write_bytes(payload)
    return str(manifest["knowledgeVersion"])


def load_knowledge_version(profiles_dir: Path = DEFAULT_PROFILES_DIR) -> str:
    """The committed knowledge version, after checking the manifest matches the files.

    Raises ``KnowledgeError`` if the manifest is missing, malformed or stale.
    """
    path = profiles_dir / MANIFEST_NAME
    try:
        recorded = orjson.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise KnowledgeError(f"knowledge manifest not found: {path}") from exc
    except orjson.JSONDecodeError as exc:
        raise KnowledgeError(f"knowledge manifest is not valid JSON: {path}: {exc}") from exc
    if not isinstance(recorded, dict) or not isinstance(recorded.get("knowledgeVersion"), str):
        raise KnowledgeError(f"knowledge manifest has no knowledgeVersion: {path}")
    expected = compute_manifest(profiles_dir)
    if recorded != expected:
        changed = _changed_paths(recorded.get("artifacts"), expected["artifacts"])
        raise KnowledgeError(
            f"knowledge manifest is stale ({', '.join(changed) or 'header'}); "
            "run: python -m service.clinical.knowledge --write"
        )
    return str(recorded["knowledgeVersion"])


def _changed_paths(recorded: object, expected: object) -> list[str]:
    def as_map(artifacts: object) -> dict[str, str]:
        if not isinstance(artifacts, list):
            return {}
        return {str(item.get("path")): str(item.get("sha256")) for item in artifacts if isinstance(item, dict)}

    old, new = as_map(recorded), as_map(expected)
    return sorted(path for path in old.keys() | new.keys() if old.get(path) != new.get(path))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m service.clinical.knowledge [--write] [--profiles-dir DIR]``.

    Without ``--write`` it checks the manifest and prints the version (exit 1 if stale).
    """
    return check_or_write(
        argv,
        prog="python -m service.clinical.knowledge",
        description="Check or regenerate profiles/manifest.json.",
        write_help="regenerate the manifest from the artifacts",
        write=lambda profiles_dir: (
            f"wrote {profiles_dir / MANIFEST_NAME}: knowledgeVersion {write_manifest(profiles_dir)}"
        ),
        check=_check,
    )


def _check(profiles_dir: Path) -> CheckResult:
    try:
        return True, f"knowledgeVersion {load_knowledge_version(profiles_dir)}"
    except KnowledgeError as exc:
        return False, str(exc)


if __name__ == "__main__":
    raise SystemExit(main())
