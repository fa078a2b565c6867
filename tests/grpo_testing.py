"""Tiny models of each LM family, left-padded prompt groups and a GRPO trainer builder for the GRPO tests."""

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from hf_reason.data.arithmetic import generate_arithmetic


def leveled_arithmetic():
    """16 distinct arithmetic problems (`prompt`, `answer`, `num_ops`), 4 with each number of operators from 1 to 4:
    four difficulty buckets of 4 rows for a curriculum on `num_ops`."""
    from datasets import concatenate_datasets

    parts = [generate_arithmetic(4, min_ops=k, max_ops=k, seed=k) for k in (1, 2, 3, 4)]
    data = concatenate_datasets(parts).remove_columns(["completion"])
    assert len(set(data["prompt"])) == 16
    return data


def _token_ids(tokenizer) -> dict:
    """The config arguments every tiny model takes from the tokenizer."""
    return dict(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def _tiny_gpt2_shape(tokenizer) -> dict:
    """GPT-2 config arguments of the tiny models: 2 layers, 32 wide, no dropout, the tokenizer's ids."""
    dropout = dict(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return dict(n_positions=128, n_embd=32, n_layer=2, n_head=2, **dropout, **_token_ids(tokenizer))


def tiny_gpt2(tokenizer, seed=0):
    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(**_tiny_gpt2_shape(tokenizer))).eval()


def tiny_meta_attention(tokenizer, seed=0):
    from hf_reason import MetaAttentionConfig, MetaAttentionForCausalLM

    torch.manual_seed(seed)
    config = MetaAttentionConfig(meta_top_k=3, meta_hidden_size=16, meta_num_heads=2, **_tiny_gpt2_shape(tokenizer))
    return MetaAttentionForCausalLM(config).eval()


def _tiny_mamba_shape(tokenizer) -> dict:
    """Mamba config arguments of the tiny recurrent models: 2 layers, 32 wide, state 8, the tokenizer's ids."""
    return dict(hidden_size=32, state_size=8, num_hidden_layers=2, **_token_ids(tokenizer))


def tiny_crsm(tokenizer, seed=0):
    from hf_reason import CRSMConfig, CRSMForCausalLM

    torch.manual_seed(seed)
    return CRSMForCausalLM(CRSMConfig(**_tiny_mamba_shape(tokenizer))).eval()


def tiny_mamba(tokenizer, seed=0):
    from transformers import MambaConfig, MambaForCausalLM

    torch.manual_seed(seed)
    return MambaForCausalLM(MambaConfig(**_tiny_mamba_shape(tokenizer))).eval()


TINY_MODELS = {"gpt2": tiny_gpt2, "meta_attention": tiny_meta_attention, "crsm": tiny_crsm, "mamba": tiny_mamba}


def left_padded_groups(tokenizer, group_size):
    prompts = ["Q: 3 + 4 * 2 = ?\nA:", "Q: 7 = ?\nA:", "Q: 12 * 3 - 5 + 19 * 2 = ?\nA:"]
    ids = [tokenizer(p)["input_ids"] for p in prompts for _ in range(group_size)]
    width = max(map(len, ids))
    assert len({len(i) for i in ids}) == 3  # mixed lengths, so the padding is exercised
    input_ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(i)) + i for i in ids])
    mask = torch.tensor([[0] * (width - len(i)) + [1] * len(i) for i in ids])
    return ids, input_ids, mask


def text_length_reward(prompts, completions, **kwargs):
    # varies within a group from the first step (an untrained model never gets arithmetic right)
    return [float(len(c)) for c in completions]


def grpo_trainer(
    cls,
    config_cls,
    model,
    tokenizer,
    out_dir,
    reward_funcs=text_length_reward,
    peft_config=None,
    train_dataset=None,
    trainer_kwargs=None,
    **options,
):
    """A GRPO trainer (`cls` / `config_cls`: stock or ours) on 8 arithmetic prompts (or `train_dataset`): 8 rows per
    step (2 prompts x 4 completions of up to 8 tokens), float32 on CPU, seeded; `options` override the config's
    fields and `trainer_kwargs` are passed to the trainer (e.g. a mixin's own arguments)."""
    args = dict(
        output_dir=str(out_dir),
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=8,
        max_steps=1,
        learning_rate=1e-3,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        seed=7,
        disable_tqdm=True,
        bf16=False,
        use_cpu=True,
    )
    args.update(options)
    return cls(
        model=model,
        reward_funcs=reward_funcs,
        args=config_cls(**args),
        train_dataset=generate_arithmetic(8, seed=1).remove_columns(["completion"])
        if train_dataset is None
        else train_dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        **(trainer_kwargs or {}),
    )
