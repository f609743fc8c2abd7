"""Child processes that end with their parent.

A parse child runs in a session of its own (so that a timeout can kill everything it
started), which also puts it out of reach of a kill of the server's process group: after
`kill -9` of the server it would parse on, with no one left to enforce its timeout. Linux's
parent-death signal ends it as soon as its parent (the forkserver, which exits when the
server goes) is gone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1
# Loaded at import, not in the child: die_with_parent also runs as a pre-exec hook, between
# fork and exec, where as little as possible should happen.
_LIBC = (
    ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if sys.platform.startswith("linux")
    else None
)


def die_with_parent(expected_parent: int | None = None) -> None:
    """Have the kernel SIGKILL this process when its parent exits (Linux; elsewhere a
    no-op). `expected_parent`: the parent's pid as the caller knew it; if the parent is
    already gone (re-parented before the signal was armed), exit now."""
    if _LIBC is None:
        return
    if _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return  # not allowed here (a seccomp profile, say): keep the old behaviour
    if expected_parent is not None and os.getppid() != expected_parent:
        os._exit(1)
