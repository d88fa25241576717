"""Settings from files named like their variables: ``/run/secrets/MSCC_STORE__URL``.

Kubernetes mounts a Secret's keys as files and Docker Compose mounts each secret at
``/run/secrets/<target>``: keys named like the environment variables become settings the
same way, nested groups included, without a secret ever sitting in the environment (where
``/proc/<pid>/environ``, crash reports and ``docker inspect`` show it). The environment wins
over a file, so an operator can still override a setting for one run.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic_settings import BaseSettings, EnvSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

__all__ = ["SecretFilesSource"]

_PREFIX = "MSCC_"


class SecretFilesSource(EnvSettingsSource):
    """Reads every ``MSCC_*`` file of one folder as if it were an environment variable."""

    def __init__(self, settings_cls: type[BaseSettings], directory: Path) -> None:
        self._directory = directory  # set first: the base class reads the variables at once
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        found: dict[str, str | None] = {}
        if self._directory.is_dir():
            for path in sorted(self._directory.iterdir()):
                # Kubernetes' ..data folders and their timestamps are skipped by the name test.
                if path.name.upper().startswith(_PREFIX) and path.is_file():
                    found[path.name] = path.read_text(encoding="utf-8").strip()
        return parse_env_vars(found, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)
