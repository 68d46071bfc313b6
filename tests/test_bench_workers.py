"""Sweep workers end with their parent: killing ``crysgnn-dgl bench`` (SIGKILL, no clean-up)
leaves no orphaned run behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

PARENT = textwrap.dedent(
    """
    import multiprocessing, os, sys, time
    from crysgnn_dgl.bench.sweep import exit_with_parent

    def pid(_):
        return os.getpid()

    if __name__ == "__main__":
        context = multiprocessing.get_context("spawn")
        pool = context.Pool(1, initializer=exit_with_parent, initargs=(0.2,))
        print(pool.apply(pid, (0,)), flush=True)
        pool.apply_async(time.sleep, (120,))
        time.sleep(120)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie has ended
        return stat.read().split()[2] != "Z"


def test_a_worker_exits_when_its_parent_is_killed(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
        assert _alive(worker)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
        deadline = time.time() + 30
        while _alive(worker) and time.time() < deadline:
            time.sleep(0.2)
        assert not _alive(worker), "the worker outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
