"""ONNX export of TRM: FP32 parity over whole solves, INT8 / INT4 agreement, errors, the CLI."""

import json

import numpy as np
import onnx
import pytest
import torch
from conftest import tiny_trm_config
from onnx import TensorProto, helper, numpy_helper

from hf_reason import TRMForPuzzleSolving
from hf_reason.cli import main as cli_main
from hf_reason.export import ORTTRMForPuzzleSolving, create_session, export_pretrained, rewrite_for_weight_only


FP32_ATOL = 1e-4
# Measured on the trained tiny TRM below (hidden 64, 32 puzzles x 3 steps, every reuse of a weight
# quantized), seeds 0 / 1 / 2: INT8 top-1 agreement 0.993 / 0.975 / 0.983, halting decisions
# 0.990 / 0.969 / 0.990; INT4 (block 32, accuracy_level 4) top-1 0.954 / 0.859 / 0.913, halting
# 0.979 / 0.948 / 0.969. The recursion applies each quantized weight 12 times per step, so errors
# compound more than in a feed-forward LM. The tests run seed 0; the thresholds sit below the
# lowest seed (docs/onnx.md keeps the table for every family).
MIN_TOP1 = {"int8": 0.96, "int4": 0.83}
MIN_HALTING = {"int8": 0.95, "int4": 0.92}
# INT4 / FP32 step-graph file size of that model at block 32, measured 0.62: at hidden 64 the
# unrolled recursion's graph structure and the FP32 norms are a large share of the file, and the
# block scales add 1 bit per weight. The reference Sudoku size is where the 1/5 goal applies
# (bench/onnx_cpu.py).
MAX_INT4_SIZE_RATIO = 0.7

VARIANTS = {
    "attention_rope": {},
    "mlp_mixer_learned_puzzle_emb": dict(
        mixer="mlp", pos_encodings="learned", puzzle_emb_ndim=48, num_puzzle_identifiers=5
    ),
    "gru_q_head_q_learning": dict(
        pos_encodings="none", halting="q_learning", q_head_type="gru", q_head_hidden_size=16
    ),
}


def model_with_live_halting(seed: int = 0, **overrides) -> TRMForPuzzleSolving:
    """A tiny TRM whose halting head is randomised so puzzles halt at different steps."""
    torch.manual_seed(seed)
    model = TRMForPuzzleSolving(tiny_trm_config(halt_max_steps=5, **overrides)).eval()
    with torch.no_grad():
        for param in model.q_head.parameters():
            param.normal_(0.0, 0.5)
    return model


def puzzles(config, batch_size=16, seed=1):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, config.vocab_size, (batch_size, config.seq_len), generator=gen)
    pids = None
    if config.puzzle_emb_ndim:
        pids = torch.randint(0, config.num_puzzle_identifiers, (batch_size,), generator=gen)
    return ids, pids


@pytest.mark.parametrize("variant", VARIANTS)
def test_fp32_matches_pytorch_every_step_and_whole_solve(variant, tmp_path):
    model = model_with_live_halting(**VARIANTS[variant])
    report = export_pretrained(model, tmp_path, precision="fp32", progress=False)
    for name, diff in report["parity"]["max_abs_diff_per_step"].items():
        assert diff < FP32_ATOL, (name, diff)

    ort_model = ORTTRMForPuzzleSolving.from_pretrained(tmp_path)
    ids, pids = puzzles(model.config)
    # Several supervision steps from the same carry: logits, halting logits and the carry itself.
    carry = None
    with torch.no_grad():
        for _ in range(3):
            expected = model(ids, puzzle_identifiers=pids, carry=carry)
            actual = ort_model(ids, puzzle_identifiers=pids, carry=carry)
            for key in ("logits", "q_halt_logits", "q_continue_logits"):
                torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=FP32_ATOL, msg=key)
            torch.testing.assert_close(actual.carry.y, expected.carry.y, rtol=0, atol=FP32_ATOL)
            torch.testing.assert_close(actual.carry.z, expected.carry.z, rtol=0, atol=FP32_ATOL)
            assert torch.equal(actual.carry.steps, expected.carry.steps)
            assert torch.equal(actual.carry.halted, expected.carry.halted)
            if expected.carry.q_hidden is not None:
                torch.testing.assert_close(actual.carry.q_hidden, expected.carry.q_hidden, rtol=0, atol=FP32_ATOL)
            carry = expected.carry.continued()

        expected = model.solve(ids, puzzle_identifiers=pids)
        actual = ort_model.solve(ids, puzzle_identifiers=pids)
    assert len(set(expected.steps.tolist())) > 1, "the test needs puzzles that halt at different steps"
    assert torch.equal(actual.steps, expected.steps)
    assert torch.equal(actual.predictions, expected.predictions)
    assert torch.equal(actual.step_predictions, expected.step_predictions)
    # Free-running carries: float rounding is amplified through the recursion, hence also an rtol.
    torch.testing.assert_close(actual.q_halt_logits, expected.q_halt_logits, rtol=1e-4, atol=FP32_ATOL, equal_nan=True)


@pytest.fixture(scope="module")
def fused_export(tmp_path_factory):
    """A tiny TRM exported with its step graph and the one-graph solve (traced once for this module)."""
    model = model_with_live_halting(mixer="mlp", pos_encodings="none")
    out = tmp_path_factory.mktemp("trm_fused")
    export_pretrained(model, out, precision="fp32", trm_solve_graph=True, progress=False)
    return model, ORTTRMForPuzzleSolving.from_pretrained(out)


def error_of(function, *args, **kwargs) -> str:
    """The message of the `ValueError` that `function(*args, **kwargs)` raises."""
    with pytest.raises(ValueError) as error:
        function(*args, **kwargs)
    return str(error.value)


def test_fused_solve_graph_matches_pytorch_solve(fused_export):
    model, ort_model = fused_export
    ids, _ = puzzles(model.config, batch_size=12, seed=3)
    expected = model.solve(ids)
    actual = ort_model.solve(ids, graph="fused")
    assert len(set(expected.steps.tolist())) > 1
    assert torch.equal(actual.steps, expected.steps)
    assert torch.equal(actual.predictions, expected.predictions)
    assert torch.equal(actual.step_predictions, expected.step_predictions)
    # Free-running carries: float rounding is amplified through the recursion, hence also an rtol.
    torch.testing.assert_close(actual.q_halt_logits, expected.q_halt_logits, rtol=1e-4, atol=FP32_ATOL, equal_nan=True)
    # The budget and halting rule are baked into the one-graph solve.
    with pytest.raises(ValueError, match="max_steps"):
        ort_model.solve(ids, max_steps=2, graph="fused")


def test_wrapper_refuses_what_pytorch_refuses_with_the_same_errors(fused_export):
    model, ort_model = fused_export
    ids, _ = puzzles(model.config, batch_size=2)
    too_large, negative = ids.clone(), ids.clone()
    too_large[1, 5], negative[0, 3] = 1000, -1
    cases = {
        "id 1000": dict(input_ids=too_large),
        "id -1": dict(input_ids=negative),
        "float ids": dict(input_ids=ids.float()),
        "bool ids": dict(input_ids=ids.bool()),
        "another length": dict(input_ids=ids[:, :-1]),
        "a carry of two rows for one": dict(input_ids=ids[:1], carry=model(ids).carry),
    }
    with torch.no_grad():
        for name, inputs in cases.items():
            assert error_of(ort_model, **inputs) == error_of(model, **inputs), name
            if "carry" not in inputs:
                for graph in ("step", "fused"):
                    actual = error_of(ort_model.solve, inputs["input_ids"], graph=graph)
                    assert actual == error_of(model.solve, inputs["input_ids"]), (name, graph)
    assert error_of(ort_model, too_large) == (
        "`input_ids` must hold ids from 0 to 10 (vocab_size=11); got 1000 at position (1, 5)."
    )


def test_wrapper_takes_int32_puzzles_as_the_model_does(fused_export):
    model, ort_model = fused_export
    ids, _ = puzzles(model.config, batch_size=4)
    torch.testing.assert_close(ort_model(ids.int()).logits, ort_model(ids).logits, rtol=0, atol=0)
    for graph in ("step", "fused"):
        expected, solved = ort_model.solve(ids, graph=graph), ort_model.solve(ids.int(), graph=graph)
        assert solved.predictions.dtype == torch.long
        assert torch.equal(solved.predictions, expected.predictions) and torch.equal(solved.steps, expected.steps)


def train_tiny_trm(seed: int = 0) -> TRMForPuzzleSolving:
    """A tiny TRM trained for 150 steps on a learnable rule (each cell: its right neighbour + 1), so
    its logits are confident as in deployment; random weights would exaggerate quantization error."""
    torch.manual_seed(seed)
    config = tiny_trm_config(hidden_size=64, intermediate_size=128, num_heads=2, halt_max_steps=3)
    model = TRMForPuzzleSolving(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(150):
        ids = torch.randint(1, config.vocab_size - 1, (32, config.seq_len), generator=gen)
        labels = torch.roll(ids, -1, dims=1) + 1
        loss = model(ids, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def trained_trm():
    model = train_tiny_trm(0)
    # 150 steps leave the halting head at its "never halt" init; a random head halts puzzles at
    # different steps (the logits do not depend on it), so halting agreement is actually tested.
    with torch.no_grad():
        for param in model.q_head.parameters():
            param.normal_(0.0, 0.5)
    return model


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["int8", "int4"])
def test_quantized_top1_and_halting_agreement(precision, trained_trm, tmp_path):
    report = export_pretrained(
        trained_trm, tmp_path, precision=precision, block_size=32, parity_samples=32, progress=False
    )
    parity = report["parity"]
    assert parity["top1_agreement"] >= MIN_TOP1[precision], parity
    assert parity["halting_agreement"] >= MIN_HALTING[precision], parity
    graph = onnx.load(str(tmp_path / "model.onnx"))
    ops = {node.op_type for node in graph.graph.node}
    # Every reuse of a weight by the recursion is quantized (the tracer routes reuses through
    # Identity nodes, which the quantizers would skip, leaving FP32 weights in the file).
    weights = {init.name for init in graph.graph.initializer}
    assert not [n.name for n in graph.graph.node if n.op_type in ("MatMul", "Gemm") and n.input[1] in weights]
    if precision == "int8":
        assert "DynamicQuantizeMatMul" in ops or "MatMulInteger" in ops, ops
    else:
        assert "MatMulNBits" in ops, ops
        # After the Gemm -> MatMul rewrite no weight matmul is left in FP32.
        assert "Gemm" not in ops
        attributes = [
            {a.name: helper.get_attribute_value(a) for a in n.attribute}
            for n in graph.graph.node
            if n.op_type == "MatMulNBits"
        ]
        assert all(a["block_size"] == 32 and a["accuracy_level"] == 4 and a["bits"] == 4 for a in attributes)
        assert report["files"]["model.onnx"] <= MAX_INT4_SIZE_RATIO * report["fp32_mib"]["model.onnx"], report
    assert report["quantization"]["weights_only" if precision == "int8" else "bits"]


def test_rewrite_for_weight_only_keeps_outputs_and_removes_gemm_and_transposed_head():
    rng = np.random.default_rng(0)
    w_gemm, bias = rng.normal(size=(8, 16)).astype(np.float32), rng.normal(size=16).astype(np.float32)
    embedding = rng.normal(size=(12, 16)).astype(np.float32)  # tied: Gather + MatMul(Transpose(E))
    nodes = [
        helper.make_node("Gemm", ["x", "w_gemm", "bias"], ["h"], transB=1, name="gemm"),
        helper.make_node("Transpose", ["embedding"], ["embedding_t"], perm=[1, 0], name="transpose"),
        helper.make_node("MatMul", ["h", "embedding_t"], ["logits"], name="head"),
        helper.make_node("Gather", ["embedding", "ids"], ["embedded"], name="gather"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 8]),
            helper.make_tensor_value_info("ids", TensorProto.INT64, [None]),
        ],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, 12]),
            helper.make_tensor_value_info("embedded", TensorProto.FLOAT, [None, 16]),
        ],
        initializer=[
            numpy_helper.from_array(w_gemm.T.copy(), "w_gemm"),
            numpy_helper.from_array(bias, "bias"),
            numpy_helper.from_array(embedding, "embedding"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    feed = {"x": rng.normal(size=(3, 8)).astype(np.float32), "ids": np.array([0, 5, 11])}

    import onnxruntime as ort

    before = ort.InferenceSession(model.SerializeToString()).run(None, feed)
    rewritten, counts = rewrite_for_weight_only(model)
    onnx.checker.check_model(rewritten)
    after = ort.InferenceSession(rewritten.SerializeToString()).run(None, feed)
    assert counts == {"identity": 0, "gemm": 1, "transposed_weight": 1}
    assert {n.op_type for n in rewritten.graph.node} == {"MatMul", "Add", "Gather"}
    for a, b in zip(before, after):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_bad_precision_and_options_give_clear_errors(tmp_path):
    model = model_with_live_halting()
    with pytest.raises(ValueError, match="`precision` must be one of 'fp32', 'int8', 'int4'"):
        export_pretrained(model, tmp_path, precision="fp16")
    with pytest.raises(ValueError, match="`block_size` must be a power of two"):
        export_pretrained(model, tmp_path, precision="int4", block_size=48)
    with pytest.raises(ValueError, match="`accuracy_level` must be one of"):
        export_pretrained(model, tmp_path, precision="int4", accuracy_level=7)
    with pytest.raises(ValueError, match="`task` for model type 'trm' must be one of 'puzzle-solving'"):
        export_pretrained(model, tmp_path, task="text-generation")
    with pytest.raises(ValueError, match="`optimization_level` must be one of"):
        export_pretrained(model, tmp_path, optimization_level="max")
    assert not any(tmp_path.iterdir()), "a rejected request must not write anything"
    with pytest.raises(SystemExit) as excinfo:
        cli_main(["export", str(tmp_path), str(tmp_path / "out"), "--precision", "int2"])
    assert excinfo.value.code == 2


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_malformed_onnx_file_gives_clear_error(damage, tmp_path):
    model = model_with_live_halting()
    export_pretrained(model, tmp_path, precision="fp32", progress=False)
    path = tmp_path / "model.onnx"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"not an onnx model" * 10)
    with pytest.raises(ValueError, match="model.onnx is not a loadable ONNX model"):
        ORTTRMForPuzzleSolving.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="No ONNX model"):
        create_session(tmp_path / "missing.onnx")


@pytest.mark.slow
def test_cli_export_end_to_end(tmp_path, capsys):
    model = model_with_live_halting(mixer="mlp", pos_encodings="none")
    model.save_pretrained(tmp_path / "trm")
    out = tmp_path / "onnx-int8"
    assert cli_main(["export", str(tmp_path / "trm"), str(out), "--precision", "int8", "--trm-solve-graph"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed["files"]) == {"model.onnx", "solve.onnx", "model.onnx_data"}
    files = {p.name for p in out.iterdir()}
    assert {"model.onnx", "solve.onnx", "model.onnx_data", "config.json", "export_report.json"} <= files
    # The fused solve repeats the step graph's weights: both read the same ranges of one file.
    refs = {
        name: {
            tuple(e.value for e in t.external_data)
            for t in onnx.load(str(out / name), load_external_data=False).graph.initializer
            if t.data_location == TensorProto.EXTERNAL
        }
        for name in ("model.onnx", "solve.onnx")
    }
    assert refs["model.onnx"] and refs["solve.onnx"] == refs["model.onnx"]
    assert (out / "model.onnx_data").stat().st_size < 1.1 * sum(int(length) for _, _, length in refs["model.onnx"])
    assert not any(name.startswith(".") or name.endswith(".tmp") for name in files), files  # staging removed
    report = json.loads((out / "export_report.json").read_text())
    assert report["precision"] == "int8" and report["family"] == "trm"
    assert report["files"]["model.onnx"] > 0 and report["fp32_mib"]["model.onnx"] > 0
    assert 0 <= report["parity"]["top1_agreement"] <= 1
    ort_model = ORTTRMForPuzzleSolving.from_pretrained(out)
    ids, _ = puzzles(model.config, batch_size=4)
    step_solve = ort_model.solve(ids)
    fused_solve = ort_model.solve(ids, graph="fused")
    assert step_solve.predictions.shape == fused_solve.predictions.shape == ids.shape
    assert torch.equal(step_solve.steps, fused_solve.steps)


def test_onnx_config_registered_with_optimum():
    from optimum.exporters.tasks import TasksManager

    from hf_reason.export.configs import TRMStepOnnxConfig

    constructor = TasksManager.get_exporter_config_constructor(
        "onnx", model_type="trm", task="token-classification", library_name="transformers"
    )
    onnx_config = constructor(tiny_trm_config(puzzle_emb_ndim=32))
    assert isinstance(onnx_config, TRMStepOnnxConfig)
    assert list(onnx_config.inputs) == [
        "input_ids",
        "carry_y",
        "carry_z",
        "carry_steps",
        "carry_halted",
        "puzzle_identifiers",
    ]
    assert all(axes == {0: "batch_size"} for axes in onnx_config.inputs.values())


def test_quantizing_an_earlier_fp32_export_equals_tracing_again(tmp_path):
    model = model_with_live_halting(mixer="mlp", pos_encodings="none")
    export_pretrained(model, tmp_path / "fp32", precision="fp32", trm_solve_graph=True, progress=False)
    traced = export_pretrained(model, tmp_path / "traced", precision="int8", trm_solve_graph=True, progress=False)
    reused = export_pretrained(
        model, tmp_path / "reused", precision="int8", trm_solve_graph=True, progress=False, fp32_dir=tmp_path / "fp32"
    )
    assert reused["parity"] == traced["parity"]
    for name in ("model.onnx", "solve.onnx"):
        a, b = onnx.load(str(tmp_path / "traced" / name)), onnx.load(str(tmp_path / "reused" / name))
        assert [n.op_type for n in a.graph.node] == [n.op_type for n in b.graph.node]
        for x, y in zip(a.graph.initializer, b.graph.initializer):
            np.testing.assert_array_equal(numpy_helper.to_array(x), numpy_helper.to_array(y))
    # A folder from different graph options (no solve graph here), or no export at all: refused.
    with pytest.raises(ValueError, match="`fp32_dir` .* holds a different export .*solve_graph"):
        export_pretrained(model, tmp_path / "other", precision="int8", fp32_dir=tmp_path / "fp32", progress=False)
    with pytest.raises(ValueError, match="`fp32_dir` must be a folder written by"):
        export_pretrained(model, tmp_path / "other", precision="int8", fp32_dir=tmp_path / "nothing", progress=False)


@pytest.mark.parametrize("keep_token_mixer", [True, False])
def test_int8_keeps_the_mlp_token_mixer_fp32_by_default(keep_token_mixer, tmp_path):
    model = model_with_live_halting(mixer="mlp", pos_encodings="none")
    report = export_pretrained(
        model, tmp_path, precision="int8", trm_int8_fp32_token_mixer=keep_token_mixer, parity_samples=2, progress=False
    )
    assert report["quantization"]["kept_fp32"] == (["token_mixer"] if keep_token_mixer else [])
    nodes = onnx.load(str(tmp_path / "model.onnx")).graph.node
    mixer_ops = {n.op_type for n in nodes if "token_mixer" in n.name and "MatMul" in n.op_type}
    channel_ops = {n.op_type for n in nodes if "/mlp/" in n.name and "MatMul" in n.op_type}
    assert mixer_ops == ({"MatMul"} if keep_token_mixer else {"MatMulInteger"}), mixer_ops
    assert channel_ops == {"MatMulInteger"}, channel_ops


def test_int4_keep_fp32_leaves_the_named_matmuls_unquantized(tmp_path):
    from hf_reason.export import quantize_int4

    model = model_with_live_halting(mixer="mlp", pos_encodings="none")
    export_pretrained(model, tmp_path / "fp32", precision="fp32", parity_samples=2, progress=False)
    quantize_int4(tmp_path / "fp32" / "model.onnx", tmp_path / "int4.onnx", block_size=16, keep_fp32=("token_mixer",))
    nodes = onnx.load(str(tmp_path / "int4.onnx")).graph.node
    assert {n.op_type for n in nodes if "token_mixer" in n.name and "MatMul" in n.op_type} == {"MatMul"}
    assert {n.op_type for n in nodes if "/mlp/" in n.name and "MatMul" in n.op_type} == {"MatMulNBits"}


def test_int4_with_zero_initialised_puzzle_embedding_and_halting_head(tmp_path):
    # A fresh TRM's puzzle embedding and halting-head weight are both zero matrices of transposed
    # shapes: equal by content, yet not a tied embedding.
    torch.manual_seed(0)
    config = tiny_trm_config(mixer="mlp", pos_encodings="none", puzzle_emb_ndim=32, num_puzzle_identifiers=2)
    model = TRMForPuzzleSolving(config).eval()
    assert not model.model.puzzle_embedding.weight.any() and not model.q_head.proj.weight.any()
    report = export_pretrained(
        model, tmp_path / "int4", precision="int4", block_size=16, parity_samples=2, progress=False
    )
    assert report["quantization"]["rewrites"]["tied_embedding_shared"] == 0
    # No embedding reads the halting head's weights: every 4-bit table is its own initializer.
    graph = onnx.load(str(tmp_path / "int4" / "model.onnx")).graph
    initializers = {init.name for init in graph.initializer}
    tables = [node for node in graph.node if node.op_type == "GatherBlockQuantized"]
    assert tables and all(node.input[0] in initializers for node in tables), [n.input[0] for n in tables]
    ids, pids = puzzles(config, batch_size=4)
    ort_model = ORTTRMForPuzzleSolving.from_pretrained(tmp_path / "int4")
    with torch.no_grad():
        expected = model.solve(ids, puzzle_identifiers=pids)
    # The zero halting head halts both alike; the zero puzzle embedding is exact at 4 bits.
    assert torch.equal(ort_model.solve(ids, puzzle_identifiers=pids).steps, expected.steps)
