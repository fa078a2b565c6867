"""Runs a training script and SIGKILLs one of its processes while it saves a checkpoint, right before
the process writes its trainer state file (the file that marks its part of the checkpoint complete),
after everything the Trainer itself saves: the moment where a kill costs the most.

    python tests/scripts/kill_while_saving.py STEP RANK SCRIPT [SCRIPT FLAGS ...]
    accelerate launch ... tests/scripts/kill_while_saving.py STEP RANK SCRIPT [SCRIPT FLAGS ...]

The process of rank RANK (0 in a single process) dies while saving `checkpoint-STEP`; the other
processes run on until the launcher stops them.
"""

import os
import runpy
import signal
import sys
from pathlib import Path

import hf_reason.trainers.utils as trainer_utils
from hf_reason.distributed import end_distributed


def main() -> None:
    step, rank, script, *flags = sys.argv[1:]
    write_state = trainer_utils.save_safetensors_atomic  # what CheckpointStateMixin writes its state file with

    def die_before_the_state_file(tensors, path, *args, **kwargs):
        if Path(path).parent.name == f"checkpoint-{step}" and os.environ.get("RANK", "0") == rank:
            os.kill(os.getpid(), signal.SIGKILL)
        return write_state(tensors, path, *args, **kwargs)

    trainer_utils.save_safetensors_atomic = die_before_the_state_file
    sys.argv = [script, *flags]
    sys.path.insert(0, str(Path(script).resolve().parent))  # as `python SCRIPT` would, for its local imports
    runpy.run_path(script, run_name="not_main")["main"]()


if __name__ == "__main__":
    main()
    end_distributed()
