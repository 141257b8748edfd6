"""Run a measured step in a fresh child process and record its peak memory.

Used by the benchmark scripts: the child prints a JSON object as its last line of
output; the parent samples, with psutil when installed, the resident memory of the
child's whole process tree every 20 ms.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time


def run_child(cmd: list[str], what: str = "measured run") -> dict:
    """The child's last-line JSON, plus ``tree_peak_mb`` (NaN without psutil) and ``child_wall_s``."""
    wall0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    peak = [0]
    try:
        import psutil
    except ImportError:
        psutil = None

    def sample() -> None:
        # The sum over the child and all its descendants: worker processes included.
        try:
            me = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        while proc.poll() is None:
            try:
                rss = me.memory_info().rss + sum(c.memory_info().rss for c in me.children(recursive=True))
                peak[0] = max(peak[0], rss)
            except psutil.NoSuchProcess:
                pass
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True) if psutil else None
    if sampler:
        sampler.start()
    stdout, _ = proc.communicate()
    if sampler:
        sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{what} failed (exit {proc.returncode})")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["tree_peak_mb"] = peak[0] / 2**20 if psutil else float("nan")
    result["child_wall_s"] = time.perf_counter() - wall0
    return result
