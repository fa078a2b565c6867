"""Tiny models of each LM family and left-padded prompt groups for the GRPO tests."""

import torch
from transformers import GPT2Config, GPT2LMHeadModel


def tiny_gpt2(tokenizer, seed=0):
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=128,
        n_embd=32,
        n_layer=2,
        n_head=2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return GPT2LMHeadModel(config).eval()


def tiny_meta_attention(tokenizer, seed=0):
    from hf_reason import MetaAttentionConfig, MetaAttentionForCausalLM

    torch.manual_seed(seed)
    config = MetaAttentionConfig(
        vocab_size=len(tokenizer),
        n_positions=128,
        n_embd=32,
        n_layer=2,
        n_head=2,
        meta_top_k=3,
        meta_hidden_size=16,
        meta_num_heads=2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    return MetaAttentionForCausalLM(config).eval()


def tiny_crsm(tokenizer, seed=0):
    from hf_reason import CRSMConfig, CRSMForCausalLM

    torch.manual_seed(seed)
    config = CRSMConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        state_size=8,
        num_hidden_layers=1,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    return CRSMForCausalLM(config).eval()


TINY_MODELS = {"gpt2": tiny_gpt2, "meta_attention": tiny_meta_attention, "crsm": tiny_crsm}


def left_padded_groups(tokenizer, group_size):
    prompts = ["Q: 3 + 4 * 2 = ?\nA:", "Q: 7 = ?\nA:", "Q: 12 * 3 - 5 + 19 * 2 = ?\nA:"]
    ids = [tokenizer(p)["input_ids"] for p in prompts for _ in range(group_size)]
    width = max(map(len, ids))
    assert len({len(i) for i in ids}) == 3  # mixed lengths, so the padding is exercised
    input_ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(i)) + i for i in ids])
    mask = torch.tensor([[0] * (width - len(i)) + [1] * len(i) for i in ids])
    return ids, input_ids, mask
