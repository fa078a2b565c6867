"""Run under `accelerate launch` (2 processes): every rank writes its own keys into a pattern memory
bank, directly and through training forwards of a TRM, and writes what its bank holds to
`OUT_DIR/rank<r>.json`."""

import hashlib
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import PartialState

from hf_reason import TRMConfig, TRMForPuzzleSolving
from hf_reason.distributed import end_distributed
from hf_reason.models.trm.memory_trm import TRMPatternMemory


def config(**overrides) -> TRMConfig:
    kwargs = dict(vocab_size=11, seq_len=16, hidden_size=32, num_heads=2, intermediate_size=64, L_layers=1, H_cycles=2)
    return TRMConfig(**{**kwargs, "L_cycles": 2, "halt_max_steps": 2, "memory_slots": 8, **overrides})


def main(out_dir: Path) -> None:
    state = PartialState(cpu=True)  # a gloo group on the CPU, as the examples ask with use_cpu
    rank = state.process_index
    # Bank level: rank r writes the unit vector e_r, so the gathered write holds e_0 and e_1.
    memory = TRMPatternMemory(config(memory_top_k=2))
    memory.write(F.one_hot(torch.tensor(rank), 32).float().view(1, 1, -1).expand(1, 4, -1).clone())
    # Model level: the same initial weights, different puzzles per rank, training forwards.
    torch.manual_seed(0)
    model = TRMForPuzzleSolving(config()).train()
    generator = torch.Generator().manual_seed(100 + rank)
    for _ in range(2):
        model(torch.randint(1, 11, (4, 16), generator=generator))
    digest = hashlib.sha256()
    for name, tensor in sorted(model.model.memory.state_dict().items()):
        digest.update(name.encode() + tensor.detach().float().numpy().tobytes())
    result = {
        "world_size": state.num_processes,
        "keys": memory.keys[memory.filled].tolist(),
        "model_bank": digest.hexdigest(),
        "model_filled": int(model.model.memory.filled.sum()),
    }
    (out_dir / f"rank{rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
    end_distributed()
