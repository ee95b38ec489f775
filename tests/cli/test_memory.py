"""The long-run settings of `teg monitor` (tegkit.cli._memory), in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHECK = textwrap.dedent(
    """
    import gc, weakref
    from tegkit.cli._memory import YOUNG_GENERATION_OBJECTS, prepare_long_run

    prepare_long_run()
    assert gc.isenabled()
    assert gc.get_threshold()[0] == YOUNG_GENERATION_OBJECTS, gc.get_threshold()
    assert gc.get_freeze_count() > 0  # what the imports made is out of the collections

    class Node:
        pass

    # cycles that reference counting cannot free: the collector still reclaims them, unasked
    first = Node()
    first.me = first
    alive = weakref.ref(first)
    del first
    for _ in range(3 * YOUNG_GENERATION_OBJECTS):
        node = Node()
        node.me = node
    del node
    assert alive() is None, "a cycle outlived three young generations of garbage"
    print("ok")
    """
)


def test_a_larger_young_generation_still_reclaims_cycles() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
