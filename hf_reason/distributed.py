# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""The end of a script run under `accelerate launch`."""

import gc


def end_distributed() -> None:
    """Destroys the process group; call it last, after `main()` has returned (a no-op in a single
    process).

    A process that exits with the gloo group alive can abort in interpreter teardown (rank 1, SIGABRT,
    "terminate called without an active exception"): gloo's worker threads still hold work whose
    tensors need the interpreter (pytorch/pytorch#179291). Destroying the group does not free it
    while something else holds it, and a trainer's DDP model, left in reference cycles by `main()`,
    does; so the cycles are collected first, while the interpreter is fully alive.
    """
    from accelerate import PartialState

    gc.collect()
    PartialState().destroy_process_group()
