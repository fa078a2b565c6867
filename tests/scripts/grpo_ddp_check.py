"""ReasoningGRPOTrainer on a tiny GPT-2, under `accelerate launch` (2 processes) or run plainly (1 process).

1. Sampled generation, two steps: writes each rank's weight checksums (at init and after training), the
   prompts it generated for and the logged metrics to `rank{r}.json`.
2. The loss forward, one step each for ReasoningGRPOTrainer and stock `GRPOTrainer`, with gradient
   checkpointing on and off, on a global batch of 8 rows (2 prompts x 4) whatever the process count, on a
   tiny meta-attention model and a tiny CRSM (meta-attention's positions count real tokens and CRSM's
   padding leaves its state at zero, so the padding that a 1-process batch adds to its shorter prompt
   changes nothing; GPT-2's absolute positions would shift, in stock GRPO too): rank 0 writes the step's
   gradients (after DDP's reduction) to `grads_{family}_{trainer}_{gc|no_gc}.safetensors` and every rank
   the rows it shared in the loss forward to `shared_{family}_rank{r}.json`. The completions are
   scripted (fixed by the prompt and the copy's place in its group): sampled ones come from a seed per
   process, so a 2-process run's would differ from a 1-process run's and the gradients could not be compared.
"""

import hashlib
import os
import sys
from pathlib import Path

from transformers import TrainerCallback
from trl import GRPOConfig, GRPOTrainer

from hf_reason.data import build_tokenizer, generate_arithmetic
from hf_reason.distributed import end_distributed
from hf_reason.file_io import atomic_write_json, save_safetensors_atomic
from hf_reason.trainers import ReasoningGRPOConfig, ReasoningGRPOTrainer


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' tiny models
from grpo_testing import tiny_crsm, tiny_gpt2, tiny_meta_attention  # noqa: E402


# what both runs' configs share: 4 completions per prompt, one log line per step, CPU, float32
COMMON_ARGS = dict(
    num_generations=4,
    logging_steps=1,
    save_strategy="no",
    report_to="none",
    use_cpu=True,
    bf16=False,
    disable_tqdm=True,
    seed=0,
)


def length_reward(prompts, completions, **kwargs):
    return [float(len(c)) for c in completions]


def weights_sha256(model) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def sampled_generation_run(out_dir: str, tokenizer) -> None:
    model = tiny_gpt2(tokenizer)
    initial_sha256 = weights_sha256(model)
    seen = []

    def recording_reward(prompts, completions, **kwargs):
        seen.extend(prompts)
        return length_reward(prompts, completions)

    args = ReasoningGRPOConfig(
        output_dir=os.path.join(out_dir, "run"),
        per_device_train_batch_size=4,
        max_completion_length=6,
        max_steps=2,
        learning_rate=1e-2,
        **COMMON_ARGS,
    )
    trainer = ReasoningGRPOTrainer(
        model=model,
        reward_funcs=recording_reward,
        args=args,
        processing_class=tokenizer,
        train_dataset=generate_arithmetic(16, seed=0).select_columns(["prompt", "answer"]),
    )
    trainer.train()
    rank = trainer.accelerator.process_index
    report = {
        "world_size": trainer.accelerator.num_processes,
        "initial_weights_sha256": initial_sha256,
        "weights_sha256": weights_sha256(trainer.model),
        "prompts": seen,
        "prefill_rows_saved": [
            h.get("generation/prefill_rows_saved") for h in trainer.state.log_history if "loss" in h
        ],
    }
    atomic_write_json(os.path.join(out_dir, f"rank{rank}.json"), report)


class ScriptedRollout:
    """Completions fixed by the prompt and the copy's place in its group (lengths 2 to 7), instead of sampled."""

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        completions = []
        for row, ids in enumerate(prompt_ids):
            copy = row % num_generations  # each process holds whole groups here, in order
            length = 2 + (3 * copy + len(ids)) % 6
            completions.append([(31 * sum(ids) + 17 * copy + 7 * j) % 300 + 3 for j in range(length)])
        return completions, None


class ScriptedReasoningGRPOTrainer(ScriptedRollout, ReasoningGRPOTrainer):
    pass


class ScriptedGRPOTrainer(ScriptedRollout, GRPOTrainer):
    pass


class GradientsBeforeTheStep(TrainerCallback):
    def __init__(self):
        self.grads = {}

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def loss_forward_runs(out_dir: str, tokenizer, family: str) -> None:
    rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    base = os.path.join(out_dir, f"base_{family}_rank{rank}")  # the reference model loads from a path
    {"meta_attention": tiny_meta_attention, "crsm": tiny_crsm}[family](tokenizer).save_pretrained(base)
    shared = {}
    for name, cls, config_cls in [
        ("ours", ScriptedReasoningGRPOTrainer, ReasoningGRPOConfig),
        ("stock", ScriptedGRPOTrainer, GRPOConfig),
    ]:
        for gradient_checkpointing in (True, False):
            tag = f"{family}_{name}_{'gc' if gradient_checkpointing else 'no_gc'}"
            args = config_cls(
                output_dir=os.path.join(out_dir, tag),
                per_device_train_batch_size=8 // world_size,
                max_completion_length=8,
                max_steps=1,
                beta=0.04,
                learning_rate=1e-3,
                max_grad_norm=0.0,
                gradient_checkpointing=gradient_checkpointing,
                # CRSM's value head, dynamics and state-delta modules get no gradient from the LM loss; with
                # checkpointing transformers tells DDP there are none unused, and DDP then leaves the buckets
                # that hold them unreduced (stock and ours alike)
                ddp_find_unused_parameters=True if family == "crsm" else None,
                **COMMON_ARGS,
            )
            grads = GradientsBeforeTheStep()
            trainer = cls(
                model=base,
                reward_funcs=length_reward,
                args=args,
                processing_class=tokenizer,
                train_dataset=generate_arithmetic(16, seed=0).select_columns(["prompt", "answer"]),
                callbacks=[grads],
            )
            trainer.train()
            if rank == 0:
                save_safetensors_atomic(grads.grads, os.path.join(out_dir, f"grads_{tag}.safetensors"))
            shared[tag] = [h.get("loss_forward/prompt_rows_saved") for h in trainer.state.log_history if "loss" in h]
    atomic_write_json(os.path.join(out_dir, f"shared_{family}_rank{rank}.json"), shared)


def main(out_dir: str) -> None:
    tokenizer = build_tokenizer(vocab_size=320)
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        sampled_generation_run(out_dir, tokenizer)
    for family in ("meta_attention", "crsm"):
        loss_forward_runs(out_dir, tokenizer, family)


if __name__ == "__main__":
    main(sys.argv[1])
    end_distributed()
