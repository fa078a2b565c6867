"""The `hf-reason` command line: `hf-reason env`, `hf-reason solve MODEL_DIR ...`, `hf-reason export ...`."""

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Optional


def _cmd_env(args: argparse.Namespace) -> int:
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


def _cmd_solve(args: argparse.Namespace) -> int:
    import torch

    from hf_reason import AutoModelForPuzzleSolving

    model = AutoModelForPuzzleSolving.from_pretrained(args.model_dir)
    puzzles = [json.loads(line) for line in (open(args.input) if args.input != "-" else sys.stdin) if line.strip()]
    input_ids = torch.tensor([p["input_ids"] if isinstance(p, dict) else p for p in puzzles], dtype=torch.long)
    out = model.solve(input_ids, max_steps=args.max_steps, use_halting=not args.no_halting)
    for prediction, steps in zip(out.predictions.tolist(), out.steps.tolist()):
        print(json.dumps({"prediction": prediction, "steps": steps}))
    return 0


def _model_type(model_dir: str) -> Optional[str]:
    """The saved model's `model_type`, or None where its config cannot be read (`export_pretrained`
    then says why, after checking the other options)."""
    from transformers import PretrainedConfig

    try:
        config, _ = PretrainedConfig.get_config_dict(model_dir)
    except (OSError, ValueError):
        return None
    return config.get("model_type")


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


def _cmd_export(args: argparse.Namespace) -> int:
    from hf_reason.export import export_pretrained
    from hf_reason.export.quantization import parse_blockwise

    try:
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
    except (ValueError, OSError) as error:
        # A bad option value or an unreadable model folder is the user's to fix: the message, not a
        # traceback; exit status 2 as argparse gives for a bad command line.
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                "out_dir": args.out_dir,
                "files": report["files"],
                "size_ratio_vs_fp32": report["size_ratio_vs_fp32"],
                "parity": report["parity"],
            },
            indent=2,
        )
    )
    return 0


def _cmd_push(args: argparse.Namespace) -> int:
    import tempfile

    from hf_reason.hub import prepare_upload_folder, push_to_hub

    if args.dry_run:  # build the exact folder that would be uploaded, show it, upload nothing
        with tempfile.TemporaryDirectory(prefix="hf-reason-dry-run-") as tmp:
            plan = prepare_upload_folder(
                args.model_dir, args.repo_id, f"{tmp}/upload", onnx_dir=args.onnx, base_model=args.base_model
            )
            print(
                f"Would create {'private' if args.private else 'public'} repo {args.repo_id} and upload "
                f"{len(plan.files)} files ({plan.kind}) in one commit:"
            )
            for name in plan.files:
                print(f"  {name}  ({(plan.folder / name).stat().st_size} bytes)")
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
    )
    print(getattr(info, "commit_url", info))
    return 0


def _cmd_eval_reports(args: argparse.Namespace) -> int:
    from hf_reason.data.curated_tasks import read_curated_jsonl
    from hf_reason.evaluation.reports import ReportEvaluator

    lm = tokenizer = None
    if args.lm:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        lm, tokenizer = AutoModelForCausalLM.from_pretrained(args.lm).eval(), AutoTokenizer.from_pretrained(args.lm)
    reports = []
    with open(args.reports, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    reports.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise SystemExit(f"{args.reports}, line {number}: invalid JSON ({error.msg})") from None
    evaluator = ReportEvaluator(read_curated_jsonl(args.tasks), lm=lm, tokenizer=tokenizer)
    summary = evaluator.evaluate(reports, out_dir=args.out)
    print(json.dumps({"num_reports": summary["num_reports"], "means": summary["means"]}, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-reason", description="Reasoning models for the Hugging Face stack.")
    sub = parser.add_subparsers(dest="command", required=True)

    env = sub.add_parser("env", help="Print the versions of the stack (for bug reports).")
    env.set_defaults(func=_cmd_env)

    solve = sub.add_parser("solve", help="Solve puzzles with a saved TRM checkpoint.")
    solve.add_argument("model_dir", help="Directory or Hub id of a TRMForPuzzleSolving checkpoint.")
    solve.add_argument(
        "--input", default="-", help="JSONL of puzzles: token lists or {'input_ids': [...]} (- = stdin)."
    )
    solve.add_argument("--max-steps", type=int, default=None, help="Supervision-step budget (default: the config's).")
    solve.add_argument("--no-halting", action="store_true", help="Run every step instead of the learned halting.")
    solve.set_defaults(func=_cmd_solve)

    export = sub.add_parser(
        "export", help="Export a saved model to ONNX Runtime (FP32 / INT8 / INT4) with a parity report."
    )
    export.add_argument("model_dir", help="Folder of a saved hf-reason model (save_pretrained).")
    export.add_argument("out_dir", help="Output folder: ONNX graph(s), config, tokenizer, export_report.json.")
    export.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "int8", "int4"),
        help="fp32 | int8 (dynamic, per-channel weights) | int4 (weight-only MatMulNBits). Default fp32.",
    )
    export.add_argument("--task", default=None, help="The family's task (default: its first; TRM: puzzle-solving).")
    export.add_argument("--opset", type=int, default=None, help="ONNX opset (default 18).")
    export.add_argument("--per-tensor", action="store_true", help="INT8: one scale per tensor instead of per channel.")
    export.add_argument(
        "--block-size", type=int, default=128, help="INT4: input channels per scale (power of 2 >= 16)."
    )
    export.add_argument(
        "--accuracy-level", type=int, default=4, help="INT4: MatMulNBits compute (0-4; 4 = int8, fastest)."
    )
    export.add_argument("--no-quantize-gather", action="store_true", help="INT4: keep embedding tables in FP32.")
    export.add_argument(
        "--optimization-level",
        default="all",
        choices=("disable", "basic", "extended", "all"),
        help="ONNX Runtime graph optimisations the parity check runs at; recorded in the report, "
        "and the level the ORT wrappers load the graphs with by default. Default all.",
    )
    export.add_argument(
        "--trm-solve-graph", action="store_true", help="TRM: also export the whole fixed-step solve as solve.onnx."
    )
    export.add_argument(
        "--trm-int8-quantize-token-mixer",
        action="store_true",
        help="TRM with the MLP mixer, INT8: "
        "quantize the token-mixing matmuls too (faster, lower agreement; default keeps them FP32).",
    )
    export.add_argument(
        "--no-meta-attention-fusions",
        action="store_true",
        help="Meta-attention: skip "
        "onnxruntime.transformers' GPT-2 fusions (SkipLayerNorm, FastGelu, shape subgraphs) of the graph.",
    )
    export.add_argument(
        "--crsm-prefill-length",
        type=int,
        default=32,
        help="CRSM: chunk length of prefill.onnx "
        "(a prompt runs through it chunk after chunk, left-padded to a whole number of chunks).",
    )
    export.add_argument(
        "--int8-blockwise",
        default=None,
        metavar="SUBSTRING=BLOCK,...",
        help="INT8: matmuls (node-name substrings) quantized as 8-bit MatMulNBits with that block "
        "size instead of dynamic INT8, e.g. 'mixer/in_proj=16,mixer/x_proj=16,mixer/out_proj=16,"
        "lm_head=16' (CRSM, more accurate, slower); 'none': all dynamic. Default: the family's.",
    )
    export.add_argument("--parity-samples", type=int, default=8, help="Examples in the PyTorch-vs-ORT parity check.")
    export.set_defaults(func=_cmd_export)

    push = sub.add_parser(
        "push", help="Upload a saved model / adapter (+ ONNX export) to the Hub with its model card."
    )
    push.add_argument("model_dir", help="save_pretrained folder of an hf-reason model or of a PEFT adapter.")
    push.add_argument("repo_id", help="Hub repository, 'org/name' (created if missing).")
    push.add_argument("--private", action="store_true", help="Create the repository private.")
    push.add_argument(
        "--onnx", default=None, metavar="DIR", help="An `hf-reason export` folder, uploaded under onnx/."
    )
    push.add_argument(
        "--base-model", default=None, help="Adapters: the base model's Hub id (default: adapter_config.json's)."
    )
    push.add_argument(
        "--commit-message", default=None, help="Commit message (default: 'Upload <kind> with hf-reason')."
    )
    push.add_argument(
        "--dry-run", action="store_true", help="Print the files and the card that would be uploaded; upload nothing."
    )
    push.set_defaults(func=_cmd_push)

    reports = sub.add_parser("eval-reports", help="Score reasoning reports (JSONL) against the curated tasks.")
    reports.add_argument(
        "reports", help="JSONL, one report per line: {'task_id', 'completion', 'prompt'?, 'introspection'?}."
    )
    reports.add_argument("--out", required=True, help="Folder for summary.json, scores.csv and progress.jsonl.")
    reports.add_argument("--tasks", default=None, help="Task JSONL in the curated schema (default: the shipped set).")
    reports.add_argument("--lm", default=None, help="Causal LM folder for the perplexity part of prefix_quality.")
    reports.set_defaults(func=_cmd_eval_reports)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
