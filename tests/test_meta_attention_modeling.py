import copy
import json

import pytest
import torch
from model_tester import ModelTesterMixin
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    GPT2Config,
    GPT2LMHeadModel,
)

from hf_reason import (
    MetaAttentionConfig,
    MetaAttentionForCausalLM,
    MetaAttentionForSequenceScoring,
    MetaAttentionModel,
)
from hf_reason.models.meta_attention.configuration_meta_attention import META_ATTENTION_AUTO_MAP
from hf_reason.models.meta_attention.modeling_meta_attention import attention_summaries


GPT2_KWARGS = dict(vocab_size=96, n_positions=32, n_embd=32, n_layer=2, n_head=2, bos_token_id=1, eos_token_id=2)


def tiny_config(**overrides) -> MetaAttentionConfig:
    kwargs = dict(GPT2_KWARGS, meta_top_k=3, meta_hidden_size=16, meta_num_heads=2, pad_token_id=0)
    kwargs.update(overrides)
    return MetaAttentionConfig(**kwargs)


def make_model(seed: int = 0, gate: float = 0.0, attn_implementation: str = "sdpa", **overrides):
    torch.manual_seed(seed)
    model = MetaAttentionForCausalLM._from_config(tiny_config(**overrides), attn_implementation=attn_implementation)
    if model.transformer.meta is not None:
        with torch.no_grad():
            model.transformer.meta.gate.fill_(gate)
    return model.eval()


def meta_attention_family_outputs(model, inputs):
    return {"introspection": model.introspect(inputs["input_ids"], start=4, top_k=2).to_json()}


class TestMetaAttentionModelCommon(ModelTesterMixin):
    model_class = MetaAttentionForCausalLM
    base_model_class = MetaAttentionModel
    auto_classes = (AutoModelForCausalLM,)
    other_heads = {AutoModelForSequenceClassification: MetaAttentionForSequenceScoring}
    remote_code_files = frozenset(
        {"configuration_meta_attention.py", "modeling_meta_attention.py", "introspection.py"}
    )
    remote_auto_class = "AutoModelForCausalLM"
    config_variants = {
        "default": {},
        "detached_maps_early_injection": {"meta_detach_attention": False, "meta_inject_layer": 0},
    }
    is_causal_lm = True
    family_outputs = staticmethod(meta_attention_family_outputs)

    def get_config(self, **overrides):
        # An open gate, so the module's output reaches the logits; no dropout, so training is deterministic.
        dropout = dict(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, summary_first_dropout=0.0)
        return tiny_config(**{"meta_gate_init": 0.5, **dropout, **overrides})

    def prepare_inputs(self, config, batch_size=3, seed=0):
        ids = make_ids(batch=batch_size, seed=seed)
        return {"input_ids": ids, "labels": ids}


def make_ids(batch: int = 2, seq: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.randint(3, 96, (batch, seq), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    "kwargs,field",
    [
        (dict(meta_top_k=0), "meta_top_k"),
        (dict(meta_layers=[5]), "meta_layers"),
        (dict(meta_layers=[1], meta_inject_layer=0), "meta_layers"),
        (dict(meta_layers=[]), "meta_layers"),
        (dict(meta_inject_layer=2), "meta_inject_layer"),
        (dict(meta_features=["entropy", "attention_sink"]), "meta_features"),
        (dict(meta_hidden_size=10, meta_num_heads=3), "meta_hidden_size"),
        (dict(meta_gate_init=5.0), "meta_gate_init"),
        (dict(meta_detach_attention="yes"), "meta_detach_attention"),
        (dict(critic_loss="hinge"), "critic_loss"),
        (dict(use_meta_attention=1), "use_meta_attention"),
        (dict(n_embd=30, n_head=4), "n_embd"),
        (dict(add_cross_attention=True), "add_cross_attention"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        tiny_config(**kwargs)


def test_config_defaults_round_trip_and_auto_map(tmp_path):
    config = tiny_config(meta_inject_layer=-1, meta_features=["top_k_weights", "entropy"])
    assert config.auto_map == META_ATTENTION_AUTO_MAP  # before any save: TRL reads it
    assert config.meta_layers == [0, 1] and config.meta_inject_index == 1
    assert config.meta_features == ["entropy", "top_k_weights"]  # canonical order
    assert config.num_summary_features == 1 + 3
    assert config.hidden_size == 32 and config.num_hidden_layers == 2  # GPT-2 names for generic tooling
    config.save_pretrained(tmp_path)
    stored = json.loads((tmp_path / "config.json").read_text())
    assert stored["model_type"] == "meta_attention" and stored["n_embd"] == 32  # one flat dict
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, MetaAttentionConfig)
    assert loaded.to_diff_dict() == config.to_diff_dict()
    assert tiny_config(meta_inject_layer=0).meta_layers == [0]


def test_zero_gate_leaves_gpt2_logits_unchanged(tmp_path):
    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(**GPT2_KWARGS)).eval()
    ids = make_ids()
    expected = gpt2(ids).logits
    model = MetaAttentionForCausalLM.from_gpt2(gpt2, meta_top_k=2).eval()
    assert model.config.meta_top_k == 2 and model.config.n_layer == 2
    assert model.transformer.meta.gate.item() == 0.0
    # the meta layers run eager attention, GPT-2 ran SDPA: equal up to float rounding
    torch.testing.assert_close(model(ids).logits, expected, rtol=1e-5, atol=1e-5)
    # against an eager GPT-2 the same arithmetic runs: bit-identical
    gpt2.set_attn_implementation("eager")
    torch.testing.assert_close(model(ids).logits, gpt2(ids).logits, rtol=0, atol=0)
    # from a saved GPT-2 checkpoint too
    gpt2.save_pretrained(tmp_path / "gpt2")
    from_path = MetaAttentionForCausalLM.from_gpt2(tmp_path / "gpt2").eval()
    torch.testing.assert_close(from_path(ids).logits, expected, rtol=1e-5, atol=1e-5)
    assert from_path.lm_head.weight.data_ptr() == from_path.transformer.wte.weight.data_ptr()


def test_open_gate_changes_logits_and_closed_gate_still_learns():
    model = make_model()
    ids = make_ids()
    closed = model(ids).logits
    model.train()
    model(ids, labels=ids).loss.backward()
    assert model.transformer.meta.gate.grad.abs() > 0  # the module can switch itself on
    assert model.transformer.meta.q_proj.weight.grad.abs().sum() == 0  # silent until it does
    opened = make_model(gate=0.5)
    assert (opened(ids).logits - closed).abs().max() > 1e-3


def test_module_disabled_is_plain_gpt2_with_sdpa():
    model = make_model(use_meta_attention=False)
    assert model.transformer.meta is None
    assert all(block.attn.config._attn_implementation == "sdpa" for block in model.transformer.h)
    gpt2 = GPT2LMHeadModel._from_config(GPT2Config(**GPT2_KWARGS), attn_implementation="sdpa").eval()
    gpt2.load_state_dict(model.state_dict())
    ids = make_ids()
    torch.testing.assert_close(model(ids).logits, gpt2(ids).logits, rtol=0, atol=0)


def test_eager_only_where_maps_are_read():
    model = make_model(meta_layers=[0], meta_inject_layer=0, gate=0.3)
    assert [b.attn.config._attn_implementation for b in model.transformer.h] == ["eager", "sdpa"]
    ids = make_ids()
    out = model(ids)
    assert out.attentions is None
    with_maps = model(ids, output_attentions=True)
    assert all(a is not None and a.shape == (2, 2, 12, 12) for a in with_maps.attentions)
    # asking for maps switches every layer to eager for that call only
    assert [b.attn.config._attn_implementation for b in model.transformer.h] == ["eager", "sdpa"]
    torch.testing.assert_close(with_maps.logits, out.logits, rtol=1e-5, atol=1e-5)
    assert with_maps.meta_attentions.shape == (2, 2, 12, 2)  # 1 layer x 2 heads of slots
    torch.testing.assert_close(with_maps.meta_attentions.sum(-1), torch.ones(2, 2, 12))


def test_sdpa_and_eager_models_agree():
    sdpa = make_model(gate=0.4, attn_implementation="sdpa")
    eager = make_model(gate=0.4, attn_implementation="eager")
    ids = make_ids()
    torch.testing.assert_close(eager(ids).logits, sdpa(ids).logits, rtol=1e-5, atol=1e-5)


def test_introspect_agrees_with_output_attentions():
    model = make_model(gate=0.5)
    ids = make_ids(batch=2, seq=10)
    intro = model.introspect(ids, start=3, top_k=4)
    maps = torch.stack(model(ids, output_attentions=True).attentions, dim=1)  # (B, L, H, T, S)
    assert intro.positions.tolist() == list(range(3, 10))
    assert intro.weights.shape == (2, 7, 4)
    for b in range(2):
        for j, p in enumerate(intro.positions.tolist()):
            row = maps[b, :, :, p - 1, :]  # what the model looked at while writing position p
            for r in range(4):
                layer, head, key = (
                    int(intro.layers[b, j, r]),
                    int(intro.heads[b, j, r]),
                    int(intro.attended_positions[b, j, r]),
                )
                assert key <= p - 1  # causal
                torch.testing.assert_close(intro.weights[b, j, r], row[layer, head, key], rtol=1e-6, atol=1e-7)
                assert int(intro.attended_token_ids[b, j, r]) == int(ids[b, key])
            # the entries are the largest of the row, in order
            torch.testing.assert_close(intro.weights[b, j], row.flatten().topk(4).values, rtol=1e-6, atol=1e-7)
    records = intro.to_json(batch_index=1)
    assert json.loads(json.dumps(records)) == records  # plain JSON
    assert records[0]["position"] == 3 and records[0]["token"] == int(ids[1, 3])
    assert set(records[0]["attended"][0]) == {"token", "position", "layer", "head", "weight"}
    only_last = model.introspect(ids, start=9, top_k=2, layers=[1])
    assert only_last.layers.unique().tolist() == [1]
    with pytest.raises(ValueError, match="start"):
        model.introspect(ids, start=0)
    with pytest.raises(ValueError, match="top_k"):
        model.introspect(ids, top_k=0)


def test_introspect_skips_padding_and_decodes_tokens():
    model = make_model(gate=0.5)
    ids = make_ids(batch=2, seq=8)
    mask = torch.ones_like(ids)
    mask[0, :3] = 0
    ids[0, :3] = 0
    intro = model.introspect(ids, attention_mask=mask, start=1, top_k=2)
    assert intro.valid[0].tolist() == [False, False, False] + [True] * 4
    assert intro.valid[1].all()
    # padding is never attended
    assert (intro.attended_positions[0][intro.valid[0]] >= 3).all()

    class Decoder:
        def decode(self, token_ids):
            return f"<{token_ids[0]}>"

    records = intro.to_json(tokenizer=Decoder())
    assert [r["position"] for r in records] == [4, 5, 6, 7]
    assert records[0]["token"] == f"<{int(ids[0, 4])}>"


def test_kv_cache_decoding_equals_full_forward():
    model = make_model(gate=0.5)
    ids = make_ids(seq=12)
    full = model(ids).logits
    out = model(ids[:, :5], use_cache=True)
    steps, cache = [out.logits], out.past_key_values
    assert cache.get_seq_length() == 5
    for t in range(5, 12):
        out = model(ids[:, t : t + 1], past_key_values=cache, use_cache=True)
        cache = out.past_key_values
        steps.append(out.logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-5, atol=1e-5)


def test_generate_greedy_matches_manual_decoding_and_left_padding():
    model = make_model(gate=0.5)
    prompt = make_ids(batch=1, seq=5)
    generated = model.generate(
        prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=6, do_sample=False, pad_token_id=0
    )
    manual = prompt
    for _ in range(6):
        manual = torch.cat([manual, model(manual).logits[:, -1:].argmax(-1)], dim=1)
    assert generated.tolist() == manual.tolist()
    # the same prompt left-padded in a batch gives the same continuation (summaries ignore padding)
    other = make_ids(batch=1, seq=8, seed=3)
    batch = torch.cat([torch.cat([torch.zeros(1, 3, dtype=torch.long), prompt], 1), other])
    mask = (torch.arange(8)[None] >= torch.tensor([[3], [0]])).long()
    batched = model.generate(batch, attention_mask=mask, max_new_tokens=6, do_sample=False, pad_token_id=0)
    assert batched[0, 8:].tolist() == generated[0, 5:].tolist()


def test_logits_to_keep_and_loss():
    model = make_model(gate=0.5)
    ids = make_ids()
    full = model(ids, labels=ids)
    last = model(ids, logits_to_keep=1)
    assert last.logits.shape == (2, 1, 96)
    torch.testing.assert_close(last.logits, full.logits[:, -1:], rtol=1e-6, atol=1e-6)
    manual = torch.nn.functional.cross_entropy(full.logits[:, :-1].reshape(-1, 96), ids[:, 1:].reshape(-1))
    torch.testing.assert_close(full.loss, manual, rtol=1e-5, atol=1e-6)


def test_detached_maps_keep_the_lm_loss_from_reshaping_attention():
    ids = make_ids()
    for detach in (True, False):
        model = make_model(gate=0.5, meta_detach_attention=detach).train()
        seen = []
        model.transformer.meta.register_forward_pre_hook(lambda module, args, seen=seen: seen.append(args[1]))
        model(ids, labels=ids).loss.backward()
        # summaries carry a graph back into the attention maps only when not detached
        assert seen[0].requires_grad is (not detach)


def test_attention_summaries_by_hand():
    # one batch, one head, two queries over three keys
    probs = torch.tensor([[[[1.0, 0.0, 0.0], [0.5, 0.25, 0.25]]]])  # (1, 1, 2, 3)
    query_index = torch.tensor([1, 2])  # keys 0..1 and 0..2 visible
    visible = torch.tensor([[2, 3]])
    out = attention_summaries(
        probs, visible, query_index, top_k=2, features=["entropy", "top_k_weights", "top_k_distances", "mean_distance"]
    )
    assert out.shape == (1, 2, 1, 6)
    first, second = out[0, 0, 0], out[0, 1, 0]
    torch.testing.assert_close(first, torch.tensor([0.0, 1.0, 0.0, 1 / 2, 0.0, 1 / 2]))
    entropy = -(0.5 * torch.log(torch.tensor(0.5)) + 2 * 0.25 * torch.log(torch.tensor(0.25))) / torch.log(
        torch.tensor(3.0)
    )
    torch.testing.assert_close(second[0], entropy)
    torch.testing.assert_close(second[1:3], torch.tensor([0.5, 0.25]))
    assert second[3].item() == pytest.approx(2 / 3)  # key 0 is two positions back, over 3 visible
    assert second[4].item() in (pytest.approx(1 / 3), pytest.approx(0.0))  # a tie between keys 1 and 2
    assert second[5].item() == pytest.approx((0.5 * 2 + 0.25 * 1) / 3)
    # fewer keys than top_k: padded with zero weight and zero distance
    short = attention_summaries(
        probs[..., :1, :1],
        torch.tensor([[1]]),
        torch.tensor([0]),
        top_k=3,
        features=["top_k_weights", "top_k_distances"],
    )
    torch.testing.assert_close(short[0, 0, 0], torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0, 0.0]))


def test_blocks_are_gpt2_blocks_and_no_split():
    from transformers.models.gpt2.modeling_gpt2 import GPT2Block

    model = make_model()
    assert all(isinstance(block, GPT2Block) for block in model.transformer.h)
    assert model._no_split_modules == ["GPT2Block"] and model.supports_gradient_checkpointing
    copied = copy.deepcopy(model)  # TRL builds reference models this way
    ids = make_ids()
    torch.testing.assert_close(copied(ids).logits, model(ids).logits, rtol=0, atol=0)
    assert copied.transformer.h[0].attn.config._config is copied.config


def test_left_padded_batch_matches_single_examples():
    model = make_model(gate=0.5)
    first, second = make_ids(batch=1, seq=7, seed=1), make_ids(batch=1, seq=10, seed=2)
    batch = torch.cat([torch.cat([torch.zeros(1, 3, dtype=torch.long), first], 1), second])
    mask = (torch.arange(10)[None] >= torch.tensor([[3], [0]])).long()
    out = model(batch, attention_mask=mask).logits
    torch.testing.assert_close(out[0, 3:], model(first).logits[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out[1], model(second).logits[0], rtol=1e-5, atol=1e-5)
