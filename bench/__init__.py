"""Benchmarks, run as modules from the repository root (``python -m bench.run``, ``python -m bench.http``, …).

A package, not a folder of scripts: ``bench/http.py`` shares its name with the standard library's ``http``, and
only under ``-m`` is it ``bench.http`` rather than the ``http`` every web library imports.
"""

__all__: list[str] = []
