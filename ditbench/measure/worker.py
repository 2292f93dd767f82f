"""The measurement worker process: ``python -m ditbench.measure.worker [MODULE...]``.

Protocol (pickles over pipes, one message each way per case): the worker registers its kernels
through :func:`ditbench.attention.registry.load_kernels` (built-ins, entry points, then the named
kernel modules, as in the runner), writes ``"ready"``, then answers every :class:`Case` read from
stdin with its row dict, until it reads ``None``. The protocol uses a private copy of the
original stdout; file descriptor 1 is pointed at stderr so that a kernel that prints cannot
corrupt the stream.
"""
from __future__ import annotations

import os
import pickle
import sys
from typing import BinaryIO


def send(stream: BinaryIO, message: object) -> None:
    pickle.dump(message, stream, protocol=pickle.HIGHEST_PROTOCOL)
    stream.flush()


def serve(modules: list[str]) -> int:
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
    from .point import measure_case

    send(channel, "ready")
    while True:
        try:
            case = pickle.load(requests)
        except EOFError:  # the runner went away
            return 0
        if case is None:
            return 0
        send(channel, measure_case(case))


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1:]))
