"""keep_freed_memory: freed blocks are reused instead of being faulted in again."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from skinlib.models._allocator import keep_freed_memory

REPO = Path(__file__).resolve().parents[2]

# Each "step" allocates four 3 MiB blocks and frees them, the way a training step's
# tensors come and go; the child reports the page faults of 20 steps after the first.
# Page faults are counted, not timed.
CHILD = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np
    sys.path.insert(0, {repo!r})
    from skinlib.models._allocator import keep_freed_memory
    applied = keep_freed_memory() if {tuned!r} else False
    def step():
        blocks = [np.ones(3 << 20, np.uint8) for _ in range(4)]
        del blocks
    step()  # the first step's pages fault in either way
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        step()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    print(json.dumps({{"applied": applied, "faults": faults}}))
    """
)


def run_child(tuned: bool, env_extra: dict | None = None) -> dict:
    env = {**os.environ, **(env_extra or {})}
    out = subprocess.run([sys.executable, "-c", CHILD.format(repo=str(REPO), tuned=tuned)], capture_output=True,
                         text=True, env=env, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


needs_glibc = pytest.mark.skipif(not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
                                 reason="mallopt is glibc's")


@needs_glibc
def test_freed_blocks_are_reused_not_faulted_in_again():
    default, tuned = run_child(False), run_child(True)
    assert tuned["applied"] is True
    # By default the freed 12 MiB go back to the system after every step and fault in
    # again at the next: about 3,000 faults a step.
    assert default["faults"] > 20 * 2000
    # Kept: the same memory serves every step.
    assert tuned["faults"] < default["faults"] / 20


@needs_glibc
def test_the_environment_variable_leaves_malloc_alone():
    result = run_child(True, {"SKINLIB_KEEP_FREED_MEMORY": "0"})
    assert result["applied"] is False
    assert result["faults"] > 20 * 2000


@pytest.mark.parametrize("bad", [-1, 1 << 31, 2.5, "64M"])
def test_bad_settings_are_refused_by_name(bad, monkeypatch):
    monkeypatch.delenv("SKINLIB_KEEP_FREED_MEMORY", raising=False)
    if not sys.platform.startswith("linux"):
        pytest.skip("the settings are only checked where they apply")
    with pytest.raises(ValueError, match="top_pad"):
        keep_freed_memory(top_pad=bad)
