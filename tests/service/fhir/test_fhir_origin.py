"""The fhirServer allowlist and the same-origin rule for every URL that carries the token."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.fhir.origin import ServerRefused, normalize_server_url, resolve_fhir_base
from service.fhir.settings import FhirSettings

ALLOWED = ["https://ehr.example.org/fhir"]


@pytest.mark.parametrize(
    "server",
    [
        "https://ehr.example.org/fhir",
        "https://ehr.example.org/fhir/",
        "https://EHR.Example.org:443/fhir",
        "https://ehr.example.org/fhir/r4",
    ],
)
def test_allowlisted_origin_and_path_prefix_are_admitted(server: str) -> None:
    base = resolve_fhir_base(server, ALLOWED, "production")
    assert base.origin == ("https", "ehr.example.org", None)


@pytest.mark.parametrize(
    "server",
    [
        "https://ehr.example.org/fhir-evil",  # prefix match must be whole segments
        "https://ehr.example.org/",
        "https://ehr.example.org/other/fhir",
        "https://ehr.example.org:8443/fhir",
        "https://evil.example.org/fhir",
        "https://ehr.example.org.evil.test/fhir",
        "https://ehr.example.org@evil.test/fhir",  # user info: the host is evil.test
        "https://ehr.example.org/fhir?x=1",
        "https://ehr.example.org/fhir/../admin",
        "ftp://ehr.example.org/fhir",
        "not a url",
    ],
)
def test_anything_else_is_refused(server: str) -> None:
    with pytest.raises(ServerRefused):
        resolve_fhir_base(server, ALLOWED, "production")


def test_production_requires_https_even_when_listed() -> None:
    with pytest.raises(ServerRefused, match="https"):
        resolve_fhir_base("http://ehr.example.org/fhir", ["http://ehr.example.org/fhir"], "production")
    assert resolve_fhir_base("http://ehr.example.org/fhir", ["http://ehr.example.org/fhir"], "development")


def test_scheme_is_part_of_the_origin() -> None:
    with pytest.raises(ServerRefused, match="allowlist"):
        resolve_fhir_base("http://ehr.example.org/fhir", ALLOWED, "development")


@pytest.mark.parametrize("server", ["http://127.0.0.1:8091/fhir", "http://localhost:8090/fhir", "http://[::1]:9/fhir"])
def test_development_with_empty_allowlist_admits_loopback_only(server: str) -> None:
    assert resolve_fhir_base(server, [], "development").url == normalize_server_url(server)
    with pytest.raises(ServerRefused, match="allowlist"):
        resolve_fhir_base(server.replace("http://", "https://"), [], "production")


@pytest.mark.parametrize(
    "server", ["http://10.0.0.5/fhir", "https://ehr.example.org/fhir", "http://localhost.evil.test/"]
)
def test_development_with_empty_allowlist_refuses_other_hosts(server: str) -> None:
    with pytest.raises(ServerRefused, match="allowlist"):
        resolve_fhir_base(server, [], "development")


def test_non_empty_allowlist_is_not_widened_by_loopback_in_development() -> None:
    with pytest.raises(ServerRefused):
        resolve_fhir_base("http://127.0.0.1:8091/fhir", ALLOWED, "development")


class TestResolve:
    base = resolve_fhir_base("https://ehr.example.org/fhir", ALLOWED, "production")

    def test_rendered_queries_land_under_the_base(self) -> None:
        url = self.base.resolve("Condition?patient=p1")
        assert str(url) == "https://ehr.example.org/fhir/Condition?patient=p1"

    def test_code_system_urls_inside_a_query_keep_it_relative(self) -> None:
        url = self.base.resolve("Observation?patient=p1&code=http://loinc.org|17861-6")
        assert url.path == "/fhir/Observation"
        assert url.params["code"] == "http://loinc.org|17861-6"

    @pytest.mark.parametrize(
        "link",
        [
            "https://ehr.example.org/fhir/Observation?patient=p1&_offset=20",
            "https://ehr.example.org:443/fhir?_getpages=abc&_getpagesoffset=20",  # HAPI's paging links
        ],
    )
    def test_next_links_on_the_same_origin_and_path_are_followed(self, link: str) -> None:
        assert self.base.resolve(link).host == "ehr.example.org"

    @pytest.mark.parametrize(
        "link",
        [
            "https://evil.test/fhir/Observation?page=2",
            "http://ehr.example.org/fhir/Observation?page=2",
            "https://ehr.example.org:8443/fhir/Observation?page=2",
            "https://ehr.example.org/admin/Observation?page=2",
            "https://ehr.example.org/fhirx/Observation",
            "https://user@ehr.example.org/fhir/Observation",
        ],
    )
    def test_next_links_elsewhere_are_refused(self, link: str) -> None:
        with pytest.raises(ServerRefused):
            self.base.resolve(link)

    @pytest.mark.parametrize("query", ["Patient/../../admin", "Patient/%2e%2e/%2E%2E/admin", "../admin"])
    def test_dot_segments_cannot_climb_out(self, query: str) -> None:
        with pytest.raises(ServerRefused):
            self.base.resolve(query)


class TestSettings:
    def test_allowlist_entries_are_canonical(self) -> None:
        settings = FhirSettings(allowed_servers=["HTTPS://EHR.example.org:443/fhir/"])
        assert settings.allowed_servers == ["https://ehr.example.org/fhir"]

    @pytest.mark.parametrize("entry", ["ehr.example.org/fhir", "https://ehr.example.org/fhir?x=1", "ftp://h/"])
    def test_unusable_entries_are_rejected(self, entry: str) -> None:
        with pytest.raises(ValidationError, match="allowed_servers"):
            FhirSettings(allowed_servers=[entry])

    def test_production_problems_name_plain_http_servers(self) -> None:
        settings = FhirSettings(allowed_servers=["http://ehr.example.org/fhir", "https://ok.example.org/fhir"])
        assert settings.production_problems() == [
            "MSCC_FHIR__ALLOWED_SERVERS: entry http://ehr.example.org/fhir is not https"
        ]
