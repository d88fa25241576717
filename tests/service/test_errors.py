"""One exception root for the service: every exception class defined under service/ is an MsccError."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import service
from cds_hooks.errors import CDSHooksError
from service.errors import MsccError

# Alembic runs these scripts itself, inside its migration context: they are not importable modules.
_NOT_MODULES = "service.store.migrations"


def _service_modules() -> list[ModuleType]:
    names = (info.name for info in pkgutil.walk_packages(service.__path__, "service."))
    return [importlib.import_module(name) for name in names if not name.startswith(_NOT_MODULES)]


def _exceptions_defined_in(module: ModuleType) -> list[type[BaseException]]:
    return [
        member
        for member in vars(module).values()
        if inspect.isclass(member) and issubclass(member, BaseException) and member.__module__ == module.__name__
    ]


def test_every_exception_of_the_service_derives_from_the_root() -> None:
    defined = {cls for module in _service_modules() for cls in _exceptions_defined_in(module)}
    # The walk sees the modules it should: configuration, FHIR gathering and the audit spool among them.
    assert {"ConfigurationError", "FhirFetchError", "SpoolUnavailable", "KnowledgeError"} <= {
        cls.__name__ for cls in defined
    }
    strays = sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in defined if not issubclass(cls, MsccError))
    assert strays == []


def test_the_protocol_layer_keeps_its_own_tree() -> None:
    # cds_hooks never imports the service, so none of its errors can be an MsccError.
    assert not issubclass(CDSHooksError, MsccError)


def test_errors_that_were_value_errors_still_are() -> None:
    # Pydantic validators and callers catch these as ValueError / RuntimeError: the root adds, never replaces.
    from service.fhir.bundle import NotFhir
    from service.fhir.origin import ServerRefused
    from service.store.spool import SpoolUnavailable

    assert issubclass(ServerRefused, ValueError) and issubclass(NotFhir, ValueError)
    assert issubclass(SpoolUnavailable, RuntimeError)
    assert str(ServerRefused("the message")) == "the message"
