"""Stock `trl.GRPOTrainer` and `trl.DPOTrainer` run two steps on each of our text-generating model
families (CRSM, meta-attention), and refuse TRM, a grid solver that generates no text.

What TRL needs from a custom model: an `auto_map` on the config, `GenerationMixin`
and a generation config, gradient checkpointing (TRL turns it on by default; left on here), and
what cached generation needs. Each family is built tiny from its config, with a local tokenizer.
"""

import copy

import pytest
import torch
from datasets import Dataset
from trl import DPOConfig, DPOTrainer, GRPOConfig, GRPOTrainer

from hf_reason.data.arithmetic import generate_arithmetic
from hf_reason.data.text import build_tokenizer
from hf_reason.trainers.rewards import ArithmeticAnswerReward


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(vocab_size=320)


def crsm(tokenizer):
    from hf_reason import CRSMConfig, CRSMForCausalLM

    return CRSMForCausalLM(
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


def meta_attention(tokenizer):
    from hf_reason import MetaAttentionConfig, MetaAttentionForCausalLM

    return MetaAttentionForCausalLM(
        MetaAttentionConfig(
            vocab_size=len(tokenizer),
            n_positions=96,
            n_embd=32,
            n_layer=2,
            n_head=2,
            meta_top_k=3,
            meta_hidden_size=16,
            meta_num_heads=2,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=tokenizer.bos_token_id,
        )
    )


FAMILIES = {"crsm": crsm, "meta_attention": meta_attention}
COMMON = dict(
    max_steps=2,
    learning_rate=1e-2,
    logging_steps=1,
    save_strategy="no",
    report_to=[],
    use_cpu=True,
    bf16=False,
    seed=0,
    disable_tqdm=True,
    dataloader_num_workers=0,
)


def length_reward(prompts, completions, **kwargs):
    # varies within a group for an untrained model, so the advantages (and the update) are not all zero
    return [-len(c) / 100.0 for c in completions]


def _changed(model, before):
    return [n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])]


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_stock_grpo_two_steps(family, tokenizer, tmp_path):
    torch.manual_seed(0)
    model = FAMILIES[family](tokenizer)
    assert "auto_map" in model.config.to_dict()
    args = GRPOConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4, max_completion_length=6, **COMMON
    )
    data = generate_arithmetic(8, max_ops=1, seed=0).select_columns(["prompt", "answer"])
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[ArithmeticAnswerReward(), length_reward],
        args=args,
        train_dataset=data,
        processing_class=tokenizer,
    )
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer.train()
    assert trainer.state.global_step == 2
    assert args.gradient_checkpointing  # TRL's default, so the family supports it
    assert _changed(model, before)


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_stock_dpo_two_steps(family, tokenizer, tmp_path):
    torch.manual_seed(0)
    model = FAMILIES[family](tokenizer)
    data = generate_arithmetic(8, max_ops=1, seed=0)
    pairs = Dataset.from_dict(
        {
            "prompt": data["prompt"],
            "chosen": data["completion"],
            "rejected": [
                c.rsplit("####", 1)[0] + f"#### {int(a) + 1}" for c, a in zip(data["completion"], data["answer"])
            ],
        }
    )
    args = DPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, **COMMON)
    # an in-memory model has no Hub id to load a reference from, so the reference is given
    trainer = DPOTrainer(
        model=model, ref_model=copy.deepcopy(model), args=args, train_dataset=pairs, processing_class=tokenizer
    )
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer.train()
    assert trainer.state.global_step == 2
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    assert _changed(model, before)


@pytest.mark.parametrize("kind", ["grpo", "dpo"])
def test_stock_trl_refuses_trm_which_is_not_a_text_generator(kind, tokenizer, tmp_path):
    # TRM predicts every cell of a fixed-size grid in parallel from a recursive latent: no next-token
    # distribution, no `generate`, no completions, so GRPO / DPO (which sample and score token sequences by
    # causal log-probs) do not apply to it. Stock TRL finds out in __init__, before any step: it sets the
    # pad token on the model's generation config, which only a GenerationMixin model has.
    from conftest import tiny_trm_config
    from transformers import GenerationMixin

    from hf_reason import TRMForPuzzleSolving

    model = TRMForPuzzleSolving(tiny_trm_config())
    assert not isinstance(model, GenerationMixin) and not model.can_generate() and model.generation_config is None
    data = generate_arithmetic(4, max_ops=1, seed=0)
    with pytest.raises(AttributeError, match="pad_token_id"):
        if kind == "grpo":
            GRPOTrainer(
                model=model,
                reward_funcs=length_reward,
                processing_class=tokenizer,
                train_dataset=data.select_columns(["prompt", "answer"]),
                args=GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4, **COMMON),
            )
        else:
            pairs = Dataset.from_dict(
                {"prompt": data["prompt"], "chosen": data["completion"], "rejected": [" #### 0"] * len(data)}
            )
            DPOTrainer(
                model=model,
                ref_model=copy.deepcopy(model),
                processing_class=tokenizer,
                train_dataset=pairs,
                args=DPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=2, **COMMON),
            )
