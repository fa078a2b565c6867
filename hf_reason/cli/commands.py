# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""What each `hf-reason` command does once its command line is parsed (`build_parser` wires them).

Each command checks its inputs before the slow work (loading a model, tracing, scoring) and raises
`CLIError`, `ValueError` or `OSError` naming what is wrong; `main` prints that as one line.
"""

import argparse
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

from .inputs import CLIError, check_output_folder, read_jsonl


def cmd_env(args: argparse.Namespace) -> int:
    import importlib.metadata as md
    import platform

    packages = [
        "hf-reason",
        "torch",
        "transformers",
        "trl",
        "peft",
        "accelerate",
        "datasets",
        "optimum",
        "optimum-onnx",
        "onnxruntime",
        "safetensors",
        "tokenizers",
    ]
    versions = {}
    for name in packages:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    print(json.dumps({"python": platform.python_version(), "platform": platform.platform(), **versions}, indent=2))
    return 0


def _first_line(error: BaseException) -> str:
    return next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)


@contextmanager
def _named_source(source: str, flag: str = ""):
    """Turns the loader's error for a `source` that is no local path into one naming it: transformers'
    message speaks of the network and the cache, not of the path the user typed."""
    try:
        yield
    except (OSError, ValueError) as error:  # huggingface_hub refuses a path-like id with a ValueError
        if Path(source).exists():
            raise
        raise CLIError(
            f"{flag}{source}: no such folder, and no Hub model of that id could be loaded ({_first_line(error)})"
        ) from None


def _trm_config(model_dir: str):
    """The config of the TRM checkpoint `model_dir` (a local folder, checked first, or a Hub id)."""
    from transformers import AutoConfig

    import hf_reason  # noqa: F401  (registers the TRM with the Auto classes)
    from hf_reason.file_io import check_saved_model

    path = Path(model_dir)
    if path.exists():
        if not path.is_dir():
            raise CLIError(f"{model_dir} is a file; expected a model folder (save_pretrained) or a Hub id.")
        check_saved_model(path)
    with _named_source(model_dir):
        config = AutoConfig.from_pretrained(model_dir)
    if config.model_type != "trm":
        raise CLIError(f"{model_dir} holds a {config.model_type!r} model; `solve` needs a TRM (model_type 'trm').")
    return config


def cmd_solve(args: argparse.Namespace) -> int:
    import torch

    from hf_reason import AutoModelForPuzzleSolving

    from .puzzles import check_format, parse_puzzle, puzzle_spec

    config = _trm_config(args.model_dir)
    spec = puzzle_spec(config)
    check_format(spec, args.format)
    puzzles = [parse_puzzle(value, where, spec, args.format) for where, value in read_jsonl(args.input, "puzzles")]
    model = AutoModelForPuzzleSolving.from_pretrained(args.model_dir, config=config)
    identifiers = None
    if any(p.puzzle_identifier is not None for p in puzzles):
        identifiers = torch.tensor([p.puzzle_identifier or 0 for p in puzzles], dtype=torch.long)
    out = model.solve(
        torch.tensor([p.input_ids for p in puzzles], dtype=torch.long),
        puzzle_identifiers=identifiers,
        max_steps=args.max_steps,
        use_halting=not args.no_halting,
    )
    for puzzle, prediction, steps in zip(puzzles, out.predictions.numpy(), out.steps.tolist()):
        print(json.dumps(puzzle.result(prediction, steps)))
    return 0


def _model_type(model_dir: str) -> Optional[str]:
    """The saved model's `model_type`, or None where its config cannot be read (`export_pretrained`
    then says why, after checking the other options)."""
    from hf_reason.file_io import read_json_object

    try:
        return read_json_object(Path(model_dir, "config.json")).get("model_type")
    except (OSError, ValueError):
        return None


def _export_options(args: argparse.Namespace, int8_blockwise: Optional[dict]):
    """The export options of the model's family from the command line's flags (None for a model type
    without an exporter or an unreadable model folder: `export_pretrained` names the problem)."""
    from hf_reason.export import CRSMExportOptions, MetaAttentionExportOptions, TRMExportOptions

    model_type = _model_type(args.model_dir)
    if model_type == "trm":
        return TRMExportOptions(
            solve_graph=args.trm_solve_graph,
            int8_fp32_token_mixer=not args.trm_int8_quantize_token_mixer,
            int8_blockwise=int8_blockwise,
        )
    if model_type == "crsm":
        return CRSMExportOptions(prefill_length=args.crsm_prefill_length, int8_blockwise=int8_blockwise)
    if model_type == "meta_attention":
        return MetaAttentionExportOptions(fusions=not args.no_meta_attention_fusions, int8_blockwise=int8_blockwise)
    return None


def cmd_export(args: argparse.Namespace) -> int:
    from hf_reason.export import export_pretrained
    from hf_reason.export.quantization import parse_blockwise

    int8_blockwise = parse_blockwise(args.int8_blockwise, "--int8-blockwise")
    report = export_pretrained(
        args.model_dir,
        args.out_dir,
        precision=args.precision,
        task=args.task,
        opset=args.opset,
        per_channel=not args.per_tensor,
        block_size=args.block_size,
        accuracy_level=args.accuracy_level,
        quantize_gather=not args.no_quantize_gather,
        optimization_level=args.optimization_level,
        parity_samples=args.parity_samples,
        options=_export_options(args, int8_blockwise),
    )
    summary = {
        "out_dir": args.out_dir,
        "files": report["files"],
        "size_ratio_vs_fp32": report["size_ratio_vs_fp32"],
        "parity": report["parity"],
    }
    print(json.dumps(summary, indent=2))
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    import tempfile

    from hf_reason.hub import prepare_upload_folder, push_to_hub

    if args.dry_run:  # build the exact folder that would be uploaded, show it, upload nothing
        with tempfile.TemporaryDirectory(prefix="hf-reason-dry-run-") as tmp:
            plan = prepare_upload_folder(
                args.model_dir,
                args.repo_id,
                f"{tmp}/upload",
                onnx_dir=args.onnx,
                base_model=args.base_model,
                space=args.space,
            )
            kind = "Space" if args.space else "repo"
            print(
                f"Would create {'private' if args.private else 'public'} {kind} {args.repo_id} and upload "
                f"{len(plan.files)} files ({plan.kind}) in one commit:"
            )
            for name in plan.files:
                print(f"  {name}  ({(plan.folder / name).stat().st_size} bytes)")
            print(f"Left out ({len(plan.excluded)}):" if plan.excluded else "Left out: nothing.")
            for name, reason in plan.excluded:
                print(f"  left out: {name}  ({reason})")
            if plan.card is not None:
                print("\n----- README.md -----")
                print(plan.card)
        return 0
    info = push_to_hub(
        args.model_dir,
        args.repo_id,
        private=args.private,
        onnx_dir=args.onnx,
        base_model=args.base_model,
        commit_message=args.commit_message,
        space=args.space,
    )
    print(getattr(info, "commit_url", info))
    return 0


def cmd_app(args: argparse.Namespace) -> int:
    try:
        from hf_reason.app import launch_app
        from hf_reason.app.common import require_gradio

        require_gradio()
    except ImportError as error:
        raise CLIError(str(error)) from None
    for flag, folder in [("--trm", f) for f in args.trm or []] + [("--crsm", args.crsm), ("--meta", args.meta)]:
        if folder is not None and not Path(folder).is_dir():
            raise CLIError(
                f"{flag} {folder}: no such folder (expected a save_pretrained or `hf-reason export` folder)."
            )
    print(f"Starting the app at http://{args.host}:{args.port} (Ctrl+C stops it)", flush=True)
    launch_app(trm=args.trm, crsm=args.crsm, meta=args.meta, critic=args.critic, host=args.host, port=args.port)
    return 0


def _read_tasks(path: Optional[str]) -> list[dict]:
    from hf_reason.data.curated_tasks import read_curated_jsonl

    if path is not None and Path(path).is_dir():
        raise CLIError(f"--tasks {path} is a folder; expected a task JSONL file.")
    if path is not None and not Path(path).is_file():
        raise CLIError(f"--tasks {path}: no such file.")
    tasks = read_curated_jsonl(path)
    if not tasks:
        raise CLIError(f"--tasks {path} holds no tasks.")
    return tasks


def cmd_eval_reports(args: argparse.Namespace) -> int:
    from hf_reason.evaluation.reports import ReportEvaluator

    from .reports import check_report

    out = check_output_folder(args.out, "--out")
    reports = [check_report(value, where) for where, value in read_jsonl(args.reports, "reports")]
    tasks = _read_tasks(args.tasks)
    lm = tokenizer = None
    if args.lm:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        with _named_source(args.lm, "--lm "):
            lm, tokenizer = (
                AutoModelForCausalLM.from_pretrained(args.lm).eval(),
                AutoTokenizer.from_pretrained(args.lm),
            )
    summary = ReportEvaluator(tasks, lm=lm, tokenizer=tokenizer).evaluate(reports, out_dir=str(out))
    print(json.dumps({"num_reports": summary["num_reports"], "means": summary["means"]}, indent=2))
    return 0
