"""Run every bench/bench_*.py module's run() and print one table: name, value, unit."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    rows: list[tuple[str, float, str]] = []
    for path in sorted(HERE.glob("bench_*.py")):
        module = importlib.import_module(f"bench.{path.stem}")
        print(f"running {path.stem} ...", file=sys.stderr, flush=True)
        rows.extend(module.run())
    width = max((len(name) for name, _, _ in rows), default=10)
    print(f"{'name':<{width}}  {'value':>12} unit")
    for name, value, unit in rows:
        print(f"{name:<{width}}  {value:12.2f} {unit}")


if __name__ == "__main__":
    main()
