"""ONNX export of CRSM: prefill + single-token steps with explicit recurrent states, generate, CLI."""

import json

import numpy as np
import onnx
import pytest
import torch

from hf_reason.cli import main as cli_main
from hf_reason.export import ORTCRSMForCausalLM, export_pretrained
from hf_reason.export.quantization import has_fast_8bit_blocks
from hf_reason.models.crsm import CRSMConfig, CRSMForCausalLM


FP32_ATOL = 1e-4
PREFILL = 12
# Measured on the trained tiny CRSM below (8 prompts x 9 positions: prefill + 8 steps), seeds 0 / 1 /
# 2: INT8 and INT4 (block 16, accuracy_level 4) top-1 agreement 1.000 each. The thresholds allow two
# flipped tokens of 72 (docs/onnx.md).
MIN_TOP1 = {"int8": 0.97, "int4": 0.93}


def tiny_model(seed: int = 0) -> CRSMForCausalLM:
    torch.manual_seed(seed)
    config = CRSMConfig(
        vocab_size=64,
        hidden_size=32,
        state_size=8,
        num_hidden_layers=2,
        eos_token_id=1,
        pad_token_id=2,
        bos_token_id=0,
    )
    return CRSMForCausalLM(config).eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = tiny_model()
    out = tmp_path_factory.mktemp("crsm_fp32")
    report = export_pretrained(model, out, precision="fp32", crsm_prefill_length=PREFILL, progress=False)
    return model, out, report


def test_fp32_states_logits_and_values_match_pytorch_over_decode_steps(exported):
    model, out, report = exported
    for key, diff in report["parity"]["max_abs_diff"].items():
        assert diff < FP32_ATOL, (key, diff)
    ort_model = ORTCRSMForCausalLM.from_pretrained(out)
    assert ort_model.prefill_length == PREFILL
    # Prompts shorter than, equal to and longer than the prefill graph's chunk (the last run chunk
    # after chunk, each from the states the previous one returned).
    for length in (3, PREFILL, PREFILL + 4, 3 * PREFILL):
        ids = torch.randint(3, 64, (2, length), generator=torch.Generator().manual_seed(length))
        with torch.no_grad():
            pt = model(ids, use_cache=True, return_value=True)
            ox = ort_model.prefill(ids, return_value=True)
            cache, position = pt.cache_params, torch.tensor([model.config.conv_kernel])
            torch.testing.assert_close(torch.from_numpy(ox["logits"]), pt.logits[:, -1], rtol=0, atol=FP32_ATOL)
            for _ in range(4):
                np.testing.assert_allclose(ox["ssm_states"], torch.stack(cache.ssm_states, 1).numpy(), atol=FP32_ATOL)
                np.testing.assert_allclose(
                    ox["conv_states"], torch.stack(cache.conv_states, 1).numpy(), atol=FP32_ATOL
                )
                np.testing.assert_allclose(ox["value"], pt.value.numpy(), atol=FP32_ATOL)
                token = pt.logits[:, -1:].argmax(-1)
                pt = model(token, cache_params=cache, cache_position=position, use_cache=True, return_value=True)
                cache, position = pt.cache_params, position + 1
                ox = ort_model.step(token, ox["conv_states"], ox["ssm_states"], return_value=True)
                torch.testing.assert_close(torch.from_numpy(ox["logits"]), pt.logits, rtol=0, atol=FP32_ATOL)


def test_chunked_prefill_with_left_padding_longer_than_a_chunk(exported):
    """A batch of prompts of different lengths, left-padded to the longest: the padding of the short
    one spans whole chunks, and each row equals its own unpadded prefill."""
    model, out, _ = exported
    ort_model = ORTCRSMForCausalLM.from_pretrained(out)
    gen = torch.Generator().manual_seed(3)
    long, short = (
        torch.randint(3, 64, (1, 2 * PREFILL + 5), generator=gen),
        torch.randint(3, 64, (1, 4), generator=gen),
    )
    pad = long.shape[1] - short.shape[1]
    ids = torch.cat([long, torch.cat([torch.full((1, pad), 2), short], 1)])
    mask = torch.cat(
        [torch.ones_like(long), torch.cat([torch.zeros(1, pad, dtype=torch.long), torch.ones_like(short)], 1)]
    )
    batch = ort_model.prefill(ids, mask)
    for row, prompt in enumerate((long, short)):
        alone = ort_model.prefill(prompt)
        with torch.no_grad():
            pt = model(prompt, use_cache=True)
        for key in ("logits", "conv_states", "ssm_states"):
            np.testing.assert_allclose(batch[key][row], alone[key][0], atol=FP32_ATOL, err_msg=key)
        np.testing.assert_allclose(
            alone["ssm_states"][0], torch.stack(pt.cache_params.ssm_states, 1)[0].numpy(), atol=FP32_ATOL
        )
    with pytest.raises(ValueError, match="padding on the left"):
        ort_model.prefill(ids, mask.flip(1))


def test_graphs_of_another_interface_are_refused(exported, tmp_path):
    """A prefill graph without state inputs (tokens and mask only) or a step graph with summary and
    value outputs gets an error that says to re-export."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", PREFILL])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", PREFILL])
    logits = helper.make_tensor_value_info("logits", TensorProto.INT64, ["batch", PREFILL])
    graph = helper.make_graph(
        [helper.make_node("Add", ["input_ids", "attention_mask"], ["logits"])], "stateless", [ids, mask], [logits]
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "prefill.onnx")
    model, out, _ = exported
    with pytest.raises(ValueError, match="re-export the model"):
        ORTCRSMForCausalLM(model.config, None, ort.InferenceSession(str(tmp_path / "prefill.onnx")))
    # A step graph that returns the summary and value too (the head graphs' outputs).
    names = ["input_ids", "conv_states", "ssm_states"]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch"]) for n in names]
    outputs = ["logits", "conv_states_out", "ssm_states_out", "state_summary", "value"]
    nodes = [helper.make_node("Identity", [names[i % 3]], [o]) for i, o in enumerate(outputs)]
    graph = helper.make_graph(
        nodes,
        "step_with_value",
        inputs,
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, ["batch"]) for o in outputs],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "model.onnx")
    with pytest.raises(ValueError, match=r"model.onnx returns .*'value'.*re-export the model"):
        ORTCRSMForCausalLM(
            model.config,
            ort.InferenceSession(str(tmp_path / "model.onnx")),
            ort.InferenceSession(str(out / "prefill.onnx")),
        )


def test_graphs_leave_the_value_to_the_head_graphs(exported):
    """The step and prefill graphs return logits and states only; `return_value=True` adds the
    summary and value through the `summarize` / `value` graphs, equal to PyTorch's
    `return_value=True`, and says which graphs are missing when an export lacks them."""
    model, out, report = exported
    for name in ("model.onnx", "prefill.onnx"):
        outputs = [o.name for o in onnx.load(str(out / name), load_external_data=False).graph.output]
        assert outputs == ["logits", "conv_states_out", "ssm_states_out"], (name, outputs)
    ort_model = ORTCRSMForCausalLM.from_pretrained(out)
    ids = torch.randint(3, 64, (2, 5), generator=torch.Generator().manual_seed(4))
    root = ort_model.prefill(ids)
    token = torch.tensor([[7], [11]])
    assert (
        set(root)
        == set(ort_model.step(token, root["conv_states"], root["ssm_states"]))
        == {"logits", "conv_states", "ssm_states"}
    )
    with torch.no_grad():
        for ox, prompt in (
            (ort_model.prefill(ids, return_value=True), ids),
            (
                ort_model.step(token, root["conv_states"], root["ssm_states"], return_value=True),
                torch.cat([ids, token], 1),
            ),
        ):
            pt = model(prompt, return_value=True)
            np.testing.assert_allclose(ox["value"], pt.value.numpy(), atol=FP32_ATOL)
            np.testing.assert_allclose(ox["state_summary"], pt.state_summary.numpy(), atol=FP32_ATOL)
    lean = ORTCRSMForCausalLM.from_files(out, ["model.onnx", "prefill.onnx"], config=model.config)
    with pytest.raises(ValueError, match=r"\['summarize', 'value'\]"):
        lean.prefill(ids, return_value=True)
    with pytest.raises(ValueError, match=r"\['summarize', 'value'\]"):
        lean.step(token, root["conv_states"], root["ssm_states"], return_value=True)


def test_backbone_graphs_avoid_the_slow_cpu_kernels(exported):
    """ONNX Runtime's CPU `Softplus` is scalar, and its `Mul` broadcasting a last axis of 1 against a
    longer one is ~10x slower than a same-shape multiply (docs/onnx.md, "CRSM decode step"): the
    step and prefill graphs compute softplus from `Exp` / `Log` (finite for large inputs, as torch's
    threshold keeps it) and the SSM discretization's outer products as matmuls."""
    from hf_reason.export.crsm import _softplus

    x = torch.linspace(-30, 200, 2301)
    torch.testing.assert_close(_softplus(x), torch.nn.functional.softplus(x), atol=1e-6, rtol=1e-6)
    model, out, report = exported
    for name in ("model.onnx", "prefill.onnx"):
        graph = onnx.shape_inference.infer_shapes(onnx.load(str(out / name))).graph
        assert "Softplus" not in {node.op_type for node in graph.node}, name
        shapes = {
            v.name: [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
            for v in list(graph.value_info) + list(graph.input)
        }
        shapes.update({t.name: list(t.dims) for t in graph.initializer})
        slow = []  # in the mixers (the RMS norms' broadcast Mul is fused into one norm op by ONNX Runtime)
        for node in graph.node:
            if node.op_type == "Mul" and "/mixer/" in node.name and all(i in shapes and shapes[i] for i in node.input):
                last = [shapes[i][-1] for i in node.input]
                if None not in last and min(last) == 1 and max(last) > 1:
                    slow.append((node.name, [shapes[i] for i in node.input]))
        assert not slow, (name, slow)


def test_states_are_plain_arrays_that_branch(exported):
    """What deliberation needs: one state copied into several rows, each advanced differently."""
    model, out, _ = exported
    ort_model = ORTCRSMForCausalLM.from_pretrained(out)
    ids = torch.randint(3, 64, (1, 5), generator=torch.Generator().manual_seed(0))
    root = ort_model.prefill(ids)
    branches = ort_model.step(np.array([4, 9, 17]), root["conv_states"].repeat(3, 0), root["ssm_states"].repeat(3, 0))
    for row, token in enumerate([4, 9, 17]):
        single = ort_model.step(np.array([token]), root["conv_states"], root["ssm_states"])
        np.testing.assert_allclose(branches["logits"][row], single["logits"][0], atol=1e-5)
        np.testing.assert_allclose(branches["ssm_states"][row], single["ssm_states"][0], atol=1e-5)


def test_generate_matches_pytorch_greedy(exported):
    model, out, _ = exported
    ort_model = ORTCRSMForCausalLM.from_pretrained(out)
    ids = torch.randint(3, 64, (3, 6), generator=torch.Generator().manual_seed(1))
    expected = model.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=2)
    assert torch.equal(ort_model.generate(ids, max_new_tokens=8), expected)
    # From a prefilled state, reused twice (states are never modified in place).
    prefilled = ort_model.prefill(ids)
    for _ in range(2):
        assert torch.equal(ort_model.generate(ids, prefilled=prefilled, max_new_tokens=8), expected)
    with pytest.raises(ValueError, match="`prefilled` must be this wrapper's `prefill"):
        ort_model.generate(ids[:2], prefilled=prefilled, max_new_tokens=2)
    # The export's level (recorded in the report) is the one the sessions run at.
    import onnxruntime as ort

    assert json.loads((out / "export_report.json").read_text())["optimization_level"] == "all"
    assert (
        ort_model.step_session.get_session_options().graph_optimization_level
        == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    )


def error_of(function, *args, **kwargs) -> str:
    """The message of the `ValueError` that `function(*args, **kwargs)` raises."""
    with pytest.raises(ValueError) as error:
        function(*args, **kwargs)
    return str(error.value)


def test_wrapper_refuses_the_ids_pytorch_refuses_with_the_same_errors(exported):
    model, out, _ = exported
    ort_model = ORTCRSMForCausalLM.from_pretrained(out)
    ids = torch.randint(3, 64, (2, 5), generator=torch.Generator().manual_seed(0))
    too_large, negative = ids.clone(), ids.clone()
    too_large[1, 2], negative[0, 4] = 64, -1
    search = dict(deliberation="mcts", num_simulations=2, max_new_tokens=2)
    with torch.no_grad():
        for bad in (too_large, negative, ids.float()):
            expected = error_of(model, bad)
            assert error_of(ort_model.prefill, bad) == expected
            assert error_of(ort_model.generate, bad, max_new_tokens=2) == expected
            assert error_of(ort_model.generate, bad, **search) == expected
        root = ort_model.prefill(ids)
        tokens = torch.tensor([5, 64])
        assert error_of(ort_model.step, tokens, root["conv_states"], root["ssm_states"]) == error_of(
            model, tokens[:, None]
        )
        with pytest.raises(ValueError, match="the states of as many rows"):
            ort_model.step(torch.tensor([5]), root["conv_states"], root["ssm_states"])
        for kwargs in ({"max_new_tokens": 2}, search):
            assert error_of(ort_model.generate, ids[:0], **kwargs) == error_of(model.generate, ids[:0], **kwargs)


def train_tiny_crsm(seed: int = 0) -> CRSMForCausalLM:
    """100 steps on counting sequences (mod 60), so the logits are confident."""
    model = tiny_model(seed).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(100):
        ids = (torch.randint(0, 60, (16, 1), generator=gen) + torch.arange(16)) % 60 + 3
        loss = model(ids, labels=ids).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def trained_export(tmp_path_factory):
    """The trained tiny CRSM and one FP32 export of it that the quantization tests start from."""
    model = train_tiny_crsm(0)
    out = tmp_path_factory.mktemp("crsm_trained_fp32")
    export_pretrained(model, out, precision="fp32", crsm_prefill_length=PREFILL, parity_samples=2, progress=False)
    return model, out


# Quantized / FP32 size of the shared weights file of this tiny model (INT4 at block 16), measured
# INT8 0.315 and INT4 0.190: the FP32 leftovers (norms, conv kernels, A, the INT8 export's embedding
# table, the value head) are a large share at hidden 32, and block scales add 2 bits per weight.
MAX_WEIGHTS_RATIO = {"int8": 0.36, "int4": 0.23}
QUANTIZED_OPS = {"int8": "MatMulInteger", "int4": "MatMulNBits"}


def external_refs(path) -> dict:
    """Initializer name -> (file, offset, length) of a graph's external-data tensors."""
    graph = onnx.load(str(path), load_external_data=False).graph
    return {
        t.name: tuple(entry.value for entry in t.external_data)
        for t in graph.initializer
        if t.data_location == onnx.TensorProto.EXTERNAL
    }


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["int8", "int4"])
def test_quantized_top1_agreement(precision, trained_export, tmp_path):
    model, fp32_dir = trained_export
    report = export_pretrained(
        model,
        tmp_path,
        precision=precision,
        block_size=16,
        crsm_prefill_length=PREFILL,
        parity_samples=8,
        progress=False,
        fp32_dir=fp32_dir,
    )
    assert report["parity"]["top1_agreement"] >= MIN_TOP1[precision], report["parity"]
    for name in ("model.onnx", "prefill.onnx", "summarize.onnx", "value.onnx", "dynamics.onnx", "state_delta.onnx"):
        graph = onnx.load(str(tmp_path / name)).graph
        ops = {node.op_type for node in graph.node}
        if name != "value.onnx":
            # INT8 backbone graphs: 8-bit MatMulNBits (below; the heads' graphs: dynamic INT8).
            blockwise = precision == "int8" and name in ("model.onnx", "prefill.onnx") and has_fast_8bit_blocks()
            assert ("MatMulNBits" if blockwise else QUANTIZED_OPS[precision]) in ops, (name, ops)
        # Every 2-D weight is quantized; the documented exceptions are a matmul with a vector weight
        # (the aggregator's pooling query: per-channel scales need 2-D, and it is 32 floats), the
        # value head (kept FP32 by design, in every graph) and, at INT8, the mixers' dt_proj.
        weights = {init.name: tuple(init.dims) for init in graph.initializer}
        left = [
            (n.name, weights[n.input[1]])
            for n in graph.node
            if n.op_type in ("MatMul", "Gemm") and len(n.input) > 1 and n.input[1] in weights
        ]
        kept = ("value_head", "mixer/dt_proj") if precision == "int8" else ("value_head",)
        assert all(len(dims) == 1 or any(key in node for key in kept) for node, dims in left), (name, left)
        if precision == "int8" and name in ("model.onnx", "prefill.onnx"):
            fp32 = sorted(node.split("mixer/")[1].split("/")[0] for node, _ in left if "mixer/" in node)
            assert fp32 == ["dt_proj"] * model.config.num_hidden_layers, (name, left)
        if precision == "int4":
            attributes = [
                {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
                for n in graph.node
                if n.op_type == "MatMulNBits"
            ]
            assert all(a["block_size"] == 16 and a["accuracy_level"] == 4 for a in attributes), attributes
    if precision == "int8" and has_fast_8bit_blocks():
        # The mixers' matmuls but dt_proj, and the LM head: 8-bit MatMulNBits (weights and activations per
        # block of input channels: 16 for out_proj / x_proj, 128 for in_proj / the head, here capped
        # at their 32 input channels: one block per output channel).
        graph = onnx.load(str(tmp_path / "model.onnx")).graph
        blocked = {
            n.name: {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            for n in graph.node
            if n.op_type == "MatMulNBits"
        }
        projections = sorted(name.split("mixer/")[1].split("/")[0] for name in blocked if "mixer/" in name)
        expected = sorted(["in_proj", "x_proj", "out_proj"] * model.config.num_hidden_layers)
        assert projections == expected and sum("lm_head" in name for name in blocked) == 1, sorted(blocked)
        hidden = model.config.hidden_size
        sizes = {"in_proj": hidden, "lm_head": hidden, "x_proj": 16, "out_proj": 16}
        for name, attributes in blocked.items():
            key = next(key for key in sizes if key in name)
            assert (attributes["bits"], attributes["block_size"], attributes["accuracy_level"]) == (
                8,
                sizes[key],
                4,
            ), (name, attributes)
        assert report["quantization"]["blockwise_8bit"] == {
            "mixer/in_proj": 128,
            "mixer/x_proj": 16,
            "mixer/out_proj": 16,
            "lm_head": 128,
        }
    # The latent dynamics' token embedding (a vocabulary-sized table) is quantized at both precisions.
    dynamics = onnx.load(str(tmp_path / "dynamics.onnx")).graph
    tables = [
        n for n in dynamics.node if n.op_type in ("Gather", "GatherBlockQuantized") and "token_embedding" in n.input[0]
    ]
    assert tables and all(n.op_type == "GatherBlockQuantized" or n.input[0].endswith("_quantized") for n in tables)
    if precision == "int4":
        # The tied embedding is stored once: the Gather reads the LM head's 4-bit weights.
        for name in ("model.onnx", "prefill.onnx"):
            assert report["quantization"]["graphs"][name]["rewrites"]["tied_embedding_shared"] == 1, report
    # Deliberation on the quantized heads: on this confident model MCTS picks PyTorch's tokens
    # (measured: same tokens and visit counts, seeds 0-2, both rollouts, INT8 and INT4).
    ort_model = ORTCRSMForCausalLM.from_pretrained(tmp_path)
    ids = (torch.randint(0, 60, (3, 1), generator=torch.Generator().manual_seed(7)) + torch.arange(5)) % 60 + 3
    for rollout in ("value", "dynamics"):
        kwargs = dict(
            max_new_tokens=4,
            num_simulations=6,
            top_k_expansion=4,
            rollout=rollout,
            leaf_batch_size=3,
            apply_state_delta=True,
            return_dict_in_generate=True,
        )
        expected = model.generate(ids, deliberation="mcts", **kwargs)
        assert torch.equal(ort_model.generate(ids, deliberation="mcts", **kwargs).sequences, expected.sequences)
    ratio = (tmp_path / "model.onnx_data").stat().st_size / (fp32_dir / "model.onnx_data").stat().st_size
    assert ratio <= MAX_WEIGHTS_RATIO[precision], ratio
    assert report["total_mib"] == pytest.approx(sum(report["files"].values()), abs=1e-3)


@pytest.mark.skipif(not has_fast_8bit_blocks(), reason="this onnxruntime has no fast 8-bit MatMulNBits kernels")
def test_int8_blockwise_option_replaces_the_default(trained_export, tmp_path):
    model, fp32_dir = trained_export
    report = export_pretrained(
        model,
        tmp_path / "out_proj",
        precision="int8",
        crsm_prefill_length=PREFILL,
        parity_samples=2,
        progress=False,
        fp32_dir=fp32_dir,
        int8_blockwise={"mixer/out_proj": 32},
    )
    assert report["quantization"]["blockwise_8bit"] == {"mixer/out_proj": 32}
    for name in ("model.onnx", "prefill.onnx"):
        graph = onnx.load(str(tmp_path / "out_proj" / name)).graph
        blocked = {
            n.name: {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}["block_size"]
            for n in graph.node
            if n.op_type == "MatMulNBits"
        }
        assert len(blocked) == model.config.num_hidden_layers and all("mixer/out_proj" in n for n in blocked), blocked
        assert set(blocked.values()) == {32}
    # {}: every matmul dynamic INT8.
    report = export_pretrained(
        model,
        tmp_path / "dynamic",
        precision="int8",
        crsm_prefill_length=PREFILL,
        parity_samples=2,
        progress=False,
        fp32_dir=fp32_dir,
        int8_blockwise={},
    )
    graph = onnx.load(str(tmp_path / "dynamic" / "model.onnx")).graph
    assert "MatMulNBits" not in {n.op_type for n in graph.node} and "blockwise_8bit" not in report["quantization"]
    with pytest.raises(ValueError, match="`int8_blockwise` must map node-name substrings"):
        export_pretrained(model, tmp_path / "bad", precision="int8", int8_blockwise=("lm_head",))
    with pytest.raises(ValueError, match="`int8_blockwise`: the 8-bit block size of 'lm_head' must be a power of two"):
        export_pretrained(model, tmp_path / "bad", precision="int8", int8_blockwise={"lm_head": 24})
    assert not (tmp_path / "bad").exists(), "refused before tracing: nothing written"


def test_graphs_share_one_copy_of_the_weights(exported):
    """The step and prefill graphs read the same bytes of one weights file (the backbone, stored
    once), and the head graphs their own: the export is about one model's size."""
    model, out, report = exported
    assert set(report["files"]) == {
        "model.onnx",
        "prefill.onnx",
        "summarize.onnx",
        "value.onnx",
        "dynamics.onnx",
        "state_delta.onnx",
        "model.onnx_data",
    }
    refs = {name: set(external_refs(out / name).values()) for name in report["files"] if name.endswith(".onnx")}
    assert refs["model.onnx"] and refs["model.onnx"] == refs["prefill.onnx"]
    assert {location for graph in refs.values() for location, _, _ in graph} == {"model.onnx_data"}
    # Each tensor once: the file holds the distinct ranges (plus alignment), far less than their
    # sum over graphs; and no more than the PyTorch weights plus the transposed copy of the tied
    # embedding that the traced LM head reads.
    distinct = {ref for graph in refs.values() for ref in graph}
    data = (out / "model.onnx_data").stat().st_size
    assert sum(int(length) for _, _, length in distinct) <= data < 1.1 * sum(int(length) for _, _, length in distinct)
    parameter_bytes = sum(p.numel() * 4 for p in model.parameters())  # tied weights counted once
    assert data <= parameter_bytes + model.config.vocab_size * model.config.hidden_size * 4
    # One file per graph would store the backbone twice (measured: shared file 0.66 of that).
    separate = sum(int(length) for graph in refs.values() for _, _, length in graph)
    assert data < 0.7 * separate, (data, separate)


@pytest.mark.slow
def test_cli_export_end_to_end(tmp_path, capsys):
    tiny_model().save_pretrained(tmp_path / "crsm")
    out = tmp_path / "onnx"
    assert cli_main(["export", str(tmp_path / "crsm"), str(out), "--crsm-prefill-length", "8"]) == 0
    assert set(json.loads(capsys.readouterr().out)["files"]) == {
        "model.onnx",
        "prefill.onnx",
        "summarize.onnx",
        "value.onnx",
        "dynamics.onnx",
        "state_delta.onnx",
        "model.onnx_data",
    }
    report = json.loads((out / "export_report.json").read_text())
    assert report["family"] == "crsm" and report["prefill_length"] == 8
    assert ORTCRSMForCausalLM.from_pretrained(out).generate(torch.tensor([[5, 6, 7]]), max_new_tokens=2).shape[1] <= 5


@pytest.mark.parametrize("rollout", ["value", "dynamics"])
def test_mcts_deliberation_on_ort_matches_pytorch(exported, rollout):
    model, out, _ = exported
    ort_model = ORTCRSMForCausalLM.from_pretrained(out)
    ids = torch.randint(3, 64, (2, 5), generator=torch.Generator().manual_seed(7))
    kwargs = dict(
        max_new_tokens=4,
        num_simulations=6,
        top_k_expansion=4,
        rollout=rollout,
        leaf_batch_size=3,
        apply_state_delta=True,
        return_dict_in_generate=True,
    )
    expected = model.generate(ids, deliberation="mcts", **kwargs)
    actual = ort_model.generate(ids, deliberation="mcts", **kwargs)
    assert torch.equal(actual.sequences, expected.sequences)
    assert torch.equal(actual.chosen_visit_counts, expected.chosen_visit_counts)
    torch.testing.assert_close(actual.chosen_values, expected.chosen_values, rtol=1e-4, atol=FP32_ATOL, equal_nan=True)
