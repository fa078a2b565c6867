"""A stock `trl.GRPOTrainer` trains a tiny CRSM (real trainer, real generation, exact rewards)."""

import pytest
import torch

from hf_reason import CRSMConfig, CRSMForCausalLM
from hf_reason.data import build_tokenizer, generate_arithmetic, is_correct


def correctness_reward(prompts, completions, answer, **kwargs) -> list[float]:
    return [1.0 if is_correct(completion, gold) else 0.0 for completion, gold in zip(completions, answer)]


def length_reward(prompts, completions, **kwargs) -> list[float]:
    # dense enough that the group advantages are not all zero for an untrained model
    return [-len(completion) / 100.0 for completion in completions]


@pytest.mark.slow
def test_stock_grpo_trainer_runs_two_steps_on_crsm(tmp_path):
    from trl import GRPOConfig, GRPOTrainer

    data = generate_arithmetic(16, max_ops=1, max_value=9, seed=0)
    tokenizer = build_tokenizer(vocab_size=300, texts=[p + c for p, c in zip(data["prompt"], data["completion"])])
    torch.manual_seed(0)
    model = CRSMForCausalLM(
        CRSMConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            state_size=8,
            num_hidden_layers=1,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=tokenizer.bos_token_id,
        )
    )
    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        max_steps=2,
        learning_rate=1e-2,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=0,
        dataloader_num_workers=0,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[correctness_reward, length_reward],
        args=args,
        train_dataset=data.select_columns(["prompt", "answer"]),
        processing_class=tokenizer,
    )
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer.train()
    assert trainer.state.global_step == 2
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logged) == 2 and all(torch.isfinite(torch.tensor(e["loss"])) for e in logged)
    changed = [n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])]
    assert any(n.startswith("backbone.layers.0.mixer") for n in changed)
