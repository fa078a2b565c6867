"""Hub-ready checkpoints: cards, the exact upload folder and call, and loading from a Hub-cache snapshot."""

import fnmatch
import hashlib
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import run_without_hf_reason, tiny_trm_config
from huggingface_hub import HfApi, ModelCard, ModelCardData, metadata_load
from huggingface_hub.repocard_data import model_index_to_eval_results

from hf_reason import TRMForPuzzleSolving
from hf_reason.cli import main as cli_main
from hf_reason.evaluation.statistics import wilson_interval
from hf_reason.hub import (
    CARD_INPUTS_NAME,
    EvaluationResult,
    build_model_card,
    prepare_upload_folder,
    push_to_hub,
    results_from_metrics,
    write_model_card,
)


METRICS = {
    "eval_exact_accuracy": 0.4,
    "eval_cell_accuracy": 0.8125,
    "eval_mean_steps": 3.5,
    "eval_num_exact": 20,
    "eval_num_puzzles": 50,
    "eval_runtime": 0.1,
}


def _family_config(model_type: str):
    """The family's real config class (families written in parallel are skipped until they import)."""
    if model_type == "trm":
        return tiny_trm_config()
    module = pytest.importorskip(f"hf_reason.models.{model_type}")
    classes = [getattr(module, n) for n in dir(module) if n.endswith("Config") and n != "PretrainedConfig"]
    config_cls = next(c for c in classes if getattr(c, "model_type", None) == model_type)
    return config_cls()


def _tiny_trm(seed: int = 0) -> TRMForPuzzleSolving:
    torch.manual_seed(seed)
    return TRMForPuzzleSolving(tiny_trm_config()).eval()


def _code_blocks(card_text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", card_text, flags=re.S)


# --------------------------------------------------------------------------- cards and metadata
@pytest.mark.parametrize("with_eval", [True, False], ids=["with_eval", "without_eval"])
@pytest.mark.parametrize("model_type", ["trm", "crsm", "meta_attention"])
def test_card_renders_for_each_family(model_type, with_eval):
    config = _family_config(model_type)
    results = (
        results_from_metrics(METRICS, dataset_name="held-out set", dataset_type="generated") if with_eval else None
    )
    card = build_model_card(
        config,
        repo_id="org/tiny-model",
        training_args={"learning_rate": 0.002},
        datasets=["org/some-dataset"],
        eval_results=results,
    )
    text = str(card)
    assert "{{" not in text and "{%" not in text
    assert "# tiny-model" in text and "## Intended use" in text and "## Limitations" in text and "```bibtex" in text
    remote, ours = _code_blocks(text)[:2]
    auto_class = {
        "trm": "AutoModelForTokenClassification",
        "crsm": "AutoModelForCausalLM",
        "meta_attention": "AutoModelForCausalLM",
    }[model_type]
    assert f"from transformers import {auto_class}" in remote
    assert f"{auto_class}.from_pretrained('org/tiny-model', trust_remote_code=True)" in remote
    assert "trust_remote_code" not in ours and "from_pretrained('org/tiny-model')" in ours
    # the hf-reason import in the card resolves to a real class of this family
    import_line = ours.splitlines()[0]
    module_name, class_name = re.match(r"from (\S+) import (\w+)", import_line).groups()
    assert getattr(importlib.import_module(module_name), class_name).config_class.model_type == model_type
    assert card.data.library_name == "transformers" and "hf-reason" in card.data.tags
    assert card.data.datasets == ["org/some-dataset"]
    if with_eval:
        assert "| held-out set | test | exact accuracy | 0.4000 | [0.2761, 0.5382] | 50 |" in text
        assert card.data.eval_results and card.data.metrics == ["accuracy", "mean_steps"]
    else:
        assert "No evaluation results were recorded" in text
        assert card.data.eval_results is None and "model-index" not in text


def test_metadata_round_trips_through_huggingface_hub(tmp_path):
    results = results_from_metrics(METRICS, dataset_name="Sudoku (held out)", dataset_type="generated-sudoku")
    card = build_model_card(tiny_trm_config(), repo_id="org/trm-sudoku", eval_results=results, datasets=["org/sudoku"])
    card.save(tmp_path / "README.md")
    # ModelCard.validate needs the Hub (it POSTs to /api/validate-yaml); check with the library's own parsers
    metadata = metadata_load(tmp_path / "README.md")
    name, hub_results = model_index_to_eval_results(metadata["model-index"])
    assert name == "trm-sudoku"
    assert [(r.metric_name, r.metric_value, r.dataset_type, r.task_type) for r in hub_results] == [
        (r.metric_name, r.value, "generated-sudoku", "token-classification") for r in results
    ]
    reparsed = ModelCardData(**metadata)
    assert reparsed.to_dict() == card.data.to_dict()
    loaded = ModelCard.load(tmp_path / "README.md")  # raises on malformed metadata
    assert loaded.data.eval_results == card.data.eval_results
    assert metadata["library_name"] == "transformers" and "custom_code" in metadata["tags"]


def test_results_from_metrics_intervals_only_where_binomial():
    results = {r.metric_name: r for r in results_from_metrics(METRICS, dataset_name="d")}
    assert set(results) == {"exact accuracy", "cell accuracy", "mean steps"}  # counts and runtime are not results
    assert results["exact accuracy"].interval == pytest.approx(wilson_interval(20, 50))
    assert results["cell accuracy"].interval is None  # a mean of per-cell fractions is not binomial
    assert results["exact accuracy"].num_samples == 50


@pytest.mark.parametrize(
    "bad, field",
    [
        (dict(interval=(0.5, 0.9)), "interval"),
        (dict(value=float("nan")), "value"),
        (dict(dataset_name=""), "dataset_name"),
        (dict(num_samples=0), "num_samples"),
    ],
)
def test_evaluation_result_rejects_bad_fields(bad, field):
    kwargs = dict(metric_type="accuracy", value=0.4, dataset_name="d", dataset_type="generated")
    kwargs.update(bad)
    with pytest.raises(ValueError, match=f"`{field}`"):
        EvaluationResult(**kwargs)


def test_adapter_card_for_a_stock_base_model():
    from peft import LoraConfig

    from hf_reason.hub import build_adapter_card

    adapter = LoraConfig(r=4, target_modules=["c_attn"], task_type="CAUSAL_LM").to_dict()
    card = build_adapter_card(
        adapter,
        base_model="openai-community/gpt2",
        repo_id="org/gpt2-lora",
        eval_results=[
            EvaluationResult(
                "perplexity",
                31.5,
                "held-out text",
                "generated",
                interval=(30.1, 33.0),
                interval_method="bootstrap 95%",
            )
        ],
    )
    text = str(card)
    code = _code_blocks(text)[0]
    assert "AutoModelForCausalLM.from_pretrained('openai-community/gpt2')" in code  # stock base: no remote code
    assert "PeftModel.from_pretrained(base, 'org/gpt2-lora')" in code
    assert card.data.library_name == "peft" and card.data.base_model == "openai-community/gpt2"
    assert card.data.pipeline_tag == "text-generation" and "lora" in card.data.tags
    assert '| `target_modules` | `["c_attn"]` |' in text and '| `peft_type` | `"LORA"` |' in text
    assert "| held-out text | — | perplexity | 31.5000 | [30.1000, 33.0000] (bootstrap 95%) | — |" in text


def test_unknown_family_is_a_clear_error():
    with pytest.raises(ValueError, match="`model_type` must be one of 'trm'"):
        build_model_card({"model_type": "bert", "auto_map": {}})


# --------------------------------------------------------------------------- the upload folder and call
def _saved_model_with_training_leftovers(tmp_path: Path) -> tuple[TRMForPuzzleSolving, Path]:
    model = _tiny_trm()
    model_dir = tmp_path / "trained"
    model.save_pretrained(model_dir)
    results = results_from_metrics(METRICS, dataset_name="Sudoku (held out)", dataset_type="generated-sudoku")
    write_model_card(model_dir, model, training_args={"learning_rate": 0.002}, eval_results=results)
    torch.save({"lr": 1}, model_dir / "training_args.bin")
    (model_dir / "checkpoint-5").mkdir()
    (model_dir / "checkpoint-5" / "optimizer.pt").write_bytes(b"x")
    return model, model_dir


EXPECTED_FILES = ["README.md", "config.json", "configuration_trm.py", "model.safetensors", "modeling_trm.py"]


def _expected_files() -> list[str]:
    # modeling_trm.py's relative imports travel with it (transformers' own resolver decides which)
    from transformers.dynamic_module_utils import get_relative_import_files

    import hf_reason.models.trm.modeling_trm as modeling

    extra = [Path(p).name for p in get_relative_import_files(modeling.__file__)]
    return sorted(set(EXPECTED_FILES + extra))


def test_prepare_upload_folder_is_exactly_what_the_hub_needs(tmp_path):
    model, model_dir = _saved_model_with_training_leftovers(tmp_path)
    (model_dir / "configuration_trm.py").unlink()  # code files are restored from the package when missing
    plan = prepare_upload_folder(model_dir, "org/trm-sudoku", tmp_path / "upload")
    assert plan.kind == "model"
    assert plan.files == _expected_files()
    assert sorted(p.relative_to(plan.folder).as_posix() for p in plan.folder.rglob("*") if p.is_file()) == plan.files
    assert CARD_INPUTS_NAME not in plan.files
    assert dict(plan.excluded) == {
        "checkpoint-5/": "training output, not part of the model",
        "training_args.bin": "pickle file (weights travel as safetensors only)",
    }
    card = (plan.folder / "README.md").read_text()
    # re-rendered for the repo id, with the evaluation results kept at save time
    assert "AutoModelForTokenClassification.from_pretrained('org/trm-sudoku', trust_remote_code=True)" in card
    assert "[0.2761, 0.5382]" in card and "`learning_rate` | `0.002`" in card
    assert "11.1K parameters" in card or f"{sum(p.numel() for p in model.parameters()) / 1e3:.1f}K" in card


def test_prepare_upload_folder_refuses_pickled_weights(tmp_path):
    model = _tiny_trm()
    model.save_pretrained(tmp_path / "m", safe_serialization=False)
    with pytest.raises(ValueError, match="no model.safetensors"):
        prepare_upload_folder(tmp_path / "m", "org/x", tmp_path / "up")
    with pytest.raises(ValueError, match="`repo_id` must look like 'org/name'"):
        prepare_upload_folder(tmp_path / "m", "no-org", tmp_path / "up2")


STATE_EXCLUDED = "temporary or training-state file"


def test_upload_leaves_out_the_state_files_our_trainers_declare(tmp_path):
    _, model_dir = _saved_model_with_training_leftovers(tmp_path)
    state_files = [
        "deep_supervision_state_rank0.safetensors",
        "dqn_halting_state_rank0.safetensors",
        "dqn_halting_state_rank1.safetensors",
    ]
    for name in state_files:
        (model_dir / name).write_bytes(b"state")
    plan = prepare_upload_folder(model_dir, "org/trm-sudoku", tmp_path / "upload")
    assert plan.files == _expected_files()
    assert dict(plan.excluded) == {
        "checkpoint-5/": "training output, not part of the model",
        "training_args.bin": "pickle file (weights travel as safetensors only)",
        **dict.fromkeys(state_files, STATE_EXCLUDED),
    }


def test_upload_leaves_out_the_state_files_a_users_trainer_subclass_declares(tmp_path):
    from hf_reason.trainers import DeepSupervisionTrainer, training_state_files

    class SolverTrainer(DeepSupervisionTrainer):
        training_state_files = (*DeepSupervisionTrainer.training_state_files, "solver_state_*.json")

    assert "solver_state_*.json" in training_state_files()
    _, model_dir = _saved_model_with_training_leftovers(tmp_path)
    (model_dir / "solver_state_7.json").write_text("{}")
    plan = prepare_upload_folder(model_dir, "org/trm-sudoku", tmp_path / "upload")
    assert plan.files == _expected_files()
    assert dict(plan.excluded)["solver_state_7.json"] == STATE_EXCLUDED


def test_upload_takes_only_what_a_model_needs_and_says_why_for_the_rest(tmp_path):
    from hf_reason.hub import upload_files as uf

    _, model_dir = _saved_model_with_training_leftovers(tmp_path)
    wanted = {
        "generation_config.json": "{}",
        "tokenizer.json": "{}",
        "tokenizer_config.json": "{}",
        "special_tokens_map.json": "{}",
        "chat_template.jinja": "{{ messages }}",
    }
    left_out = {
        "scaler.pkl.gz": uf.PICKLE_REASON,
        "features.joblib": uf.PICKLE_REASON,
        "optimizer.pt": uf.PICKLE_REASON,
        "trainer_state.json": uf.STATE_REASON,
        "dqn_halting_state_rank0.safetensors": uf.STATE_REASON,
        "dqn_halting_state_rank3.safetensors": uf.STATE_REASON,
        "secrets.json": uf.CREDENTIALS_REASON,
        ".env": uf.CREDENTIALS_REASON,
        "hf_token": uf.CREDENTIALS_REASON,
        "deploy.pem": uf.CREDENTIALS_REASON,
        "notes.txt": uf.NOT_NEEDED_REASON,
        "eval_predictions.npy": uf.NOT_NEEDED_REASON,
        "train.py": uf.CODE_REASON,
        "wandb/": uf.TRAINING_OUTPUT_REASON,
        "logs/": uf.FOLDER_REASON,
        "checkpoint-5/": uf.TRAINING_OUTPUT_REASON,
        "training_args.bin": uf.PICKLE_REASON,
    }
    for name, text in wanted.items():
        (model_dir / name).write_text(text)
    for name in left_out:
        if name.endswith("/"):
            (model_dir / name / "sub").mkdir(parents=True, exist_ok=True)
            (model_dir / name / "sub" / "run.log").write_text("loss 1.0")
        elif not (model_dir / name).exists():
            (model_dir / name).write_bytes(b"x")
    plan = prepare_upload_folder(model_dir, "org/trm-sudoku", tmp_path / "upload")
    assert plan.files == sorted(_expected_files() + list(wanted))
    assert dict(plan.excluded) == left_out
    assert [name for name, _ in plan.excluded] == sorted(left_out)  # listed once each, in order


def test_upload_never_follows_a_symbolic_link(tmp_path):
    from hf_reason.hub import upload_files as uf

    _, model_dir = _saved_model_with_training_leftovers(tmp_path)
    outside = tmp_path / "outside"
    (outside / "private").mkdir(parents=True)
    (outside / "secret-notes.json").write_text('{"token": "hf_xxx"}')
    (outside / "private" / "id.json").write_text("{}")
    (model_dir / "generation_config.json").symlink_to(outside / "secret-notes.json")
    (model_dir / "tokenizer.json").symlink_to("config.json")  # inside the folder
    (model_dir / "tokenizer_config.json").symlink_to(model_dir / "missing.json")
    (model_dir / "extra").symlink_to(outside / "private", target_is_directory=True)
    (model_dir / "self").symlink_to(model_dir, target_is_directory=True)
    plan = prepare_upload_folder(model_dir, "org/trm-sudoku", tmp_path / "upload")
    assert plan.files == _expected_files()
    assert {name: reason for name, reason in plan.excluded if "link" in reason} == {
        "generation_config.json": uf.LINK_OUTSIDE_REASON,
        "tokenizer.json": uf.LINK_INSIDE_REASON,
        "tokenizer_config.json": uf.LINK_BROKEN_REASON,
        "extra/": uf.LINK_OUTSIDE_REASON,
        "self/": uf.LINK_INSIDE_REASON,
    }
    assert not any(p.is_symlink() for p in plan.folder.rglob("*"))

    # weights that are a link (a Hub cache snapshot) are refused with the way out, not uploaded from elsewhere
    (outside / "model.safetensors").write_bytes((model_dir / "model.safetensors").read_bytes())
    (model_dir / "model.safetensors").unlink()
    (model_dir / "model.safetensors").symlink_to(outside / "model.safetensors")
    with pytest.raises(ValueError, match="model.safetensors is a symbolic link, never followed.*local_dir"):
        prepare_upload_folder(model_dir, "org/trm-sudoku", tmp_path / "upload-2")


def test_upload_takes_sharded_weights_and_names_a_truncated_file(tmp_path):
    model = _tiny_trm()
    model.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    shards = sorted(p.name for p in (tmp_path / "sharded").glob("model-*.safetensors"))
    assert len(shards) > 1
    plan = prepare_upload_folder(tmp_path / "sharded", "org/trm-sharded", tmp_path / "up")
    expected = set(_expected_files()) - {"model.safetensors"} | {"model.safetensors.index.json", *shards}
    assert set(plan.files) == expected and not plan.excluded
    shard = tmp_path / "sharded" / shards[-1]
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(ValueError, match=rf"{re.escape(str(shard))} is not a whole safetensors file"):
        prepare_upload_folder(tmp_path / "sharded", "org/trm-sharded", tmp_path / "up-2")


def test_upload_takes_the_images_the_card_shows(tmp_path):
    from hf_reason.hub import upload_files as uf

    _, model_dir = _saved_model_with_training_leftovers(tmp_path)
    (model_dir / "assets").mkdir()
    (model_dir / "assets" / "loss.png").write_bytes(b"\x89PNG")
    (model_dir / "assets" / "raw_scores.csv").write_text("1,2")
    (model_dir / "banner.svg").write_text("<svg/>")
    (tmp_path / "elsewhere.png").write_bytes(b"\x89PNG")
    summary = (
        "A tiny TRM. ![loss](assets/loss.png) <img src='./banner.svg'> ![x](../elsewhere.png) "
        "![remote](https://example.org/a.png) [scores](assets/raw_scores.csv)"
    )
    plan = prepare_upload_folder(model_dir, "org/trm-sudoku", tmp_path / "upload", model_summary=summary)
    assert plan.files == sorted(_expected_files() + ["assets/loss.png", "banner.svg"])
    assert dict(plan.excluded)["assets/"] == uf.CARD_FOLDER_REASON and "banner.svg" not in dict(plan.excluded)


def test_importing_the_hub_does_not_import_the_trainers():
    # the trainers import the hub for their cards; the upload imports them only when it builds a folder
    code = "import sys, hf_reason.hub; sys.exit(bool({'hf_reason.trainers', 'trl'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


class RecordingHfApi(HfApi):
    """A real HfApi whose two network methods record their arguments (and the folder) instead."""

    def __init__(self):
        super().__init__(token="hf_test")
        self.calls = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kwargs):
        folder = Path(kwargs["folder_path"])
        uploaded = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        self.calls.append(("upload_folder", kwargs, uploaded))
        return "commit-info"


def _real_onnx_export(model_dir: Path, out: Path) -> dict:
    from hf_reason.export import export_pretrained

    return export_pretrained(model_dir, out, precision="fp32", parity_samples=2, progress=False)


def _assert_card_shows_the_export_report(card: str, report: dict) -> None:
    section = card[card.index("## ONNX Runtime") : card.index("## Training")]
    for key in ("precision", "opset", "total_mib", "size_ratio_vs_fp32", "optimization_level"):
        assert f"| `{key}` | `{json.dumps(report[key])}` |" in section, key
    full = json.loads(re.search(r"```json\n(.*?)```", section, flags=re.S).group(1))
    assert full["parity"] == report["parity"] and full["files"] == report["files"]
    assert "`source`" not in section and report["source"] not in section  # the exporting machine's local path


def test_push_to_hub_makes_one_commit_with_the_prepared_folder(tmp_path):
    from hf_reason.export import ORTTRMForPuzzleSolving

    model, model_dir = _saved_model_with_training_leftovers(tmp_path)
    onnx_dir = tmp_path / "export"
    report = _real_onnx_export(model_dir, onnx_dir)
    api = RecordingHfApi()
    assert push_to_hub(model_dir, "org/trm-sudoku", private=True, onnx_dir=onnx_dir, api=api) == "commit-info"
    (create, repo_id, create_kwargs), (upload, upload_kwargs, uploaded) = api.calls
    assert (create, repo_id) == ("create_repo", "org/trm-sudoku")
    assert create_kwargs == {"private": True, "exist_ok": True, "repo_type": "model"}
    assert upload == "upload_folder" and upload_kwargs["repo_id"] == "org/trm-sudoku"
    assert upload_kwargs["repo_type"] == "model" and upload_kwargs["create_pr"] is False
    assert upload_kwargs["commit_message"].startswith("Upload model with hf-reason")
    exported = sorted(f"onnx/{p.relative_to(onnx_dir).as_posix()}" for p in onnx_dir.rglob("*") if p.is_file())
    assert {"onnx/model.onnx", "onnx/config.json", "onnx/export_report.json"} <= set(exported)
    assert sorted(uploaded) == sorted(_expected_files() + exported)
    assert uploaded["model.safetensors"] == (model_dir / "model.safetensors").read_bytes()
    assert uploaded["onnx/model.onnx"] == (onnx_dir / "model.onnx").read_bytes()
    card = uploaded["README.md"].decode()
    _assert_card_shows_the_export_report(card, report)
    assert "snapshot_download('org/trm-sudoku', allow_patterns=['onnx/*'])" in card

    # the uploaded onnx/ folder, laid out as a Hub snapshot, runs in ONNX Runtime like the PyTorch model
    upload_dir = tmp_path / "as-uploaded"
    for name, data in uploaded.items():
        (upload_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (upload_dir / name).write_bytes(data)
    snapshot = make_hub_snapshot(upload_dir, tmp_path / "hub", "org/trm-sudoku", "c" * 40)
    ort_model = ORTTRMForPuzzleSolving.from_pretrained(snapshot / "onnx")
    input_ids = torch.randint(1, 11, (2, 16), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(ort_model(input_ids).logits, model(input_ids).logits, rtol=1e-4, atol=1e-4)


def test_push_to_hub_saves_a_model_object_first():
    model = _tiny_trm()
    api = RecordingHfApi()
    push_to_hub(model, "org/trm-object", api=api, commit_message="first upload")
    _, (_, upload_kwargs, uploaded) = api.calls
    assert sorted(uploaded) == _expected_files() and upload_kwargs["commit_message"] == "first upload"
    assert "TRMForPuzzleSolving.from_pretrained('org/trm-object')" in uploaded["README.md"].decode()


def test_cli_push_dry_run_prints_files_and_card(tmp_path, capsys):
    _, model_dir = _saved_model_with_training_leftovers(tmp_path)
    report = _real_onnx_export(model_dir, tmp_path / "export")
    capsys.readouterr()
    assert (
        cli_main(
            ["push", str(model_dir), "org/trm-sudoku", "--private", "--dry-run", "--onnx", str(tmp_path / "export")]
        )
        == 0
    )
    out = capsys.readouterr().out
    header, card = out.split("----- README.md -----")
    listed = re.findall(r"^  (\S+)  \(\d+ bytes\)$", header, flags=re.M)
    exported = sorted(f"onnx/{p.name}" for p in (tmp_path / "export").iterdir())
    assert listed == sorted(_expected_files() + exported)
    _assert_card_shows_the_export_report(card, report)
    assert "Would create private repo org/trm-sudoku" in header
    assert "left out: training_args.bin  (pickle file" in header
    assert card.strip().startswith("---") and "model-index:" in card and "org/trm-sudoku" in card


# --------------------------------------------------------------------------- pull side: a Hub cache snapshot
def make_hub_snapshot(folder: Path, cache_dir: Path, repo_id: str, commit: str) -> Path:
    """Lays `folder` out as huggingface_hub's cache does after `snapshot_download(repo_id)`.

    models--org--name/{refs/main, blobs/<etag>, snapshots/<commit>/<file> -> ../../blobs/<etag>};
    LFS files (weights) are keyed by their sha256, regular files by their git blob sha1.
    """
    repo = cache_dir / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.suffix in (".safetensors", ".onnx"):
            etag = hashlib.sha256(data).hexdigest()
        else:
            etag = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        blob = repo / "blobs" / etag
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo / "snapshots" / commit / path.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return repo / "snapshots" / commit


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Could not find a config file")  # peft probes the Hub for the base's vocab
def test_pull_from_hub_cache_in_clean_process_model_and_lora_adapter(tmp_path):
    from peft import LoraConfig, get_peft_model

    cache = tmp_path / "hub"
    model = _tiny_trm()
    model.save_pretrained(tmp_path / "base")
    base_plan = prepare_upload_folder(tmp_path / "base", "org/trm-tiny", tmp_path / "up-base")
    make_hub_snapshot(base_plan.folder, cache, "org/trm-tiny", "a" * 40)

    # the hf-reason way, from the cache by repo id
    ours = TRMForPuzzleSolving.from_pretrained("org/trm-tiny", cache_dir=cache).eval()
    gen = torch.Generator().manual_seed(1)
    input_ids = torch.randint(1, 11, (2, 16), generator=gen)
    with torch.no_grad():
        expected = model(input_ids).logits
        torch.testing.assert_close(ours(input_ids).logits, expected, rtol=0, atol=0)

    # a LoRA adapter on the attention projections, made non-trivial so it changes the outputs
    base = TRMForPuzzleSolving.from_pretrained("org/trm-tiny", cache_dir=cache).eval()
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["qkv_proj", "o_proj"]))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5, generator=gen)
        adapted = peft_model(input_ids=input_ids).logits
    assert not torch.allclose(adapted, expected)
    peft_model.save_pretrained(tmp_path / "adapter")
    adapter_plan = prepare_upload_folder(tmp_path / "adapter", "org/trm-tiny-lora", tmp_path / "up-adapter")
    assert adapter_plan.kind == "adapter"
    assert adapter_plan.files == ["README.md", "adapter_config.json", "adapter_model.safetensors"]
    assert adapter_plan.card.data.base_model == "org/trm-tiny" and adapter_plan.card.data.library_name == "peft"
    make_hub_snapshot(adapter_plan.folder, cache, "org/trm-tiny-lora", "b" * 40)
    torch.save({"input_ids": input_ids}, tmp_path / "inputs.pt")

    # Where hf_reason cannot be imported, run the exact loading code the two cards print.
    model_code = _code_blocks(str(base_plan.card))[0]
    adapter_code = _code_blocks(str(adapter_plan.card))[0]
    assert (
        "trust_remote_code=True" in model_code
        and "PeftModel.from_pretrained(base, 'org/trm-tiny-lora')" in adapter_code
    )
    (tmp_path / "model_code.py").write_text(model_code)
    (tmp_path / "adapter_code.py").write_text(adapter_code)
    run_without_hf_reason(
        """
        import torch
        inputs = torch.load("inputs.pt")
        scope = {}
        exec(open("model_code.py").read(), scope)
        model = scope["model"].eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        exec(open("adapter_code.py").read(), scope)
        adapted = scope["model"].eval()
        with torch.no_grad():
            torch.save({"plain": model(inputs["input_ids"]).logits,
                        "adapted": adapted(input_ids=inputs["input_ids"]).logits}, "out.pt")
        """,
        cwd=tmp_path,
        env={"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"},
    )
    remote = torch.load(tmp_path / "out.pt")
    torch.testing.assert_close(remote["plain"], expected, rtol=0, atol=0)
    torch.testing.assert_close(remote["adapted"], adapted, rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------- the trainer's save hook
def test_trainer_save_model_writes_the_card(tmp_path):
    from hf_reason.data import generate_sudoku
    from hf_reason.trainers import DeepSupervisionConfig, DeepSupervisionTrainer

    config = tiny_trm_config(seq_len=81)
    torch.manual_seed(0)
    model = TRMForPuzzleSolving(config)
    eval_set = generate_sudoku(4, min_givens=70, seed=3)
    args = DeepSupervisionConfig(
        output_dir=str(tmp_path / "run"),
        per_device_eval_batch_size=4,
        report_to=[],
        ema_decay=0.9,
        eval_max_steps=1,
        use_cpu=True,
    )
    trainer = DeepSupervisionTrainer(model=model, args=args, train_dataset=eval_set, eval_dataset=eval_set)
    metrics = trainer.evaluate()
    trainer.save_model()
    card = ModelCard.load(tmp_path / "run" / "README.md")
    assert "DeepSupervisionConfig" in card.text and "`ema_decay` | `0.9`" in card.text
    results = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert results["exact accuracy"] == pytest.approx(metrics["eval_exact_accuracy"])
    assert "(4 examples; columns" in card.text
    plan = prepare_upload_folder(tmp_path / "run", "org/run", tmp_path / "up")
    assert "training_args.bin" in dict(plan.excluded) and "README.md" in plan.files


@pytest.mark.slow
def test_templates_ship_in_the_wheel(tmp_path):
    import shutil
    import zipfile

    root = Path(__file__).resolve().parents[1]
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(root / name, tmp_path / name)
    for name in ("hf_reason", "trainers", "model_cards"):
        shutil.copytree(root / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    names = zipfile.ZipFile(next((tmp_path / "dist").glob("*.whl"))).namelist()
    templates = {Path(n).name for n in names if n.startswith("hf_reason/model_cards/")}
    assert {"trm.md", "crsm.md", "meta_attention.md", "adapter.md", "tokenizer.md"} <= templates
    assert "hf_reason/hub/citations.bib" in names  # the cited methods' BibTeX, read at import


# --------------------------------------------------------------------------- a tokenizer pushed alone
def test_tokenizer_pushed_alone_gets_a_card_that_loads_it(tmp_path):
    from transformers import AutoTokenizer

    from hf_reason.data.text import build_tokenizer

    tokenizer = build_tokenizer(vocab_size=300, extra_special_tokens=("<think>",))
    api = RecordingHfApi()
    push_to_hub(tokenizer, "org/reason-tokenizer", api=api, datasets=["org/corpus"])
    _, (_, upload_kwargs, uploaded) = api.calls
    assert upload_kwargs["commit_message"].startswith("Upload tokenizer with hf-reason")
    assert {"README.md", "tokenizer.json", "tokenizer_config.json"} <= set(uploaded)
    card = ModelCard(uploaded["README.md"].decode())
    assert card.data.library_name == "transformers" and {"hf-reason", "tokenizer"} <= set(card.data.tags)
    assert card.data.datasets == ["org/corpus"] and card.data.eval_results is None
    assert "| `vocab_size` | `300` |" in card.text and '| `additional_special_tokens` | `["<think>"]` |' in card.text
    assert '| `algorithm` | `"BPE (byte-level)"` |' in card.text and '| `pad_token` | `"<|pad|>"` |' in card.text
    assert "build_tokenizer" in card.text and "[org/corpus](https://huggingface.co/datasets/org/corpus)" in card.text

    # the card's loading code, run against the uploaded files laid out as a Hub snapshot
    upload_dir = tmp_path / "uploaded"
    for name, data in uploaded.items():
        (upload_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (upload_dir / name).write_bytes(data)
    make_hub_snapshot(upload_dir, tmp_path / "hub", "org/reason-tokenizer", "d" * 40)
    code = _code_blocks(card.text)[0]
    assert "AutoTokenizer.from_pretrained('org/reason-tokenizer')" in code
    pulled = AutoTokenizer.from_pretrained("org/reason-tokenizer", cache_dir=tmp_path / "hub")
    text = "Q: 12 * 3 = ?\nA: <think>36</think>"
    assert pulled(text)["input_ids"] == tokenizer(text)["input_ids"]


# --------------------------------------------------------------------------- trainers write our card
def test_trainer_create_model_card_and_push_to_hub_upload_our_card(tmp_path, monkeypatch):
    """`Trainer.push_to_hub` (and `push_to_hub=True`) calls `create_model_card`: the uploaded card is ours."""
    import transformers.trainer

    from hf_reason.data import generate_sudoku
    from hf_reason.trainers import DeepSupervisionConfig, DeepSupervisionTrainer

    torch.manual_seed(0)
    model = TRMForPuzzleSolving(tiny_trm_config(seq_len=81))
    data = generate_sudoku(4, min_givens=70, seed=3)
    args = DeepSupervisionConfig(
        output_dir=str(tmp_path / "run"),
        per_device_eval_batch_size=4,
        report_to=[],
        eval_max_steps=1,
        use_cpu=True,
        hub_model_id="org/trm-run",
    )
    trainer = DeepSupervisionTrainer(model=model, args=args, train_dataset=data, eval_dataset=data)
    metrics = trainer.evaluate()
    trainer.create_model_card(model_name="trm-run", tags=["sudoku"], language="en")
    card = ModelCard.load(tmp_path / "run" / "README.md")
    assert {"sudoku", "hf-reason", "trm"} <= set(card.data.tags) and card.data.language == "en"
    assert "DeepSupervisionConfig" in card.text and "trust_remote_code=True" in card.text

    uploads = []
    monkeypatch.setattr(
        transformers.trainer,
        "upload_folder",
        lambda **kwargs: uploads.append((kwargs, (Path(kwargs["folder_path"]) / "README.md").read_text())) or "commit",
    )
    trainer.hub_model_id = "org/trm-run"  # what init_hf_repo sets after creating the repo (network)
    assert trainer.push_to_hub(commit_message="end of training") == "commit"
    ((kwargs, uploaded_card),) = uploads
    assert kwargs["repo_id"] == "org/trm-run" and kwargs["commit_message"] == "end of training"
    assert any(fnmatch.fnmatch(CARD_INPUTS_NAME, pattern) for pattern in kwargs["ignore_patterns"])  # stays local
    uploaded = ModelCard(uploaded_card)
    assert "AutoModelForTokenClassification.from_pretrained('org/trm-run', trust_remote_code=True)" in uploaded.text
    assert {r.metric_name: r.metric_value for r in uploaded.data.eval_results}["exact accuracy"] == pytest.approx(
        metrics["eval_exact_accuracy"]
    )
    assert "trl" not in uploaded.data.tags and "generated_from_trainer" not in uploaded.text


def test_dqn_halting_trainer_writes_our_card(tmp_path):
    from datasets import Dataset

    from hf_reason.trainers import DQNHaltingConfig, DQNHaltingTrainer, collect_trajectories

    config = tiny_trm_config(q_head_type="mlp")
    torch.manual_seed(0)
    model = TRMForPuzzleSolving(config)
    gen = torch.Generator().manual_seed(0)
    input_ids = torch.randint(1, config.vocab_size, (8, config.seq_len), generator=gen)
    puzzles = Dataset.from_dict({"input_ids": input_ids.tolist(), "labels": input_ids.tolist()})
    trajectories = collect_trajectories(model, puzzles, batch_size=8)
    args = DQNHaltingConfig(
        output_dir=str(tmp_path / "run"),
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        reward_step_cost=0.05,
    )
    # a table of trajectories as the eval set: the card names what it cannot describe instead of failing
    trainer = DQNHaltingTrainer(model=model, args=args, trajectories=trajectories, eval_dataset=trajectories)
    metrics = trainer.evaluate()
    trainer.save_model()
    card = ModelCard.load(tmp_path / "run" / "README.md")
    assert (tmp_path / "run" / "model.safetensors").is_file()
    assert "DQNHaltingConfig" in card.text and "`reward_step_cost` | `0.05`" in card.text
    assert "**eval**: `HaltingTrajectories`" in card.text
    results = {r.metric_name: r for r in card.data.eval_results}
    assert results["exact accuracy"].metric_value == pytest.approx(metrics["eval_exact_accuracy"])
    (tmp_path / "run" / "README.md").unlink()
    trainer.create_model_card(model_name="run")
    assert "DQNHaltingConfig" in ModelCard.load(tmp_path / "run" / "README.md").text


def _tiny_meta_attention(tokenizer):
    from hf_reason import MetaAttentionConfig, MetaAttentionForCausalLM

    torch.manual_seed(0)
    config = MetaAttentionConfig(
        vocab_size=len(tokenizer),
        n_positions=64,
        n_embd=32,
        n_layer=1,
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
    return MetaAttentionForCausalLM(config)


def _tiny_gpt2(tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(tokenizer),
            n_positions=64,
            n_embd=32,
            n_layer=1,
            n_head=2,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    )


def _trl_trainer(kind: str, model, tokenizer, output_dir: Path, peft_config=None):
    from datasets import Dataset

    common = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=2,
        max_steps=1,
        report_to=[],
        save_strategy="no",
        disable_tqdm=True,
        bf16=False,
        gradient_checkpointing=False,
    )
    if kind == "grpo":
        from hf_reason.trainers import ReasoningGRPOConfig, ReasoningGRPOTrainer

        args = ReasoningGRPOConfig(num_generations=2, max_completion_length=4, **common)
        data = Dataset.from_dict({"prompt": ["Q: 2 + 3 = ?\nA:", "Q: 7 = ?\nA:"]})
        return ReasoningGRPOTrainer(
            model=model,
            reward_funcs=lambda prompts, completions, **kw: [0.0] * len(prompts),
            args=args,
            train_dataset=data,
            processing_class=tokenizer,
            peft_config=peft_config,
        )
    from hf_reason.trainers import LengthBalancedDPOConfig, LengthBalancedDPOTrainer

    pair = {"prompt": "Q: 2 + 3 = ?\nA:", "chosen": "<think> 5</think> #### 5", "rejected": "<think></think> #### 6"}
    args = LengthBalancedDPOConfig(length_balanced_batches=False, **common)
    import copy

    ref_model = None if peft_config is not None else copy.deepcopy(model)  # built in memory: no Hub id to reload
    return LengthBalancedDPOTrainer(
        model=model,
        ref_model=ref_model,
        args=args,
        train_dataset=Dataset.from_list([pair, pair]),
        processing_class=tokenizer,
        peft_config=peft_config,
    )


@pytest.mark.parametrize("kind", ["grpo", "dpo"])
def test_trl_trainers_write_our_card_for_our_families_and_trls_otherwise(kind, tmp_path):
    from hf_reason.data.text import build_tokenizer

    tokenizer = build_tokenizer(vocab_size=300, extra_special_tokens=("<think>", "</think>"))
    trainer = _trl_trainer(kind, _tiny_meta_attention(tokenizer), tokenizer, tmp_path / "ours")
    config_name = {"grpo": "ReasoningGRPOConfig", "dpo": "LengthBalancedDPOConfig"}[kind]
    trainer.save_model()
    card = ModelCard.load(tmp_path / "ours" / "README.md")
    assert config_name in card.text and "from hf_reason import MetaAttentionForCausalLM" in card.text
    assert {"hf-reason", "meta-attention", "trl", kind} <= set(card.data.tags)
    assert "**train**: in-memory" in card.text
    method = {"grpo": ["shao2024deepseekmath"], "dpo": ["rafailov2023direct", "liu2024lddpo"]}[kind]
    assert _bibtex_keys(card.text) == ["radford2019gpt2", "vaswani2017attention"] + method
    # TRL calls create_model_card before every checkpoint and at push time
    (tmp_path / "ours" / "README.md").unlink()
    trainer.create_model_card(model_name="ours", dataset_name="pairs", tags=["extra"])
    card = ModelCard.load(tmp_path / "ours" / "README.md")
    assert config_name in card.text and "extra" in card.data.tags

    # a stock model keeps TRL's own card
    stock = _trl_trainer(kind, _tiny_gpt2(tokenizer), tokenizer, tmp_path / "stock")
    stock.save_model()
    assert not (tmp_path / "stock" / "README.md").exists()
    stock.create_model_card(model_name="stock")
    trl_card = ModelCard.load(tmp_path / "stock" / "README.md")
    assert "trl" in trl_card.data.tags and config_name not in trl_card.text and "hf-reason" in trl_card.data.tags


def test_a_peft_wrapped_family_model_gets_the_adapter_card(tmp_path):
    from peft import LoraConfig

    from hf_reason.data.text import build_tokenizer

    tokenizer = build_tokenizer(vocab_size=300)
    lora = LoraConfig(r=2, lora_alpha=4, target_modules=["c_attn"], task_type="CAUSAL_LM", fan_in_fan_out=True)
    trainer = _trl_trainer("grpo", _tiny_meta_attention(tokenizer), tokenizer, tmp_path / "run", peft_config=lora)
    trainer.save_model()
    assert (tmp_path / "run" / "adapter_model.safetensors").is_file()
    card = ModelCard.load(tmp_path / "run" / "README.md")
    assert card.data.library_name == "peft" and "lora" in card.data.tags and "ReasoningGRPOConfig" in card.text
    assert _bibtex_keys(card.text) == ["hu2022lora", "shao2024deepseekmath", "peft"]
    assert "AutoModelForCausalLM.from_pretrained('<your-org>/meta-attention', trust_remote_code=True)" in card.text
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    assert f"| `adapter parameters` | `{trainable}` |" in card.text
    plan = prepare_upload_folder(tmp_path / "run", "org/meta-lora", tmp_path / "up", base_model="org/meta-base")
    assert plan.kind == "adapter" and "PeftModel.from_pretrained(base, 'org/meta-lora')" in str(plan.card)


# --------------------------------------------------------------------------- papers cited for the training and PEFT methods
def _bibtex_keys(card_text: str) -> list[str]:
    (block,) = re.findall(r"```bibtex\n(.*?)```", card_text, flags=re.S)
    return re.findall(r"^@\w+\{([^,]+),", block, flags=re.M)


def test_cards_cite_the_training_method(tmp_path):
    from trl import DPOConfig, GRPOConfig

    from hf_reason.trainers import DeepSupervisionConfig, LengthBalancedDPOConfig, ReasoningGRPOConfig

    common = dict(output_dir=str(tmp_path), report_to=[], bf16=False)
    family = ["jolicoeur2025trm", "wang2025hrm", "prieto2025grokking"]
    cases = [
        (ReasoningGRPOConfig(**common), ["shao2024deepseekmath"]),
        (GRPOConfig(**common), ["shao2024deepseekmath"]),
        (DPOConfig(**common), ["rafailov2023direct"]),
        (DPOConfig(ld_alpha=0.5, **common), ["rafailov2023direct", "liu2024lddpo"]),
        (LengthBalancedDPOConfig(**common), ["rafailov2023direct", "liu2024lddpo"]),
        (DeepSupervisionConfig(**common), []),
        ({"learning_rate": 0.01}, []),  # a plain dict names no method
    ]
    for args, expected in cases:
        card = build_model_card(tiny_trm_config(), repo_id="org/m", training_args=args)
        assert _bibtex_keys(str(card)) == family + expected, type(args).__name__
    # the method survives the save -> push round trip (the card is re-rendered from the saved inputs)
    model = _tiny_trm()
    model.save_pretrained(tmp_path / "saved")
    write_model_card(tmp_path / "saved", model, training_args=LengthBalancedDPOConfig(**common))
    plan = prepare_upload_folder(tmp_path / "saved", "org/m", tmp_path / "up")
    assert _bibtex_keys(str(plan.card)) == family + ["rafailov2023direct", "liu2024lddpo"]


def test_adapter_card_cites_its_peft_method():
    from peft import IA3Config, LoraConfig, PrefixTuningConfig

    from hf_reason.hub import build_adapter_card

    def keys(adapter, **kwargs):
        adapter = adapter if isinstance(adapter, dict) else adapter.to_dict()
        return _bibtex_keys(str(build_adapter_card(adapter, base_model="org/base", **kwargs)))

    assert keys(LoraConfig(r=4, target_modules=["c_attn"], task_type="CAUSAL_LM")) == ["hu2022lora", "peft"]
    assert keys(LoraConfig(r=4, target_modules=["c_attn"], use_dora=True)) == ["hu2022lora", "liu2024dora", "peft"]
    assert keys(IA3Config(target_modules=["c_attn"], feedforward_modules=[], task_type="CAUSAL_LM")) == [
        "liu2022ia3",
        "peft",
    ]
    assert keys(PrefixTuningConfig(num_virtual_tokens=4, task_type="CAUSAL_LM")) == ["li2021prefix", "peft"]
    # an adapter type without an entry cites PEFT only, never a wrong paper
    assert keys({"peft_type": "BOFT", "task_type": "CAUSAL_LM"}) == ["peft"]
    # and the training method, for an adapter trained with GRPO / DPO
    assert keys(
        LoraConfig(r=4, target_modules=["c_attn"]), training_args={"trainer_config": "ReasoningGRPOConfig"}
    ) == ["hu2022lora", "shao2024deepseekmath", "peft"]


def test_citations_are_read_from_the_bibtex_file_by_key(tmp_path):
    from hf_reason.hub import CITATIONS, load_citations

    training = ["grpo", "dpo", "ld-dpo"]
    peft = ["LORA", "DORA", "ADALORA", "IA3", "PREFIX_TUNING", "PROMPT_TUNING", "P_TUNING", "VERA", "LOHA"]
    assert list(CITATIONS) == training + peft
    assert CITATIONS["grpo"].startswith("@article{shao2024deepseekmath,\n") and CITATIONS["grpo"].endswith("}")
    good = "% a comment\n\n% key: a\n@misc{a,\n  year = {2025}\n}\n\n% key: b\n@misc{b}\n"
    (tmp_path / "good.bib").write_text(good)
    assert load_citations(tmp_path / "good.bib") == {"a": "@misc{a,\n  year = {2025}\n}", "b": "@misc{b}"}
    for bad, message in [
        ("@misc{a}\n", "must follow a line `% key: <key>`"),
        ("% key: a\n@misc{a}\n% key: a\n@misc{b}\n", "'a' appears twice"),
        ("% key: a\ntitle = {x}\n", "must be one BibTeX entry"),
    ]:
        (tmp_path / "bad.bib").write_text(bad)
        with pytest.raises(ValueError, match=re.escape(message)):
            load_citations(tmp_path / "bad.bib")


# --------------------------------------------------------------------------- push: adapters and ONNX-only exports
def _tiny_crsm(tokenizer):
    from hf_reason import CRSMConfig, CRSMForCausalLM

    torch.manual_seed(0)
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


def test_push_to_hub_uploads_a_peft_adapter_folder_and_object(tmp_path, monkeypatch):
    import huggingface_hub.constants
    from peft import LoraConfig, get_peft_model

    from hf_reason.data.text import build_tokenizer

    tokenizer = build_tokenizer(vocab_size=300)
    base = _tiny_meta_attention(tokenizer)
    base.save_pretrained(tmp_path / "base")
    peft_model = get_peft_model(
        base, LoraConfig(r=2, lora_alpha=4, target_modules=["c_attn"], fan_in_fan_out=True, task_type="CAUSAL_LM")
    )

    # a PeftModel object is saved first, and its base tells the card that loading the base needs remote code;
    # built in memory, it names no base repository, which must then be given
    api = RecordingHfApi()
    with pytest.raises(ValueError, match="`base_model` is needed"):
        push_to_hub(peft_model, "org/meta-lora", api=api)
    assert push_to_hub(peft_model, "org/meta-lora", private=True, base_model="org/meta-base", api=api) == "commit-info"
    (create, repo_id, create_kwargs), (_, upload_kwargs, uploaded) = api.calls
    assert (create, repo_id, create_kwargs) == (
        "create_repo",
        "org/meta-lora",
        {"private": True, "exist_ok": True, "repo_type": "model"},
    )
    assert upload_kwargs["repo_id"] == "org/meta-lora" and upload_kwargs["repo_type"] == "model"
    assert upload_kwargs["commit_message"].startswith("Upload adapter with hf-reason")
    assert sorted(uploaded) == ["README.md", "adapter_config.json", "adapter_model.safetensors"]
    card = ModelCard(uploaded["README.md"].decode())
    assert card.data.library_name == "peft" and card.data.base_model == "org/meta-base"
    assert "PeftModel.from_pretrained(base, 'org/meta-lora')" in card.text
    assert "AutoModelForCausalLM.from_pretrained('org/meta-base', trust_remote_code=True)" in card.text
    assert "from hf_reason import MetaAttentionForCausalLM" in card.text

    # a saved adapter folder (with a pickle left by training): the base's config is found in the Hub cache
    adapter_dir = tmp_path / "adapter"
    peft_model.save_pretrained(adapter_dir)
    torch.save({"step": 1}, adapter_dir / "training_args.bin")
    base_plan = prepare_upload_folder(tmp_path / "base", "org/meta-base", tmp_path / "up-base")
    make_hub_snapshot(base_plan.folder, tmp_path / "hub", "org/meta-base", "9" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    api = RecordingHfApi()
    push_to_hub(adapter_dir, "org/meta-lora", base_model="org/meta-base", api=api)
    _, (_, _, from_folder) = api.calls
    assert sorted(from_folder) == sorted(uploaded)  # no pickle
    assert from_folder["adapter_model.safetensors"] == (adapter_dir / "adapter_model.safetensors").read_bytes()
    assert from_folder["README.md"] == uploaded["README.md"]


@pytest.mark.slow
def test_push_to_hub_uploads_an_onnx_only_export_whose_card_loads_it(tmp_path, monkeypatch):
    import huggingface_hub.constants

    model, model_dir = _saved_model_with_training_leftovers(tmp_path)
    onnx_dir = tmp_path / "export"
    _real_onnx_export(model_dir, onnx_dir)
    api = RecordingHfApi()
    push_to_hub(onnx_dir, "org/trm-onnx", api=api)
    _, (_, upload_kwargs, uploaded) = api.calls
    assert upload_kwargs["commit_message"].startswith("Upload onnx with hf-reason")
    exported = sorted(p.relative_to(onnx_dir).as_posix() for p in onnx_dir.rglob("*") if p.is_file())
    assert {"model.onnx", "config.json", "export_report.json"} <= set(exported)
    assert set(uploaded) == set(exported) | set(_expected_files()) - {"model.safetensors"}
    assert not any(name.endswith(".safetensors") for name in uploaded)
    card = uploaded["README.md"].decode()
    # no PyTorch weights to load: every from_pretrained in the card is the ONNX Runtime wrapper's
    assert "trust_remote_code" not in card
    assert re.findall(r"(\w+)\.from_pretrained", card) == ["ORTTRMForPuzzleSolving"]
    assert "an ONNX export only" in card and "## ONNX Runtime" in card

    # the card's code, run against the upload laid out as a Hub snapshot, gives the PyTorch model's outputs
    upload_dir = tmp_path / "as-uploaded"
    for name, data in uploaded.items():
        (upload_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (upload_dir / name).write_bytes(data)
    make_hub_snapshot(upload_dir, tmp_path / "hub", "org/trm-onnx", "f" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    code = _code_blocks(card)[0]
    assert "ORTTRMForPuzzleSolving.from_pretrained(path)" in code and "snapshot_download('org/trm-onnx')" in code
    scope = {}
    exec(code, scope)
    input_ids = torch.randint(1, 11, (2, 16), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(scope["model"](input_ids).logits, model(input_ids).logits, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_pull_text_families_from_hub_cache_in_a_clean_process(tmp_path):
    """CRSM and meta-attention: the card's trust_remote_code line, run where hf_reason is not installed, against
    the upload folder laid out as a Hub snapshot, gives the same logits and greedy generations."""
    from hf_reason.data.text import build_tokenizer

    tokenizer = build_tokenizer(vocab_size=300)
    cache = tmp_path / "hub"
    input_ids = torch.tensor([tokenizer("Q: 2 + 3 = ?\nA:")["input_ids"]])
    expected = {}
    for family, build in {"crsm": _tiny_crsm, "meta_attention": _tiny_meta_attention}.items():
        model = build(tokenizer).eval()
        model.save_pretrained(tmp_path / family)
        tokenizer.save_pretrained(tmp_path / family)
        repo_id = f"org/{family.replace('_', '-')}-tiny"
        plan = prepare_upload_folder(tmp_path / family, repo_id, tmp_path / f"up-{family}")
        assert "tokenizer.json" in plan.files and not any(f.endswith(".bin") for f in plan.files)
        make_hub_snapshot(plan.folder, cache, repo_id, ("1" if family == "crsm" else "2") * 40)
        code = _code_blocks(str(plan.card))[0]
        assert f"AutoModelForCausalLM.from_pretrained({repo_id!r}, trust_remote_code=True)" in code
        (tmp_path / f"{family}_code.py").write_text(code)
        with torch.no_grad():
            expected[family] = {
                "logits": model(input_ids).logits,
                "generated": model.generate(
                    input_ids, max_new_tokens=6, do_sample=False, pad_token_id=tokenizer.pad_token_id
                ),
            }
    torch.save({"input_ids": input_ids}, tmp_path / "inputs.pt")
    run_without_hf_reason(
        """
        import torch
        input_ids = torch.load("inputs.pt")["input_ids"]
        out = {}
        for family in ("crsm", "meta_attention"):
            scope = {}
            exec(open(f"{family}_code.py").read(), scope)
            model = scope["model"].eval()
            assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
            with torch.no_grad():
                out[family] = {"logits": model(input_ids).logits, "generated": model.generate(
                    input_ids, max_new_tokens=6, do_sample=False, pad_token_id=model.config.pad_token_id)}
        torch.save(out, "out.pt")
        """,
        cwd=tmp_path,
        env={"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"},
    )
    remote = torch.load(tmp_path / "out.pt")
    for family in expected:
        torch.testing.assert_close(remote[family]["logits"], expected[family]["logits"], rtol=0, atol=0)
        assert torch.equal(remote[family]["generated"], expected[family]["generated"]), family
