"""Run every bench/bench_*.py module's run() and print one table: name, value, unit.

`python -m bench --only cloud` (repeatable, or comma-separated) runs only the named modules
(`cloud` is bench/bench_cloud.py), e.g. to skip the monitor's ten-minute fuzz.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _modules(only: list[str]) -> list[str]:
    """The bench modules to run, in name order: all of them, or those named in `only`."""
    known = sorted(path.stem.removeprefix("bench_") for path in HERE.glob("bench_*.py"))
    wanted = {name.strip().removeprefix("bench_") for item in only for name in item.split(",")}
    wanted.discard("")
    unknown = sorted(wanted - set(known))
    if unknown:
        raise SystemExit(
            f"bench: unknown module(s) {', '.join(unknown)}; known: {', '.join(known)}"
        )
    return [name for name in known if not wanted or name in wanted]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this module (bench_NAME.py); repeatable or comma-separated",
    )
    args = parser.parse_args(argv)
    rows: list[tuple[str, float, str]] = []
    for name in _modules(args.only):
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"running bench_{name} ...", file=sys.stderr, flush=True)
        rows.extend(module.run())
    width = max((len(name) for name, _, _ in rows), default=10)
    print(f"{'name':<{width}}  {'value':>12} unit")
    for name, value, unit in rows:
        print(f"{name:<{width}}  {value:12.2f} {unit}")


if __name__ == "__main__":
    main()
