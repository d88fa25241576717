"""The knowledge manifest pins every artifact; a stale manifest stops the service."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import orjson
import pytest

from service.clinical.knowledge import (
    ARTIFACT_FOLDERS,
    MANIFEST_NAME,
    compute_manifest,
    load_knowledge_version,
    main,
    write_manifest,
)
from service.clinical.valuesets import DEFAULT_PROFILES_DIR, KnowledgeError


@pytest.fixture
def profiles(tmp_path: Path) -> Path:
    """A small profiles folder: two value sets, a README and a current manifest."""
    valuesets = tmp_path / "valuesets"
    valuesets.mkdir()
    (valuesets / "a.json").write_bytes(b'{"resourceType": "ValueSet", "id": "a"}\n')
    (valuesets / "b.json").write_bytes(b'{"resourceType": "ValueSet", "id": "b"}\n')
    (valuesets / "README.md").write_text("not an artifact\n")
    write_manifest(tmp_path)
    return tmp_path


def test_the_committed_manifest_is_up_to_date() -> None:
    recorded = orjson.loads((DEFAULT_PROFILES_DIR / MANIFEST_NAME).read_bytes())
    version = load_knowledge_version()
    assert version == recorded["knowledgeVersion"]
    assert re.fullmatch(r"[0-9a-f]{16}", version)


def test_the_committed_manifest_lists_every_value_set() -> None:
    recorded = orjson.loads((DEFAULT_PROFILES_DIR / MANIFEST_NAME).read_bytes())
    listed = {item["path"] for item in recorded["artifacts"]}
    on_disk = {f"valuesets/{path.name}" for path in (DEFAULT_PROFILES_DIR / "valuesets").glob("*.json")}
    assert on_disk
    assert on_disk <= listed
    assert all(path.startswith(("valuesets/", "plandefinitions/")) for path in listed)


def test_manifest_hashes_each_json_artifact(profiles: Path) -> None:
    manifest = compute_manifest(profiles)
    artifacts = manifest["artifacts"]
    assert isinstance(artifacts, list)
    assert [item["path"] for item in artifacts] == ["valuesets/a.json", "valuesets/b.json"]
    expected = hashlib.sha256((profiles / "valuesets" / "a.json").read_bytes()).hexdigest()
    assert artifacts[0]["sha256"] == expected
    assert load_knowledge_version(profiles) == manifest["knowledgeVersion"]


def test_version_is_a_hash_of_the_sorted_file_hashes(profiles: Path) -> None:
    manifest = compute_manifest(profiles)
    artifacts = manifest["artifacts"]
    assert isinstance(artifacts, list)
    combined = hashlib.sha256("\n".join(sorted(item["sha256"] for item in artifacts)).encode()).hexdigest()
    assert manifest["knowledgeVersion"] == combined[:16]
    assert compute_manifest(profiles) == manifest, "deterministic"


def test_a_changed_file_makes_the_manifest_stale(profiles: Path) -> None:
    before = load_knowledge_version(profiles)
    (profiles / "valuesets" / "b.json").write_bytes(b'{"resourceType": "ValueSet", "id": "b", "version": "2"}\n')
    with pytest.raises(KnowledgeError, match=r"stale \(valuesets/b\.json\)"):
        load_knowledge_version(profiles)
    assert write_manifest(profiles) != before
    assert load_knowledge_version(profiles) != before


def test_an_added_or_removed_artifact_makes_it_stale(profiles: Path) -> None:
    (profiles / "valuesets" / "c.json").write_bytes(b"{}\n")
    with pytest.raises(KnowledgeError, match=r"valuesets/c\.json"):
        load_knowledge_version(profiles)
    (profiles / "valuesets" / "c.json").unlink()
    (profiles / "valuesets" / "a.json").unlink()
    with pytest.raises(KnowledgeError, match=r"valuesets/a\.json"):
        load_knowledge_version(profiles)


def test_non_json_files_do_not_change_the_version(profiles: Path) -> None:
    before = load_knowledge_version(profiles)
    (profiles / "valuesets" / "README.md").write_text("edited\n")
    assert load_knowledge_version(profiles) == before


def test_plan_definitions_are_artifacts_when_present(profiles: Path) -> None:
    before = load_knowledge_version(profiles)
    plans = profiles / "plandefinitions"
    plans.mkdir()
    (plans / "r1.json").write_bytes(b'{"resourceType": "PlanDefinition", "id": "r1"}\n')
    with pytest.raises(KnowledgeError, match=r"plandefinitions/r1\.json"):
        load_knowledge_version(profiles)
    after = write_manifest(profiles)
    assert after != before
    artifacts = compute_manifest(profiles)["artifacts"]
    assert isinstance(artifacts, list)
    assert "plandefinitions/r1.json" in {item["path"] for item in artifacts}


def test_an_empty_profiles_folder_has_a_version(tmp_path: Path) -> None:
    version = write_manifest(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{16}", version)
    assert compute_manifest(tmp_path)["artifacts"] == []


def test_a_missing_or_malformed_manifest_raises(profiles: Path) -> None:
    manifest = profiles / MANIFEST_NAME
    manifest.write_bytes(b"{broken")
    with pytest.raises(KnowledgeError, match="not valid JSON"):
        load_knowledge_version(profiles)
    manifest.write_bytes(b'{"artifacts": []}')
    with pytest.raises(KnowledgeError, match="no knowledgeVersion"):
        load_knowledge_version(profiles)
    manifest.unlink()
    with pytest.raises(KnowledgeError, match="not found"):
        load_knowledge_version(profiles)


def test_a_tampered_version_is_stale(profiles: Path) -> None:
    manifest = profiles / MANIFEST_NAME
    recorded = orjson.loads(manifest.read_bytes())
    recorded["knowledgeVersion"] = "0" * 16
    manifest.write_bytes(orjson.dumps(recorded))
    with pytest.raises(KnowledgeError, match=r"stale \(header\)"):
        load_knowledge_version(profiles)


def test_the_repository_artifacts_round_trip(tmp_path: Path) -> None:
    for folder in ARTIFACT_FOLDERS:
        if (DEFAULT_PROFILES_DIR / folder).is_dir():
            shutil.copytree(DEFAULT_PROFILES_DIR / folder, tmp_path / folder)
    assert write_manifest(tmp_path) == load_knowledge_version()


def test_cli_writes_then_checks(profiles: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (profiles / "valuesets" / "a.json").write_bytes(b'{"resourceType": "ValueSet", "id": "a", "v": 2}\n')
    assert main(["--profiles-dir", str(profiles)]) == 1
    assert "stale" in capsys.readouterr().err
    assert main(["--write", "--profiles-dir", str(profiles)]) == 0
    version = load_knowledge_version(profiles)
    assert version in capsys.readouterr().out
    assert main(["--profiles-dir", str(profiles)]) == 0
    assert capsys.readouterr().out == f"knowledgeVersion {version}\n"
