"""Run under `accelerate launch` (2 processes): two ReasoningGRPOTrainer steps on a tiny GPT-2;
writes each rank's weight checksums (at init and after training), the prompts it generated for and
the logged metrics to JSON."""

import hashlib
import json
import os
import sys

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from hf_reason.data import build_tokenizer, generate_arithmetic
from hf_reason.distributed import end_distributed
from hf_reason.trainers import ReasoningGRPOConfig, ReasoningGRPOTrainer


def length_reward(prompts, completions, **kwargs):
    return [float(len(c)) for c in completions]


def weights_sha256(model) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def main(out_dir: str) -> None:
    tokenizer = build_tokenizer(vocab_size=320)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(tokenizer),
            n_positions=96,
            n_embd=32,
            n_layer=1,
            n_head=2,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=tokenizer.bos_token_id,
        )
    )
    initial_sha256 = weights_sha256(model)
    seen = []

    def recording_reward(prompts, completions, **kwargs):
        seen.extend(prompts)
        return length_reward(prompts, completions)

    args = ReasoningGRPOConfig(
        output_dir=os.path.join(out_dir, "run"),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=6,
        max_steps=2,
        learning_rate=1e-2,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        disable_tqdm=True,
        seed=0,
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
    path = os.path.join(out_dir, f"rank{rank}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(report, f)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main(sys.argv[1])
    end_distributed()
