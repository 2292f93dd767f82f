"""The measurement worker process: ``python -m ditbench.measure.worker [MODULE...]``.

Protocol (pickles over pipes, one message each way per request): the worker registers its kernels
through :func:`ditbench.attention.registry.load_kernels` (built-ins, entry points, then the named
kernel modules, as in the runner), writes ``"ready"``, then answers each request read from stdin
until it reads ``None``: a :class:`~.machine.Probe` with this machine's :class:`~.machine.Machine`
(identity and calibration), a ``(Case, Machine)`` pair with the case's row
(:func:`~.point.run_case`). The protocol uses a private copy of the original stdout; file
descriptor 1 is pointed at stderr so that a kernel that prints cannot corrupt the stream. On
Linux the worker asks to be killed when its parent dies, so that a killed runner or Dask worker
leaves no orphan measuring on.
"""
from __future__ import annotations

import ctypes
import os
import pickle
import signal
import sys
from typing import BinaryIO

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def send(stream: BinaryIO, message: object) -> None:
    pickle.dump(message, stream, protocol=pickle.HIGHEST_PROTOCOL)
    stream.flush()


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux/glibc: an orphan finishes its case and exits at end of input


def serve(modules: list[str]) -> int:
    # Ctrl-C reaches the whole process group; the parent (ditbench.cli) reports it and closes this
    # worker, so the worker itself ignores it rather than print a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    from .memory import fix_heap_policy  # before any kernel allocates (ditbench.measure.memory)

    fix_heap_policy()
    channel = os.fdopen(os.dup(1), "wb")  # private protocol stream
    os.dup2(2, 1)  # prints from kernels go to stderr
    sys.stdout = sys.stderr
    requests = sys.stdin.buffer
    try:
        from ..attention.registry import load_kernels

        load_kernels(modules)
    except ImportError as err:
        send(channel, f"cannot import {err.name}: {err}")
        return 1
    from .machine import Probe, probe  # after the imports above, so their kernels are registered
    from .point import run_case

    send(channel, "ready")
    while True:
        try:
            request = pickle.load(requests)
        except EOFError:  # the runner went away
            return 0
        if request is None:
            return 0
        if isinstance(request, Probe):
            try:
                answer: object = probe(request.device, request.threads, rates=request.rates,
                                       memory_limit=request.memory_limit, worker=request.worker)
            except Exception as err:  # noqa: BLE001  (reported to the runner, which stops with it)
                answer = f"{type(err).__name__}: {err}"
            send(channel, answer)
        else:
            case, machine = request
            send(channel, run_case(case, machine))


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1:]))
