"""ONNX export machinery shared by the families: Optimum registration, re-export into a used
folder, what `from_pretrained` loads and at which optimisation level, CLI errors."""

import json
import shutil
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from conftest import tiny_trm_config
from onnx import TensorProto, helper, numpy_helper

from hf_reason import TRMForPuzzleSolving
from hf_reason.cli import build_parser
from hf_reason.cli import main as cli_main
from hf_reason.export import (
    EXPORTERS,
    FAMILY_EXPORTERS,
    OPTIMIZATION_LEVELS,
    REPORT_NAME,
    TASKS,
    CRSMExportOptions,
    MetaAttentionExportOptions,
    ORTTRMForPuzzleSolving,
    TRMExportOptions,
    create_session,
    export_pretrained,
    onnx_config,
    save_graphs,
)
from hf_reason.export.quantization import blockwise_8bit_blocks, has_fast_8bit_blocks, parse_blockwise, quantize_int8


# (Optimum model type, task) -> hf-reason's ONNX config class registered for it.
EXPECTED_REGISTRATIONS = {
    ("trm", "token-classification"): "TRMStepOnnxConfig",
    ("trm_solve", "token-classification"): "TRMSolveOnnxConfig",
    ("meta_attention", "text-generation"): "MetaAttentionOnnxConfig",
    ("meta_attention", "text-generation-with-past"): "MetaAttentionOnnxConfig",
    ("crsm", "text-generation"): "CRSMStepOnnxConfig",
    ("crsm_prefill", "text-generation"): "CRSMPrefillOnnxConfig",
}


def test_import_of_hf_reason_export_alone_registers_every_config_with_optimum():
    # A fresh interpreter: in this one, earlier tests have already run the exporters.
    script = f"""
import json
import hf_reason.export
from optimum.exporters.tasks import TasksManager
found = {{}}
for model_type, task in {sorted(EXPECTED_REGISTRATIONS)!r}:
    constructor = TasksManager.get_exporter_config_constructor(
        "onnx", model_type=model_type, task=task, library_name="transformers")
    found[model_type + "/" + task] = [constructor.func.__module__, constructor.func.__name__,
                                      constructor.keywords.get("use_past", False)]
print(json.dumps(found))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    for (model_type, task), name in EXPECTED_REGISTRATIONS.items():
        module, cls, use_past = found[f"{model_type}/{task}"]
        assert (module, cls) == ("hf_reason.export.configs", name), (model_type, task)
        assert use_past == task.endswith("-with-past")


def test_onnx_config_builds_from_the_registration_and_refuses_foreign_ones():
    config = onnx_config("trm", "token-classification", tiny_trm_config(puzzle_emb_ndim=32))
    assert type(config).__name__ == "TRMStepOnnxConfig" and config.task == "token-classification"
    assert list(config.inputs) == [
        "input_ids",
        "carry_y",
        "carry_z",
        "carry_steps",
        "carry_halted",
        "puzzle_identifiers",
    ]
    # Optimum knows gpt2, but not as an hf-reason graph: exporting with its config would be wrong.
    with pytest.raises(ValueError, match="no hf-reason ONNX config for model type 'gpt2'"):
        onnx_config("gpt2", "text-generation", None)


def tiny_trm(seed: int = 0) -> TRMForPuzzleSolving:
    # Two supervision steps, one H cycle: the smallest graphs (the fused solve unrolls every step).
    torch.manual_seed(seed)
    config = tiny_trm_config(mixer="mlp", pos_encodings="none", halt_max_steps=2, H_cycles=1, L_cycles=1)
    return TRMForPuzzleSolving(config).eval()


def test_reexport_replaces_the_earlier_export_and_loads_only_what_the_report_lists(tmp_path):
    model = tiny_trm()
    out = tmp_path / "onnx"
    export_pretrained(model, out, trm_solve_graph=True, parity_samples=2, progress=False)
    assert ORTTRMForPuzzleSolving.from_pretrained(out).solve_session is not None
    (out / "notes.txt").write_text("kept: not an export file")
    shutil.copyfile(out / "solve.onnx", tmp_path / "old_solve.onnx")

    report = export_pretrained(model, out, trm_solve_graph=False, parity_samples=2, progress=False)
    assert report["solve_graph"] is None and set(report["files"]) == {"model.onnx"}
    assert not (out / "solve.onnx").exists(), "the earlier export's solve graph was left behind"
    assert (out / "notes.txt").read_text() == "kept: not an export file"
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], "staging folder left behind"

    # A graph the report does not list is never loaded, even when it sits in the folder.
    shutil.copyfile(tmp_path / "old_solve.onnx", out / "solve.onnx")
    ort_model = ORTTRMForPuzzleSolving.from_pretrained(out)
    assert ort_model.solve_session is None
    ids = torch.randint(1, 11, (2, 16), generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="no one-graph solve .*`solve_graph` is null.*--trm-solve-graph"):
        ort_model.solve(ids, graph="fused")
    assert ort_model.solve(ids).predictions.shape == ids.shape  # the step graph still solves


def test_loaders_refuse_folders_without_a_report_or_of_another_family(tmp_path):
    model = tiny_trm()
    export_pretrained(model, tmp_path, parity_samples=2, progress=False)
    from hf_reason.export import ORTCRSMForCausalLM, ORTMetaAttentionForCausalLM

    with pytest.raises(ValueError, match="holds a 'trm' export; this wrapper loads 'crsm'"):
        ORTCRSMForCausalLM.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="holds a 'trm' export; this wrapper loads 'meta_attention'"):
        ORTMetaAttentionForCausalLM.from_pretrained(tmp_path)
    (tmp_path / "export_report.json").unlink()  # what an interrupted re-export leaves
    with pytest.raises(FileNotFoundError, match="has no export_report.json"):
        ORTTRMForPuzzleSolving.from_pretrained(tmp_path)


def test_a_fused_session_needs_its_exported_budget(tmp_path):
    model = tiny_trm()
    export_pretrained(model, tmp_path, trm_solve_graph=True, parity_samples=2, progress=False)
    session = ORTTRMForPuzzleSolving.from_pretrained(tmp_path).solve_session
    with pytest.raises(ValueError, match="`solve_graph_info` must give the one-graph solve's `max_steps`"):
        ORTTRMForPuzzleSolving(model.config, solve_session=session)


def test_every_family_is_registered_with_its_tasks_and_options():
    assert TASKS == {"trm": ("puzzle-solving",), "meta_attention": ("text-generation",), "crsm": ("text-generation",)}
    options = {"trm": TRMExportOptions, "meta_attention": MetaAttentionExportOptions, "crsm": CRSMExportOptions}
    for name, entry in FAMILY_EXPORTERS.items():
        assert entry.name == name and entry.tasks == TASKS[name] and EXPORTERS[name] is entry.export
        assert entry.options_class is options[name]
    assert REPORT_NAME == "export_report.json"


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: TRMExportOptions(solve_graph="yes"), "`solve_graph` must be True or False; got 'yes'"),
        (lambda: TRMExportOptions(solve_max_steps=0), "`solve_max_steps` must be an integer >= 1, got 0"),
        (lambda: TRMExportOptions(int8_fp32_token_mixer=1), "`int8_fp32_token_mixer` must be True or False"),
        (lambda: CRSMExportOptions(prefill_length=0), "`prefill_length` must be an integer >= 1, got 0"),
        (lambda: CRSMExportOptions(prefill_length=True), "`prefill_length` must be an integer >= 1"),
        (lambda: MetaAttentionExportOptions(fusions=None), "`fusions` must be True or False; got None"),
        (
            lambda: MetaAttentionExportOptions(int8_blockwise={"lm_head": 24}),
            "`int8_blockwise`: the 8-bit block size of 'lm_head' must be a power of two",
        ),
        (lambda: TRMExportOptions(int8_blockwise=("lm_head",)), "`int8_blockwise` must map node-name substrings"),
    ],
)
def test_family_options_name_the_field_and_what_it_allows(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_options_of_another_family_or_with_the_prefixed_keywords_are_refused(tmp_path):
    model = tiny_trm()
    with pytest.raises(
        ValueError, match="`options` for model type 'trm' must be a TRMExportOptions; got CRSMExportOptions"
    ):
        export_pretrained(model, tmp_path, options=CRSMExportOptions())
    with pytest.raises(ValueError, match="Pass either `options` or the keywords `trm_solve_graph`, not both"):
        export_pretrained(model, tmp_path, options=TRMExportOptions(), trm_solve_graph=True)
    assert not any(tmp_path.iterdir()), "a rejected request must not write anything"


def test_options_object_and_prefixed_keywords_give_the_same_export(tmp_path):
    model = tiny_trm()
    common = dict(precision="int8", parity_samples=2, progress=False)
    by_keywords = export_pretrained(
        model, tmp_path / "keywords", trm_solve_graph=True, trm_int8_fp32_token_mixer=False, **common
    )
    by_options = export_pretrained(
        model, tmp_path / "options", options=TRMExportOptions(solve_graph=True, int8_fp32_token_mixer=False), **common
    )
    for key in ("files", "parity", "quantization", "solve_graph"):
        assert by_options[key] == by_keywords[key], key
    assert by_options["quantization"]["kept_fp32"] == []
    # The fused solve's budget is an option too; an FP32 export with another budget does not match.
    short = export_pretrained(
        model,
        tmp_path / "short",
        options=TRMExportOptions(solve_graph=True, solve_max_steps=1),
        parity_samples=2,
        progress=False,
    )
    assert short["solve_graph"] == {"max_steps": 1, "use_halting": True}
    with pytest.raises(ValueError, match="`fp32_dir` .* holds a different export .*solve_graph"):
        export_pretrained(
            model, tmp_path / "int8", precision="int8", trm_solve_graph=True, fp32_dir=tmp_path / "short"
        )


@pytest.mark.parametrize("level", ["basic", "disable"])
def test_wrappers_default_to_the_reports_optimization_level(level, tmp_path):
    names = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    report = export_pretrained(
        tiny_trm(), tmp_path, trm_solve_graph=True, optimization_level=level, parity_samples=2, progress=False
    )
    assert report["optimization_level"] == level
    ort_model = ORTTRMForPuzzleSolving.from_pretrained(tmp_path)
    for session in (ort_model.step_session, ort_model.solve_session):
        assert session.get_session_options().graph_optimization_level == names[level]
    override = ORTTRMForPuzzleSolving.from_pretrained(tmp_path, optimization_level="all")
    assert override.step_session.get_session_options().graph_optimization_level == names["all"]


def test_cli_optimization_level_choices_are_the_wrappers_levels(capsys):
    export = next(
        action
        for action in build_parser()._subparsers._group_actions[0].choices["export"]._actions
        if action.dest == "optimization_level"
    )
    assert tuple(export.choices) == OPTIMIZATION_LEVELS
    with pytest.raises(SystemExit) as excinfo:
        cli_main(["export", "model", "out", "--optimization-level", "max"])
    assert excinfo.value.code == 2
    assert "invalid choice: 'max'" in capsys.readouterr().err


def test_cli_export_prints_errors_without_a_traceback(tmp_path, capsys):
    tiny_trm().save_pretrained(tmp_path / "trm")
    out = tmp_path / "out"
    assert cli_main(["export", str(tmp_path / "trm"), str(out), "--precision", "int4", "--block-size", "48"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: `block_size` must be a power of two") and "Traceback" not in err
    for value, message in (
        ("lm_head=24", "`--int8-blockwise`: the 8-bit block size of 'lm_head' must be a power of two"),
        ("lm_head", "`--int8-blockwise` takes SUBSTRING=BLOCK"),
    ):
        assert (
            cli_main(["export", str(tmp_path / "trm"), str(out), "--precision", "int8", "--int8-blockwise", value])
            == 2
        )
        err = capsys.readouterr().err
        assert err.startswith(f"error: {message}") and "Traceback" not in err, err
    assert cli_main(["export", str(tmp_path / "no-such-model"), str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no-such-model" in err and "Traceback" not in err
    assert not out.exists(), "a refused export must not write anything"


def _linear_graph(weight_name: str, weight: np.ndarray, bias: np.ndarray) -> onnx.ModelProto:
    nodes = [helper.make_node("MatMul", ["x", weight_name], ["h"]), helper.make_node("Add", ["h", "bias"], ["y"])]
    graph = helper.make_graph(
        nodes,
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", weight.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", weight.shape[1]])],
        [numpy_helper.from_array(weight, weight_name), numpy_helper.from_array(bias, "bias")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_save_graphs_stores_each_distinct_weight_once_and_ort_reads_it(tmp_path):
    rng = np.random.default_rng(0)
    shared, other = rng.normal(size=(2, 64, 32)).astype(np.float32)
    bias = rng.normal(size=32).astype(np.float32)  # 128 bytes: stays inside each graph
    x = rng.normal(size=(3, 64)).astype(np.float32)
    # The same weight under two names (as the tracer names one parameter in two graphs), and a third.
    models = {
        "a.onnx": _linear_graph("w_a", shared, bias),
        "b.onnx": _linear_graph("w_b", shared, bias),
        "c.onnx": _linear_graph("w_c", other, bias),
    }
    sizes = save_graphs(models, tmp_path)
    assert set(sizes) == {"a.onnx", "b.onnx", "c.onnx", "model.onnx_data"}
    assert sizes["model.onnx_data"] == (tmp_path / "model.onnx_data").stat().st_size
    assert 2 * shared.nbytes <= sizes["model.onnx_data"] < 2 * shared.nbytes + 4096  # two tensors, not three
    for name, weight in (("a.onnx", shared), ("b.onnx", shared), ("c.onnx", other)):
        session = ort.InferenceSession(str(tmp_path / name), providers=["CPUExecutionProvider"])
        np.testing.assert_allclose(session.run(None, {"x": x})[0], x @ weight + bias, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(
            numpy_helper.to_array(onnx.load(str(tmp_path / name)).graph.initializer[0]), weight
        )
    # One graph: one self-contained file, nothing to share.
    (tmp_path / "single").mkdir()
    single = save_graphs({"model.onnx": _linear_graph("w", other, bias)}, tmp_path / "single")
    assert set(single) == {"model.onnx"} and not (tmp_path / "single" / "model.onnx_data").exists()
    # A damaged weights file is a clear load error, not a crash.
    data = (tmp_path / "model.onnx_data").read_bytes()
    (tmp_path / "model.onnx_data").write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match="b.onnx is not a loadable ONNX model"):
        create_session(tmp_path / "b.onnx")
    with pytest.raises(ValueError, match="`data_name` must end in '.onnx_data'"):
        save_graphs(models, tmp_path, data_name="weights.bin")


def _tied_head_graph(embedding: np.ndarray) -> onnx.ModelProto:
    """Gather(E) for the input and MatMul(h, Transpose(E)) for the LM head: one tied embedding."""
    vocab, hidden = embedding.shape
    nodes = [
        helper.make_node("Gather", ["embedding", "ids"], ["embedded"], name="embed"),
        helper.make_node("Transpose", ["embedding"], ["embedding_t"], perm=[1, 0], name="transpose"),
        helper.make_node("MatMul", ["h", "embedding_t"], ["logits"], name="lm_head"),
    ]
    graph = helper.make_graph(
        nodes,
        "tied",
        [
            helper.make_tensor_value_info("ids", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("h", TensorProto.FLOAT, [None, hidden]),
        ],
        [
            helper.make_tensor_value_info("embedded", TensorProto.FLOAT, [None, hidden]),
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, vocab]),
        ],
        [numpy_helper.from_array(embedding, "embedding")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize("hidden", [64, 48])
def test_int4_tied_embedding_is_stored_once_and_reads_the_heads_weights(hidden, tmp_path):
    from hf_reason.export import quantize_int4

    rng = np.random.default_rng(0)
    embedding = rng.normal(size=(40, hidden)).astype(np.float32)
    onnx.save(_tied_head_graph(embedding), str(tmp_path / "fp32.onnx"))
    # accuracy_level 0: FP32 activations, so the head's logits are exactly h @ dequantized(W)^T.
    _, counts = quantize_int4(tmp_path / "fp32.onnx", tmp_path / "int4.onnx", block_size=32, accuracy_level=0)
    model = onnx.load(str(tmp_path / "int4.onnx"))
    inits = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    head = next(n for n in model.graph.node if n.op_type == "MatMulNBits")
    packed, scales = inits[head.input[1]], inits[head.input[2]].reshape(40, -1)
    nibbles = np.stack([packed & 0xF, packed >> 4], -1).reshape(40, -1)[:, :hidden].astype(np.float32)
    dequantized = (nibbles - 8) * np.repeat(scales, 32, axis=1)[:, :hidden]
    ids, h = np.array([0, 7, 39]), rng.normal(size=(2, hidden)).astype(np.float32)
    embedded, logits = ort.InferenceSession(str(tmp_path / "int4.onnx")).run(None, {"ids": ids, "h": h})
    np.testing.assert_allclose(logits, h @ dequantized.T, rtol=1e-4, atol=1e-4)
    assert np.abs(dequantized - embedding).mean() < 0.15 * np.abs(embedding).mean()
    four_bit = [name for name, array in inits.items() if array.size >= 40 * hidden // 2 and name != head.input[1]]
    if hidden % 32 == 0:
        # One 4-bit copy: the Gather reads the head's packed weights (reshaped), dequantized alike.
        assert counts["tied_embedding_shared"] == 1 and not four_bit, four_bit
        np.testing.assert_array_equal(embedded, dequantized[ids])
    else:
        # The head's blocks are padded past the hidden size: the layouts differ, both are kept.
        assert counts["tied_embedding_shared"] == 0 and len(four_bit) == 1
        assert np.abs(embedded - embedding[ids]).mean() < 0.15 * np.abs(embedding).mean()


def test_spinning_can_be_turned_off_for_shared_cores(tmp_path):
    export_pretrained(tiny_trm(), tmp_path, parity_samples=2, progress=False)
    key = "session.intra_op.allow_spinning"
    quiet = ORTTRMForPuzzleSolving.from_pretrained(tmp_path, num_threads=2, allow_spinning=False)
    assert quiet.step_session.get_session_options().get_session_config_entry(key) == "0"
    spinning = create_session(tmp_path / "model.onnx", allow_spinning=True)
    assert spinning.get_session_options().get_session_config_entry(key) == "1"
    ids = torch.randint(1, 11, (2, 16), generator=torch.Generator().manual_seed(0))
    default = ORTTRMForPuzzleSolving.from_pretrained(tmp_path)
    assert torch.equal(quiet.solve(ids).predictions, default.solve(ids).predictions)


@pytest.mark.skipif(not has_fast_8bit_blocks(), reason="this onnxruntime has no fast 8-bit MatMulNBits kernels")
def test_int8_blockwise_block_sizes_per_matmul(tmp_path):
    """`quantize_int8(blockwise=...)`: `{substring: block}` sets each matching matmul's 8-bit block (the
    first matching substring wins; capped at the weight's input channels); a bad entry is named."""
    rng = np.random.default_rng(0)
    weights = {
        "first/proj": rng.normal(size=(256, 64)),
        "second/proj": rng.normal(size=(64, 256)),
        "third/other": rng.normal(size=(256, 32)),
    }
    nodes = [
        helper.make_node("MatMul", ["x", "first/proj.w"], ["a"], name="first/proj/MatMul"),
        helper.make_node("MatMul", ["a", "second/proj.w"], ["b"], name="second/proj/MatMul"),
        helper.make_node("MatMul", ["b", "third/other.w"], ["y"], name="third/other/MatMul"),
    ]
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 256])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 32])],
        [numpy_helper.from_array((w * 0.05).astype(np.float32), f"{name}.w") for name, w in weights.items()],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), tmp_path / "fp32.onnx")
    x = rng.normal(size=(3, 256)).astype(np.float32)
    expected = ort.InferenceSession(str(tmp_path / "fp32.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"x": x}
    )[0]

    def quantized(blockwise, name):
        quantize_int8(tmp_path / "fp32.onnx", tmp_path / name, blockwise=blockwise)
        model = onnx.load(str(tmp_path / name))
        blocks = {
            n.name: {a.name: helper.get_attribute_value(a) for a in n.attribute}["block_size"]
            for n in model.graph.node
            if n.op_type == "MatMulNBits"
        }
        others = {n.name: n.op_type for n in model.graph.node if n.op_type != "MatMulNBits"}
        out = ort.InferenceSession(str(tmp_path / name), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        np.testing.assert_allclose(out, expected, rtol=0.05, atol=0.05 * np.abs(expected).max())
        return blocks, others

    # "proj" matches both projections, "first" comes first for first/proj (256 input channels: block
    # 32); second/proj takes "proj"'s 128, capped at its 64 input channels; third/other stays dynamic.
    blocks, others = quantized({"first": 32, "proj": 128}, "mapping.onnx")
    assert blocks == {"first/proj/MatMul_Q8": 32, "second/proj/MatMul_Q8": 64}, blocks
    assert "MatMulInteger" in others.values() or "DynamicQuantizeMatMul" in others.values(), others  # dynamic INT8
    blocks, _ = quantized({"third": 16}, "third.onnx")
    assert blocks == {"third/other/MatMul_Q8": 16}, blocks
    for bad in (("third",), {"": 16}, {3: 16}):
        with pytest.raises(ValueError, match="`blockwise` must map node-name substrings"):
            blockwise_8bit_blocks(bad)
    # The command-line form (`--int8-blockwise`).
    assert parse_blockwise("mixer/in_proj=128, lm_head=16") == {"mixer/in_proj": 128, "lm_head": 16}
    assert parse_blockwise("none") == {} and parse_blockwise(None) is None
    for bad in (24, 8, True, "16"):
        with pytest.raises(ValueError, match="`blockwise`: the 8-bit block size of 'proj' must be a power of two"):
            quantize_int8(tmp_path / "fp32.onnx", tmp_path / "bad.onnx", blockwise={"proj": bad})
    assert not (tmp_path / "bad.onnx").exists()
