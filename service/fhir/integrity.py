"""Whose data is it? Only the context patient's resources ever reach the rules.

The one place where a resource is tied to ``context.patientId``, on the prefetch path
and on the FHIR-server path alike (:class:`~service.fhir.gather.PatientDataGatherer`
calls it for both). The policy and its reasons are in docs/clinical/patient-integrity.md:

* a Patient resource counts only if its ``id`` is the context patient's;
* any other resource counts only if its ``subject`` (or ``patient``) reference names that
  Patient: ``Patient/{id}`` (optionally ``/_history/{version}``), the same reference as an
  absolute URL under the request's ``fhirServer``, or a reference (``urn:uuid:…`` or any
  other) that a Bundle entry's ``fullUrl`` resolves to that Patient resource;
* everything else is dropped and counted by prefetch key and :class:`Exclusion`, never
  with an id: about another patient (or a Group), about no one, or a reference that
  cannot be tied to this patient (an unresolved ``urn:uuid:``, another server, an
  identifier or display only, a contained ``#`` reference).

:class:`PatientReferences` is the reading of a reference itself (which Patient, if any, a
resource names); :class:`PatientScope` compares its answer with the context patient.
Population screening groups a Bulk FHIR export by the same reading, so that a resource
goes to a patient in an export exactly when the hook would keep it for that patient; and
the snapshot reader reads an Observation's ``focus`` by it (:meth:`PatientReferences.names`,
carried on :attr:`~service.fhir.record.PatientRecord.references`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from urllib.parse import urlsplit

from service.clinical.recordparts import Excluded, Exclusion, RecordPart
from service.fhir.bundle import Entry
from service.fhir.record import Resource

__all__ = ["PatientReferences", "PatientScope"]

# Type/id with an optional version: "Patient/123", "Patient/123/_history/2".
_RELATIVE = re.compile(r"^([A-Z][A-Za-z]{0,63})/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _server_root(url: str) -> tuple[str, str, int | None, str] | None:
    """Scheme, host, port and path of an absolute http(s) URL, normalised for comparison."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.query or parts.fragment:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme], parts.path.rstrip("/")


def _against(named: str | Exclusion, patient_id: str) -> Exclusion | None:
    """``None`` when ``named`` (:meth:`PatientReferences.named_by`) is ``patient_id``, else why not."""
    # Exclusion is a StrEnum: compared as text, "unresolved-reference" would be a valid id.
    if isinstance(named, Exclusion):
        return named
    return None if named == patient_id else Exclusion.ANOTHER_PATIENT


class PatientReferences:
    """Which Patient a resource names, read as the hook reads it (see the module docstring).

    ``fhir_server``: the server that relative ids belong to; an absolute reference counts
    only under it. ``entries``: the Bundle entries whose ``fullUrl`` a reference may name.
    """

    def __init__(self, fhir_server: str | None, entries: Iterable[Entry] = ()) -> None:
        self._server = _server_root(fhir_server) if fhir_server else None
        #: what each fullUrl of the request's Bundles stands for (Bundle reference resolution)
        # Only absolute URLs and urn:uuid/urn:oid name a resource: a "fullUrl" spelt like a
        # relative reference must not re-point "Patient/{id}" at another resource.
        self._full_urls = {
            entry.full_url: entry.resource
            for entry in entries
            if entry.full_url and (entry.full_url.startswith("urn:") or "://" in entry.full_url)
        }

    def patient_of(self, resource: Resource) -> str | Exclusion:
        """The id of the Patient ``resource`` is about, or why none can be named.

        A Patient is about itself; any other resource about what its ``subject`` (or, when
        it has none, its ``patient``) refers to. ``ANOTHER_PATIENT`` here means a reference
        to something that is no Patient (a Group, a Device): no patient's data.
        """
        if resource.get("resourceType") == "Patient":
            own = resource.get("id")
            return own if isinstance(own, str) and own else Exclusion.NO_PATIENT
        for element in ("subject", "patient"):
            if element in resource:
                return self.named_by(resource[element])
        return Exclusion.NO_PATIENT

    def names(self, reference: object, patient_id: str) -> bool:
        """Whether a raw Reference names the Patient ``patient_id``, read as a ``subject`` is.

        The snapshot reader asks this of an Observation's ``focus``: the finding is the
        patient's only when it is, so a focus that cannot be resolved is someone else's.
        """
        return _against(self.named_by(reference), patient_id) is None

    def named_by(self, reference: object) -> str | Exclusion:
        """The id of the Patient a raw Reference names, or why none can be named.

        The one reading of a reference: a resource's ``subject`` (or ``patient``), and an
        Observation's ``focus`` (:meth:`names`). ``ANOTHER_PATIENT``: it names something that is no
        Patient; ``UNRESOLVED``: it cannot be tied to any Patient resource.
        """
        text = reference.get("reference") if isinstance(reference, dict) else None
        if not isinstance(text, str) or not text:
            # identifier or display only: nothing ties it to a Patient resource
            return Exclusion.UNRESOLVED if reference else Exclusion.NO_PATIENT
        target = self._full_urls.get(text)
        if target is not None:
            own = target.get("id")
            if target.get("resourceType") == "Patient" and isinstance(own, str) and own:
                return own
            return Exclusion.ANOTHER_PATIENT
        relative = self._relative(text)
        if relative is None:
            return Exclusion.UNRESOLVED
        resource_type, identifier = relative
        return identifier if resource_type == "Patient" else Exclusion.ANOTHER_PATIENT

    def _relative(self, text: str) -> tuple[str, str] | None:
        """``(type, id)`` of a relative reference, or of an absolute one under ``fhirServer``."""
        if "://" in text:
            root = _server_root(text)
            if self._server is None or root is None or root[:3] != self._server[:3]:
                return None
            prefix = self._server[3] + "/"
            if not root[3].startswith(prefix):
                return None
            text = root[3][len(prefix) :]
        match = _RELATIVE.match(text)
        return (match.group(1), match.group(2)) if match else None


class PatientScope:
    """Decides, resource by resource, whether it belongs to ``patient_id`` (see the module docstring)."""

    def __init__(self, patient_id: str, fhir_server: str | None, entries: Iterable[Entry] = ()) -> None:
        self._id = patient_id
        self._references = PatientReferences(fhir_server, entries)

    @property
    def references(self) -> PatientReferences:
        """The reading of references this scope applies; the snapshot reader reads ``focus`` by it."""
        return self._references

    def exclusion(self, resource: Resource) -> Exclusion | None:
        """``None`` when ``resource`` is the context patient's, else why it is not."""
        if resource.get("resourceType") == "Patient":
            return None if resource.get("id") == self._id else Exclusion.ANOTHER_PATIENT
        return _against(self._references.patient_of(resource), self._id)

    def keep_own(
        self, key: str, resources: Iterable[Resource], part: RecordPart | None = None
    ) -> tuple[list[Resource], list[Excluded]]:
        """The context patient's resources of ``key`` (``part`` of the record), and what was dropped, by reason."""
        own: list[Resource] = []
        dropped: Counter[Exclusion] = Counter()
        for resource in resources:
            reason = self.exclusion(resource)
            if reason is None:
                own.append(resource)
            else:
                dropped[reason] += 1
        return own, [Excluded(key, reason, count, part) for reason, count in sorted(dropped.items())]
