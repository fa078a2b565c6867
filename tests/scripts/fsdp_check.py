"""Run under `accelerate launch --config_file accelerate_configs/fsdp.yaml --num_processes 2
--mixed_precision no` on CPUs: trains each model family once with DDP and once with the config's
FSDP2 sharding, on the same data from the same initial weights, and writes what each rank saw to
`OUT_DIR/rank<r>.json`.

accelerate (1.15) turns FSDP on only for accelerator processes (`MULTI_GPU`, `MULTI_XPU`, ...); CPU
processes run as `MULTI_CPU`, i.e. DDP, whatever the config says. To run the FSDP2 code path on CPUs
(gloo), `use_distributed_type` makes accelerate take its accelerator branch once the CPU process
group exists; the plugin itself is the one `accelerate launch` built from the config file.

- TRM with `DeepSupervisionTrainer`: DDP for 4 steps; FSDP for 2 steps with a checkpoint, then a
  new trainer resuming from it ("last") to step 4 with another checkpoint (`save_total_limit=1`) and
  evaluation; and the refusal of `ema_decay > 0` under FSDP.
- CRSM and meta-attention causal LMs with the `Trainer` (and hf-reason's saving hooks): DDP and FSDP
  for 3 steps each (an error that FSDP raises while sharding a model is recorded).

Every run ends with the final `save_model()` into its own `output_dir`.
"""

import glob
import json
import os
import sys

import torch
from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import DistributedType
from datasets import Dataset
from torch.distributed.fsdp import FSDPModule
from transformers import Trainer, TrainingArguments

from hf_reason import (
    CRSMConfig,
    CRSMForCausalLM,
    MetaAttentionConfig,
    MetaAttentionForCausalLM,
    TRMConfig,
    TRMForPuzzleSolving,
)
from hf_reason.distributed import end_distributed
from hf_reason.trainers import DeepSupervisionConfig, DeepSupervisionTrainer
from hf_reason.trainers._model_card import ModelCardMixin


class CausalLMTrainer(ModelCardMixin, Trainer):
    """The stock Trainer with the saving hooks all hf-reason trainers share (under FSDP2 the stock
    one saves torch's `_fsdp_*.py` as the model's code; see `own_class`)."""


def use_distributed_type(args: TrainingArguments, fsdp: bool) -> None:
    """Makes the next Trainer's accelerator run DDP (`fsdp=False`) or the launcher's FSDP plugin.

    `AcceleratorState` attaches the FSDP plugin only when the process group's type is an accelerator
    one; declaring the CPU group `MULTI_GPU` (its device stays the CPU) makes it take that branch.
    """
    args.device  # noqa: B018 (sets up the CPU process group)
    AcceleratorState._reset_state()  # the process group (PartialState) stays
    PartialState._shared_state["distributed_type"] = DistributedType.MULTI_GPU if fsdp else DistributedType.MULTI_CPU


def puzzles() -> Dataset:
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randint(2, 11, (64, 16), generator=gen)
    return Dataset.from_dict({"input_ids": inputs.tolist(), "labels": ((inputs - 1) % 9 + 2).tolist()})


def texts(vocab_size: int) -> Dataset:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, vocab_size, (32, 12), generator=gen)
    return Dataset.from_dict({"input_ids": ids.tolist(), "labels": ids.tolist()})


def trm() -> TRMForPuzzleSolving:
    torch.manual_seed(0)
    config = TRMConfig(
        vocab_size=11,
        seq_len=16,
        hidden_size=32,
        num_heads=2,
        intermediate_size=64,
        L_layers=2,
        H_cycles=1,
        L_cycles=1,
        halt_max_steps=2,
        halt_exploration_prob=0.5,  # exploration draws from the RNG: resuming must restore it
    )
    return TRMForPuzzleSolving(config)


def losses(trainer) -> dict[int, float]:
    return {h["step"]: h["loss"] for h in trainer.state.log_history if "loss" in h}


def sharding(trainer, block_class: str) -> dict:
    """Whether the blocks and the model are FSDP2 modules, and the parameter elements this rank holds."""
    model = trainer.model_wrapped
    blocks = [m for m in model.modules() if type(m).__name__.endswith(block_class)]
    local = sum(p.to_local().numel() if hasattr(p, "to_local") else p.numel() for p in model.parameters())
    return {
        "model_is_fsdp": isinstance(model, FSDPModule),
        "blocks": len(blocks),
        "blocks_are_fsdp": all(isinstance(m, FSDPModule) for m in blocks),
        "local_numel": local,
    }


def saved(trainer) -> dict:
    """Saves the model (the final `save_model()`) and reads back what the folder holds."""
    trainer.save_model()
    trainer.accelerator.wait_for_everyone()  # rank 0 writes the folder
    folder = trainer.args.output_dir
    with open(os.path.join(folder, "config.json")) as f:
        auto_map = json.load(f).get("auto_map")
    files = sorted(name for name in os.listdir(folder) if not name.startswith("checkpoint-"))
    return {"files": files, "auto_map": auto_map, "checkpoints": sorted(glob.glob(f"{folder}/checkpoint-*"))}


def check_trm(out_dir: str) -> dict:
    def args(name: str, **overrides) -> DeepSupervisionConfig:
        kwargs = dict(
            output_dir=os.path.join(out_dir, name),
            per_device_train_batch_size=4,
            per_device_eval_batch_size=8,
            max_steps=4,
            learning_rate=1e-3,
            warmup_steps=0,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            disable_tqdm=True,
            ema_decay=0.0,
            seed=0,
            data_seed=0,
        )
        kwargs.update(overrides)
        return DeepSupervisionConfig(**kwargs)

    result = {}
    ddp_args = args("trm_ddp")
    use_distributed_type(ddp_args, fsdp=False)
    ddp = DeepSupervisionTrainer(model=trm(), args=ddp_args, train_dataset=puzzles())
    ddp.train()
    result["ddp"] = {
        "type": ddp.accelerator.distributed_type,
        "losses": losses(ddp),
        **sharding(ddp, "TRMBlock"),
        **saved(ddp),
    }

    checkpoints = dict(save_strategy="steps", save_steps=2, save_total_limit=1)
    first_args = args("trm_fsdp", max_steps=2, **checkpoints)
    use_distributed_type(first_args, fsdp=True)
    first = DeepSupervisionTrainer(model=trm(), args=first_args, train_dataset=puzzles())
    first.train()

    resumed_args = args("trm_fsdp", **checkpoints)
    use_distributed_type(resumed_args, fsdp=True)
    resumed = DeepSupervisionTrainer(model=trm(), args=resumed_args, train_dataset=puzzles(), eval_dataset=puzzles())
    resumed.train(resume_from_checkpoint="last")
    metrics = resumed.evaluate()
    result["fsdp"] = {
        "type": resumed.accelerator.distributed_type,
        "first_losses": losses(first),
        "losses": losses(resumed),
        "eval_exact_accuracy": metrics["eval_exact_accuracy"],
        **sharding(resumed, "TRMBlock"),
        **saved(resumed),
    }

    ema_args = args("trm_ema", ema_decay=0.9)
    use_distributed_type(ema_args, fsdp=True)
    try:
        DeepSupervisionTrainer(model=trm(), args=ema_args, train_dataset=puzzles())
        result["ema_refusal"] = None
    except ValueError as error:
        result["ema_refusal"] = str(error)
    return result


def check_causal_lm(name: str, build, block_class: str, vocab_size: int, out_dir: str) -> dict:
    result = {}
    for mode in ("ddp", "fsdp"):
        args = TrainingArguments(
            output_dir=os.path.join(out_dir, f"{name}_{mode}"),
            per_device_train_batch_size=4,
            max_steps=3,
            learning_rate=1e-3,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            disable_tqdm=True,
            seed=0,
            data_seed=0,
        )
        use_distributed_type(args, fsdp=mode == "fsdp")
        torch.manual_seed(0)
        trainer = CausalLMTrainer(model=build(), args=args, train_dataset=texts(vocab_size))
        try:
            trainer.train()
        except ValueError as error:  # raised by fully_shard on every rank alike, before any collective
            result[mode] = {"error": str(error)}
            continue
        result[mode] = {
            "type": trainer.accelerator.distributed_type,
            "losses": losses(trainer),
            **sharding(trainer, block_class),
            **saved(trainer),
        }
    return result


def main(out_dir: str) -> None:
    rank = int(os.environ["RANK"])
    crsm = CRSMConfig(vocab_size=64, hidden_size=32, state_size=8, num_hidden_layers=2, pad_token_id=2)
    meta = MetaAttentionConfig(
        vocab_size=96,
        n_positions=32,
        n_embd=32,
        n_layer=2,
        n_head=2,
        meta_top_k=3,
        meta_hidden_size=16,
        pad_token_id=0,
    )
    result = {
        "rank": rank,
        "trm": check_trm(out_dir),
        "crsm": check_causal_lm("crsm", lambda: CRSMForCausalLM(crsm), "MambaBlock", 64, out_dir),
        "meta_attention": check_causal_lm("meta", lambda: MetaAttentionForCausalLM(meta), "GPT2Block", 96, out_dir),
    }
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(result, f, default=str)


if __name__ == "__main__":
    main(sys.argv[1])
    end_distributed()
