import queue
import threading

import pytest
import torch
from model_tester import ModelTesterMixin
from transformers import AutoModelForCausalLM, MambaConfig, MambaForCausalLM
from transformers.generation.streamers import BaseStreamer

from hf_reason import (
    CRSMCache,
    CRSMConfig,
    CRSMDeliberationConfig,
    CRSMDeliberationOutput,
    CRSMForCausalLM,
    CRSMModel,
)


def tiny_crsm_config(**overrides) -> CRSMConfig:
    kwargs = dict(
        vocab_size=64,
        hidden_size=32,
        state_size=8,
        num_hidden_layers=2,
        eos_token_id=1,
        pad_token_id=2,
        bos_token_id=0,
    )
    kwargs.update(overrides)
    return CRSMConfig(**kwargs)


def make_model(seed=0, **overrides) -> CRSMForCausalLM:
    torch.manual_seed(seed)
    return CRSMForCausalLM(tiny_crsm_config(**overrides)).eval()


def crsm_family_outputs(model, inputs):
    ids = inputs["input_ids"][:1, :5]
    return {
        "greedy": model.generate(ids, max_new_tokens=4, do_sample=False),
        "searched": model.generate(ids, deliberation="mcts", num_simulations=6, max_new_tokens=4),
    }


class TestCRSMModelCommon(ModelTesterMixin):
    model_class = CRSMForCausalLM
    base_model_class = CRSMModel
    auto_classes = (AutoModelForCausalLM,)
    remote_code_files = frozenset({"configuration_crsm.py", "modeling_crsm.py", "mcts.py", "cache_crsm.py"})
    remote_auto_class = "AutoModelForCausalLM"
    config_variants = {"default": {}, "gated_aggregator": {"aggregator": "gated"}}
    is_causal_lm = True
    batch_tolerance = (1e-5, 1e-6)
    reload_tolerance = (1e-6, 1e-9)  # the value head's pooling sums in another order on unaligned weights
    inference_only_inputs = ("return_value",)
    float32_parameters = ("A_log",)
    family_outputs = staticmethod(crsm_family_outputs)

    def get_config(self, **overrides):
        return tiny_crsm_config(**overrides)

    def prepare_inputs(self, config, batch_size=3, seed=0):
        ids = make_ids(batch=batch_size, seed=seed + 1)
        return {"input_ids": ids, "labels": ids, "return_value": True}

    def outputs_to_compare(self, output):
        return {"logits": output["logits"], "value": output["value"]}


def make_ids(batch=2, length=7, seed=1, vocab=64):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, vocab, (batch, length), generator=g)


def step(model, cache, token):
    """One cached decode step (any position >= conv_kernel - 1 selects Mamba's decode path)."""
    position = torch.tensor([model.config.conv_kernel])
    return model(input_ids=token.view(-1, 1), cache_params=cache, cache_position=position, use_cache=True).logits[
        :, -1
    ]


@pytest.mark.parametrize(
    "field, value",
    [
        ("hidden_size", 0),
        ("aggregator", "mean"),
        ("delta_damping", 1.5),
        ("delta_scale", 0.0),
        ("conv_kernel", 1),
        ("time_step_rank", "big"),
        ("eos_token_id", 64),
        ("hidden_act", "nope"),
        ("use_mambapy", "yes"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"`{field}`"):
        tiny_crsm_config(**{field: value})


def test_config_round_trips_and_has_auto_map(tmp_path):
    config = tiny_crsm_config(aggregator="gated", delta_damping=0.25)
    assert config.auto_map["AutoModelForCausalLM"] == "modeling_crsm.CRSMForCausalLM"
    assert config.intermediate_size == 64 and config.time_step_rank == 2
    config.save_pretrained(tmp_path)
    again = CRSMConfig.from_pretrained(tmp_path)
    assert again.to_dict() == config.to_dict()


def test_backbone_matches_transformers_mamba_weight_for_weight():
    model = make_model()
    mamba_config = MambaConfig(
        vocab_size=64,
        hidden_size=32,
        state_size=8,
        num_hidden_layers=2,
        expand=2,
        conv_kernel=4,
        time_step_rank=2,
        layer_norm_epsilon=1e-5,
    )
    mamba = MambaForCausalLM(mamba_config).eval()
    own = {k: v for k, v in model.state_dict().items() if k.startswith(("backbone.", "lm_head."))}
    missing, unexpected = mamba.load_state_dict({k: v for k, v in own.items() if "aggregator" not in k}, strict=False)
    assert not missing and not unexpected
    ids = make_ids()
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, mamba(ids).logits, rtol=0, atol=0)


def test_heads_shapes_bounds_and_gradients():
    model = make_model().train()
    ids = make_ids(batch=3)
    out = model(ids, labels=ids, return_value=True)
    S, L = model.config.summary_size, model.config.num_hidden_layers
    assert out.logits.shape == (3, 7, 64)
    assert out.state_summary.shape == (3, S) and out.value.shape == (3,)
    assert out.layer_weights.shape == (3, L)
    torch.testing.assert_close(out.layer_weights.sum(-1), torch.ones(3))
    next_summary = model.predict_next_summary(out.state_summary, ids[:, 0])
    assert next_summary.shape == (3, S)
    correction = model.state_delta(out.state_summary)
    assert correction.shape == (3, L, model.config.intermediate_size, model.config.state_size)
    assert correction.abs().max() == 0  # exactly zero at init: never disturbs a trained backbone
    loss = out.loss + out.value.square().mean() + next_summary.square().mean() + correction.sum()
    loss.backward()
    for name in (
        "value_head.mlp.0.weight",
        "dynamics.mlp.0.weight",
        "dynamics.token_embedding.weight",
        "backbone.aggregator.state_weights",
        "backbone.aggregator.query",
        "state_delta.state.weight",
        "backbone.layers.0.mixer.in_proj.weight",
    ):
        grad = model.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name
    # once trained away from zero, the correction stays inside (-delta_scale, delta_scale)
    with torch.no_grad():
        model.state_delta.state.weight.normal_(std=50.0)
    big = model.state_delta(out.state_summary.detach())
    assert 0 < big.abs().max() <= model.config.delta_scale


def test_gated_aggregator_is_not_a_mean():
    model = make_model(aggregator="gated")
    out = model(make_ids(), return_value=True)
    with torch.no_grad():
        model.backbone.aggregator.gate.weight.normal_(std=1.0)
    weights = model(make_ids(), return_value=True).layer_weights
    torch.testing.assert_close(weights.sum(-1), torch.ones(2))
    assert not torch.allclose(weights, torch.full_like(weights, 0.5))
    assert out.value.shape == (2,)


def test_cache_snapshot_restore_is_exact():
    model = make_model()
    ids = make_ids(batch=2, length=6)
    with torch.no_grad():
        out = model(ids, use_cache=True)
        cache = out.cache_params
        assert isinstance(cache, CRSMCache) and cache.ssm_states[0].dtype == torch.float32
        saved = cache.snapshot()
        tokens = [torch.tensor([5, 9]), torch.tensor([11, 3]), torch.tensor([7, 7])]
        reference = [step(model, cache, t) for t in tokens]
        # a branch: different tokens from the same state
        step(model, cache, torch.tensor([40, 41]))
        step(model, cache, torch.tensor([42, 43]))
        cache.restore(saved)
        replay = [step(model, cache, t) for t in tokens]
        for a, b in zip(reference, replay):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        # a batch of branches filled from one saved row equals separate steps from that row
        row = saved.index_select(torch.tensor([1, 1, 1]))
        branched = CRSMCache.from_state(model.config, row)
        batched = step(model, branched, torch.tensor([3, 11, 20]))
        for i, token in enumerate([3, 11, 20]):
            single = CRSMCache.from_state(model.config, saved.index_select(torch.tensor([1])))
            torch.testing.assert_close(
                batched[i : i + 1], step(model, single, torch.tensor([token])), rtol=1e-5, atol=1e-6
            )
        with pytest.raises(ValueError, match="batch size"):
            cache.restore(row)


def test_cached_decoding_matches_full_forward():
    model = make_model()
    ids = make_ids(batch=2, length=9)
    with torch.no_grad():
        full = model(ids).logits
        out = model(ids[:, :5], use_cache=True)
        cache = out.cache_params
        logits = [out.logits[:, -1]] + [step(model, cache, ids[:, t]) for t in range(5, 9)]
    torch.testing.assert_close(torch.stack(logits, 1), full[:, 4:], rtol=1e-4, atol=1e-5)


def test_generate_without_deliberation_is_plain_greedy():
    model = make_model()
    ids = make_ids(batch=2, length=5)
    out = model.generate(ids, max_new_tokens=6, do_sample=False)
    assert out.shape == (2, 11)
    with torch.no_grad():  # greedy by hand with full forwards
        seq = ids
        for _ in range(6):
            seq = torch.cat([seq, model(seq).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out, seq)
    sampled = model.generate(ids, max_new_tokens=4, do_sample=True, top_k=5)
    assert sampled.shape == (2, 9)


def test_mcts_with_one_simulation_equals_greedy():
    model = make_model(seed=3)
    ids = make_ids(batch=3, length=6, seed=4)
    greedy = model.generate(ids, max_new_tokens=8, do_sample=False)
    for leaf_batch_size in (1, 8):
        searched = model.generate(
            ids, deliberation="mcts", num_simulations=1, max_new_tokens=8, leaf_batch_size=leaf_batch_size
        )
        assert torch.equal(searched, greedy)


class QueueStreamer(BaseStreamer):
    """transformers' streamer interface over a queue (TextIteratorStreamer without the text)."""

    def __init__(self):
        self.queue = queue.Queue()

    def put(self, value):
        self.queue.put(value.reshape(-1).tolist())

    def end(self):
        self.queue.put(None)


def test_mcts_streams_each_token_while_the_search_goes_on_in_a_thread():
    model = make_model(seed=3)
    ids = make_ids(batch=1, length=5, seed=4)
    kwargs = dict(deliberation="mcts", num_simulations=4, max_new_tokens=6)
    expected = model.generate(ids, **kwargs)
    streamer = QueueStreamer()
    thread = threading.Thread(target=model.generate, args=(ids,), kwargs={**kwargs, "streamer": streamer})
    thread.start()
    assert streamer.queue.get(timeout=60) == ids[0].tolist()  # the prompt first, as in transformers
    first = streamer.queue.get(timeout=60)
    # The consumer is still busy with the first token: the search for the rest goes on without it.
    thread.join(timeout=60)
    assert not thread.is_alive()
    rest = []
    while (item := streamer.queue.get(timeout=1)) is not None:
        rest.extend(item)
    assert first + rest == expected[0, ids.shape[1] :].tolist()
    # the inline mode (the consumer inside `put`, no thread) hands over the very same tokens
    inline = QueueStreamer()
    model.generate(ids, **kwargs, streamer=inline)
    assert inline.queue.get() == ids[0].tolist()
    inline_tokens = []
    while (item := inline.queue.get(timeout=1)) is not None:
        inline_tokens.extend(item)
    assert inline_tokens == first + rest
    with pytest.raises(ValueError, match="streamer"):
        model.generate(make_ids(batch=2), deliberation="mcts", max_new_tokens=2, streamer=QueueStreamer())


def test_mcts_statistics_and_rollouts():
    model = make_model(seed=5)
    ids = make_ids(batch=2, length=5, seed=6)
    for rollout in ("value", "dynamics", "model"):
        out = model.generate(
            ids,
            deliberation="mcts",
            num_simulations=10,
            top_k_expansion=4,
            rollout=rollout,
            rollout_depth=2,
            leaf_batch_size=3,
            max_new_tokens=3,
            return_dict_in_generate=True,
        )
        assert isinstance(out, CRSMDeliberationOutput)
        assert out.sequences.shape == (2, 8)
        assert out.chosen_visit_counts.shape == (2, 3) and (out.chosen_visit_counts >= 1).all()
        assert torch.isfinite(out.chosen_values).all()
        for b, row in enumerate(out.search_stats):
            assert len(row) == 3
            for t, entry in enumerate(row):
                visits = [c[1] for c in entry["children"]]
                assert len(entry["children"]) <= 4
                assert entry["visits"] == max(visits) == out.chosen_visit_counts[b, t]
                assert out.sequences[b, 5 + t] == entry["token"]
            # a fresh root receives exactly num_simulations visits among its children
            assert sum(c[1] for c in row[0]["children"]) == 10


def delta_model(seed=7, **overrides):
    """A model whose state delta is far from its zero init, so corrections change what it decodes."""
    model = make_model(seed=seed, **{"delta_damping": 1.0, "delta_scale": 5.0, **overrides})
    with torch.no_grad():
        model.state_delta.state.weight.normal_(std=1.0, generator=torch.Generator().manual_seed(seed))
    return model


@torch.no_grad()
def greedy_with_corrections(model, ids, new_tokens: int, every_token: bool):
    """Greedy decoding by hand, with the prompt state corrected once (as train_crsm.py's stage 4
    trains it) and, with `every_token`, the state after every later token too. Returns the tokens,
    the value head's estimate of the corrected prompt state, and of the state after each token."""
    out = model(ids, use_cache=True)
    cache = out.cache_params
    model.apply_state_delta(cache)
    root_value = float(model.predict_value(model.summarize(cache)[0])[0])
    tokens, values = [int(out.logits[0, -1].argmax())], []  # the prompt's logits come before the correction
    for _ in range(new_tokens):
        logits = step(model, cache, torch.tensor([tokens[-1]]))
        values.append(float(model.predict_value(model.summarize(cache)[0])[0]))
        if every_token:
            model.apply_state_delta(cache)
        tokens.append(int(logits[0].argmax()))
    return tokens[:new_tokens], root_value, values


@pytest.mark.parametrize("mode", ["prompt", "token"])
def test_mcts_state_delta_matches_greedy_decoding_with_the_same_corrections(mode):
    model = delta_model()
    with torch.no_grad():
        model.value_head.mlp[2].weight.normal_(std=1.0, generator=torch.Generator().manual_seed(0))
    ids = make_ids(batch=1, length=5, seed=8)
    kwargs = dict(
        deliberation="mcts", num_simulations=1, max_new_tokens=8, eos_token_id=None, return_dict_in_generate=True
    )
    tokens, root_value, values = greedy_with_corrections(model, ids, 8, every_token=mode == "token")
    out = model.generate(ids, apply_state_delta=mode, **kwargs)
    assert out.sequences[0, 5:].tolist() == tokens
    assert out.root_values[0, 0].item() == pytest.approx(root_value, abs=1e-6)
    # one simulation: the committed token's value is its leaf's, the state right after it
    torch.testing.assert_close(out.chosen_values[0], torch.tensor(values), rtol=1e-5, atol=1e-6)
    plain = model.generate(ids, **kwargs)
    assert not torch.allclose(plain.chosen_values[0], out.chosen_values[0], atol=1e-3)  # the corrections matter
    other = greedy_with_corrections(model, ids, 8, every_token=mode != "token")[2]
    assert not torch.allclose(torch.tensor(other), out.chosen_values[0], atol=1e-3)  # and so does the mode
    if mode == "prompt":  # True means "prompt": one correction, as trained
        assert torch.equal(model.generate(ids, apply_state_delta=True, **kwargs).chosen_values, out.chosen_values)


def test_mcts_state_delta_keeps_the_search_statistics_and_stops_at_eos():
    model = delta_model()
    ids = make_ids(batch=1, length=5, seed=8)
    kwargs = dict(deliberation="mcts", num_simulations=4, max_new_tokens=12, return_dict_in_generate=True)
    plain = model.generate(ids, **kwargs)
    for mode in ("prompt", "token"):
        corrected = model.generate(ids, apply_state_delta=mode, **kwargs)
        assert plain.sequences.shape == corrected.sequences.shape == (1, 17)
        # every search starts from a corrected state, the first one included
        assert not torch.allclose(plain.root_values[0], corrected.root_values[0])
        if mode == "token":  # each root is a fresh search from its corrected state
            assert all(sum(c[1] for c in entry["children"]) == 4 for entry in corrected.search_stats[0])
    # a token that the model commits to at step 1 is treated as end of sequence
    first = int(plain.sequences[0, 5])
    stopped = model.generate(ids, deliberation="mcts", num_simulations=4, max_new_tokens=12, eos_token_id=first)
    assert stopped.shape == (1, 6)
    with pytest.raises(ValueError, match="apply_state_delta"):
        model.generate(ids, deliberation="mcts", max_new_tokens=2, apply_state_delta="always")


def test_state_delta_damping_scales_the_applied_correction():
    model = delta_model(delta_damping=0.5, delta_scale=0.5)
    ids = make_ids(batch=2, length=6)
    with torch.no_grad():
        model.state_delta.channel.weight.normal_(std=1.0, generator=torch.Generator().manual_seed(1))
        cache = model(ids, use_cache=True).cache_params
        before = cache.snapshot()
        correction = model.apply_state_delta(cache)
        assert 0.05 < correction.abs().max() <= 0.5  # a real correction, inside the delta_scale bound
        for i, state in enumerate(cache.ssm_states):
            torch.testing.assert_close(state - before.ssm_states[i], 0.5 * correction[:, i], rtol=1e-5, atol=1e-6)
        model.config.delta_damping = 0.0
        cache.restore(before)
        model.apply_state_delta(cache)
        for i, state in enumerate(cache.ssm_states):
            assert torch.equal(state, before.ssm_states[i])
    # with no damping left, generation with the delta "on" is generation without it
    kwargs = dict(deliberation="mcts", num_simulations=3, max_new_tokens=5, return_dict_in_generate=True)
    on, off = model.generate(ids[:1], apply_state_delta="token", **kwargs), model.generate(ids[:1], **kwargs)
    assert torch.equal(on.sequences, off.sequences)
    # (up to float rounding: "token" re-evaluates each root alone, the plain search kept the value
    # its leaf got in a batch)
    torch.testing.assert_close(on.root_values, off.root_values, rtol=1e-5, atol=1e-7)


def rollout_model(seed=5):
    """Value head and dynamics far from their small init, so every rollout gives a distinct value."""
    model = make_model(seed=seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in [*model.value_head.parameters(), *model.dynamics.parameters()]:
            p.normal_(std=0.5, generator=g)
    return model


def leaf_value(model, ids, **kwargs) -> float:
    """With one simulation the only leaf is the greedy token; its value is the committed Q."""
    out = model.generate(
        ids, deliberation="mcts", num_simulations=1, max_new_tokens=1, return_dict_in_generate=True, **kwargs
    )
    return out.chosen_values[0, 0].item()


def test_only_the_dynamics_rollout_reads_the_dynamics_model():
    model = rollout_model()
    ids = make_ids(batch=1, length=5, seed=6)
    kwargs = dict(rollout_depth=2, top_k_expansion=4)
    before = {r: leaf_value(model, ids, rollout=r, **kwargs) for r in ("value", "dynamics", "model")}
    with torch.no_grad():
        for p in model.dynamics.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    after = {r: leaf_value(model, ids, rollout=r, **kwargs) for r in ("value", "dynamics", "model")}
    assert after["value"] == before["value"] and after["model"] == before["model"]
    assert abs(after["dynamics"] - before["dynamics"]) > 1e-3
    assert len(set(before.values())) == 3  # three different leaf evaluations


@pytest.mark.parametrize("depth", [1, 3])
def test_model_rollout_values_the_state_after_depth_greedy_steps(depth):
    model = rollout_model()
    ids = make_ids(batch=1, length=5, seed=6)
    with torch.no_grad():
        seq = torch.cat([ids, model(ids).logits[:, -1].argmax(-1, keepdim=True)], 1)  # the leaf's token
        for _ in range(depth):
            seq = torch.cat([seq, model(seq).logits[:, -1].argmax(-1, keepdim=True)], 1)
        expected = model(seq, return_value=True).value.item()
    assert leaf_value(model, ids, rollout="model", rollout_depth=depth) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("depth", [1, 2])
def test_dynamics_rollout_matches_a_hand_computed_latent_rollout(depth):
    model = rollout_model()
    ids = make_ids(batch=1, length=5, seed=6)
    k = 3
    with torch.no_grad():
        leaf = torch.cat([ids, model(ids).logits[:, -1].argmax(-1, keepdim=True)], 1)
        out = model(leaf, return_value=True)
        probs = out.logits[0, -1].softmax(-1)
        candidates = probs.topk(k).indices.tolist()
        value = lambda s: model.predict_value(s).item()  # noqa: E731
        nxt = lambda s, a: model.predict_next_summary(s, torch.tensor([a]))  # noqa: E731
        total = 0.0
        for a in candidates:
            s = nxt(out.state_summary, a)
            for _ in range(depth - 1):  # each further step: the candidate the value head rates best
                s = max((nxt(s, b) for b in candidates), key=value)
            total += probs[a].item() * value(s)
        expected = total / probs[candidates].sum().item()
    got = leaf_value(model, ids, rollout="dynamics", rollout_depth=depth, top_k_expansion=k)
    assert got == pytest.approx(expected, abs=1e-4)
    if depth > 1:  # depth is used: it is not the one-step look-ahead
        assert abs(got - leaf_value(model, ids, rollout="dynamics", rollout_depth=1, top_k_expansion=k)) > 1e-3


def test_mcts_left_padded_batch_matches_unpadded_rows():
    model = make_model(seed=9)
    a, b = make_ids(batch=1, length=6, seed=10), make_ids(batch=1, length=4, seed=11)
    pad = model.config.pad_token_id
    batch = torch.cat([a, torch.cat([torch.full((1, 2), pad), b], dim=1)])
    mask = torch.tensor([[1] * 6, [0, 0, 1, 1, 1, 1]])
    out = model.generate(batch, attention_mask=mask, deliberation="mcts", num_simulations=3, max_new_tokens=4)
    alone_a = model.generate(a, deliberation="mcts", num_simulations=3, max_new_tokens=4)
    alone_b = model.generate(b, deliberation="mcts", num_simulations=3, max_new_tokens=4)
    assert torch.equal(out[0], alone_a[0])
    assert torch.equal(out[1, 2:], alone_b[0])


def test_mcts_rejects_bad_arguments():
    model = make_model()
    ids = make_ids()
    for kwargs, field in [
        (dict(num_simulations=0), "num_simulations"),
        (dict(rollout="random"), "rollout"),
        (dict(c_puct=-1.0), "c_puct"),
        (dict(num_beams=4), "num_beams"),
    ]:
        with pytest.raises(ValueError, match=field):
            model.generate(ids, deliberation="mcts", max_new_tokens=2, **kwargs)
    with pytest.raises(ValueError, match="deliberation"):
        model.generate(ids, deliberation="beam")


@pytest.mark.parametrize("c_puct", [float("nan"), float("inf")])
def test_non_finite_c_puct_is_refused(c_puct):
    message = r"^`c_puct` must be a finite number >= 0.0, got (nan|inf)\.$"
    with pytest.raises(ValueError, match=message):
        CRSMDeliberationConfig(c_puct=c_puct)
    with pytest.raises(ValueError, match=message):
        make_model().generate(make_ids(), deliberation="mcts", max_new_tokens=2, c_puct=c_puct)


def test_deliberation_names_an_out_of_vocabulary_id_at_its_position_in_the_batch():
    model = make_model()
    ids = make_ids()
    ids[1, 3] = 64
    message = r"^`input_ids` must hold ids from 0 to 63 \(vocab_size=64\); got 64 at position \(1, 3\)\.$"
    for deliberation in (None, "mcts"):
        with pytest.raises(ValueError, match=message):
            model.generate(ids, deliberation=deliberation, max_new_tokens=2)


def test_deliberation_refuses_an_empty_batch_as_generate_does():
    model = make_model()
    with pytest.raises(ValueError, match=r"^`generate` needs at least one prompt; got a batch of 0"):
        model.generate(make_ids()[:0], deliberation="mcts", max_new_tokens=2)


def test_deliberation_config_gives_what_its_fields_as_arguments_give():
    model = make_model(seed=3)
    ids = make_ids(batch=1, length=5)
    settings = dict(num_simulations=5, rollout="model", rollout_depth=2, leaf_batch_size=2)
    by_arguments = model.generate(ids, deliberation="mcts", max_new_tokens=4, **settings)
    config = CRSMDeliberationConfig(**settings)
    assert model.generate(ids, deliberation="mcts", max_new_tokens=4, deliberation_config=config).equal(by_arguments)
    with pytest.raises(ValueError, match="not both"):
        model.generate(ids, deliberation="mcts", deliberation_config=config, num_simulations=3)
    with pytest.raises(ValueError, match="`rollout_depth` must be an integer >= 1"):
        CRSMDeliberationConfig(rollout_depth=0)
    assert CRSMDeliberationConfig(apply_state_delta=None).state_delta_mode is None
    assert CRSMDeliberationConfig(apply_state_delta=True).state_delta_mode == "prompt"


def test_state_delta_trains_through_cached_steps():
    model = make_model().train()
    ids = make_ids(batch=2, length=5)
    out = model(ids, use_cache=True)
    cache = out.cache_params
    model.apply_state_delta(cache)
    logits = step(model, cache, ids[:, 0])
    logits = step(model, cache, logits.argmax(-1))
    logits.square().mean().backward()
    assert model.state_delta.state.weight.grad.abs().sum() > 0


def test_parallel_scan_training_matches_sequential_scan():
    pytest.importorskip("mambapy")  # optional extra: pip install "hf-reason[mamba]"
    sequential = make_model().train()
    parallel = CRSMForCausalLM(tiny_crsm_config(use_mambapy=True)).train()
    parallel.load_state_dict(sequential.state_dict())
    ids = make_ids(batch=2, length=16)
    a, b = sequential(ids, labels=ids).loss, parallel(ids, labels=ids).loss
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    a.backward()
    b.backward()
    name = "backbone.layers.0.mixer.x_proj.weight"
    torch.testing.assert_close(
        parallel.get_parameter(name).grad, sequential.get_parameter(name).grad, rtol=1e-4, atol=1e-6
    )


def test_mcts_follows_the_value_head_away_from_greedy():
    model = make_model(seed=11)
    prompt = make_ids(batch=1, length=6, seed=12)
    with torch.no_grad():
        greedy, runner_up = model(prompt).logits[0, -1].topk(2).indices.tolist()
        summaries = torch.cat(
            [
                model(torch.cat([prompt, torch.tensor([[t]])], dim=1), return_value=True).state_summary
                for t in (greedy, runner_up)
            ]
        )
    # teach the value head (only) that the runner-up leads to reward 1 and the greedy token to 0
    optimizer = torch.optim.Adam(model.value_head.parameters(), lr=1e-2)
    for _ in range(200):
        loss = (model.predict_value(summaries) - torch.tensor([0.0, 1.0])).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 1e-3
    kwargs = dict(deliberation="mcts", top_k_expansion=4, c_puct=0.5, max_new_tokens=1, return_dict_in_generate=True)
    assert model.generate(prompt, num_simulations=1, **kwargs).sequences[0, -1] == greedy
    searched = model.generate(prompt, num_simulations=16, **kwargs)
    assert searched.sequences[0, -1] == runner_up
    q = {token: value for token, _, value, _ in searched.search_stats[0][0]["children"]}
    assert q[runner_up] > q[greedy]


@pytest.mark.slow
def test_bench_quick_prints_every_comparison_line():
    """bench/crsm.py --quick (about 15 s): every measurement prints its `name: ours X, reference Y,
    ratio Z` line, the state-delta rows and the streamed (asynchronous) comparison included."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "TQDM_DISABLE": "1"}
    result = subprocess.run(
        [sys.executable, "bench/crsm.py", "--quick", "--state_delta", "prompt"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    names = [m.group(1) for m in re.finditer(r"^(.+): ours \S+, reference \S+, ratio \S+", result.stdout, re.M)]
    expected = ["perplexity (corpus test split) vs unigram"]
    for b in (1, 4):
        expected += [
            f"mcts-{b} accuracy vs greedy",
            f"mcts-{b} tokens/s vs greedy",
            f"mcts-{b} wall s vs greedy",
            f"mcts-{b} +state delta (prompt) accuracy vs mcts-{b}",
            f"mcts-{b} +state delta (prompt) tokens/s vs mcts-{b}",
        ]
    expected += [
        "mcts-4 streamed wall s, consumer 20 ms/token: threaded vs inline",
        "backbone training tokens/s vs MambaForCausalLM",
        "backbone decoding tokens/s vs MambaForCausalLM",
    ]
    assert names == expected, result.stdout
