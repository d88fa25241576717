"""The in-process bench's timing: the floor and the screenings take turns."""

from __future__ import annotations

from bench.run import _best_of


def test_timings_take_turns_one_run_each_per_round() -> None:
    calls: list[str] = []

    def timing(name: str) -> tuple[object, object]:
        return (lambda: name, calls.append)

    best = _best_of(3, timing("floor"), timing("screen"), timing("new"))  # type: ignore[arg-type]
    assert calls == ["floor", "screen", "new"] * 3
    assert len(best) == 3
