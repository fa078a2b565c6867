# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""The `hf-reason` command line: `env`, `solve`, `export`, `push`, `eval-reports`, `app`.

Every bad input ends the command with one line on stderr, `error: ...`, naming the file, line or field
and what was expected, and exit status 2 (as argparse's own usage errors, which keep their usage
text). The commands and the library functions they call raise `CLIError`, `ValueError` or `OSError`
for what the user can fix; anything else is a bug, reported as one line with exit status 1, or with
its traceback under `--debug` or `HF_REASON_DEBUG=1`.
"""

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Optional

from .commands import cmd_app, cmd_env, cmd_eval_reports, cmd_export, cmd_push, cmd_solve
from .inputs import PUZZLE_FORMATS, CLIError


# What a user can fix: a bad value, a missing or unreadable file. Every other exception is a bug.
EXPECTED_ERRORS = (CLIError, ValueError, OSError)
DEBUG_ENV = "HF_REASON_DEBUG"
EXIT_BAD_INPUT = 2  # argparse's status for a bad command line
EXIT_BUG = 1

_EPILOG = (
    f"Exit status: 0 done; {EXIT_BAD_INPUT} a bad command line or input (one line on stderr naming the file, "
    f"line or field and what was expected); {EXIT_BUG} an unexpected error (one line; --debug or {DEBUG_ENV}=1 "
    "shows its traceback, and other libraries' logged warnings)."
)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    debug_help = f"Show the traceback of an unexpected error (also: {DEBUG_ENV}=1)."
    parser = argparse.ArgumentParser(
        prog="hf-reason",
        description="Reasoning models for the Hugging Face stack.",
        epilog=_EPILOG,
    )
    parser.add_argument("--debug", action="store_true", help=debug_help)
    # every command takes --debug too, after its name; SUPPRESS keeps the top-level value when it is not given
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
    sub = parser.add_subparsers(dest="command", required=True)

    def add_parser(name: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], epilog=_EPILOG, **kwargs)

    env = add_parser("env", help="Print the versions of the stack (for bug reports).")
    env.set_defaults(func=cmd_env)

    solve = add_parser(
        "solve",
        help="Solve puzzles (Sudoku, mazes, ARC grids, token ids) with a saved TRM checkpoint.",
        description="Solve puzzles with a saved TRM. Each line of the input is one puzzle, as JSON: "
        '{"puzzle": ...} in its usual form, {"input_ids": [...]} as token ids, or the bare puzzle; optional '
        '"puzzle_identifiers" and "id" (echoed). Forms: a Sudoku as its 81-character line ("0" or "." for a '
        "blank) or a 9x9 list of digits; a maze as text (one string with a row per line, or a list of rows: "
        "'#' wall, ' ' open, 'S', 'G'); an ARC grid as a list of rows of colours 0-9. Each solution is printed "
        'as one JSON line, {"solution": ..., "steps": N}, in the form of its puzzle ({"prediction": [...]} for '
        "token ids). The model's vocab_size and seq_len say which puzzle it solves; a puzzle that does not fit "
        "is an error naming the expected size.",
    )
    solve.add_argument("model_dir", help="Folder or Hub id of a TRMForPuzzleSolving checkpoint.")
    solve.add_argument("--input", default="-", help="JSONL file of puzzles, one per line (default -: stdin).")
    solve.add_argument(
        "--format",
        default="auto",
        choices=PUZZLE_FORMATS,
        help="The puzzles' form, read and written: sudoku | maze | arc | tokens (token ids in and out) | auto "
        "(default: the model's puzzle as its config describes it; a flat list or `input_ids` is token ids).",
    )
    solve.add_argument(
        "--max-steps",
        type=_positive_int,
        default=None,
        help="Supervision-step budget, >= 1 (default: the config's).",
    )
    solve.add_argument("--no-halting", action="store_true", help="Run every step instead of the learned halting.")
    solve.set_defaults(func=cmd_solve)

    export = add_parser(
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
    export.add_argument(
        "--opset", type=int, default=None, help="ONNX opset, 12-23 (default 18; INT4 with quantized embeddings: 18+)."
    )
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
    export.add_argument(
        "--parity-samples", type=int, default=8, help="Examples in the PyTorch-vs-ORT parity check (>= 1)."
    )
    export.set_defaults(func=cmd_export)

    push = add_parser("push", help="Upload a saved model / adapter (+ ONNX export) to the Hub with its model card.")
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
        "--dry-run",
        action="store_true",
        help="Build the upload folder and print the files it holds, each file left out with the reason, and the "
        "card; upload nothing.",
    )
    push.add_argument(
        "--space",
        action="store_true",
        help="Upload as a Hugging Face Space running `hf-reason app` on the model: adds app.py, requirements.txt "
        "and the Space keys (sdk: gradio, app_file) to README.md's metadata.",
    )
    push.set_defaults(func=cmd_push)

    reports = add_parser("eval-reports", help="Score reasoning reports (JSONL) against the curated tasks.")
    reports.add_argument(
        "reports", help="JSONL, one report per line: {'task_id', 'completion', 'prompt'?, 'introspection'?}."
    )
    reports.add_argument("--out", required=True, help="Folder for summary.json, scores.csv and progress.jsonl.")
    reports.add_argument("--tasks", default=None, help="Task JSONL in the curated schema (default: the shipped set).")
    reports.add_argument("--lm", default=None, help="Causal LM folder for the perplexity part of prefix_quality.")
    reports.set_defaults(func=cmd_eval_reports)

    app = add_parser(
        "app",
        help="Serve the web app that shows the models reason (Gradio; `pip install hf-reason[app]`).",
        description="A Gradio page with a tab per family: TRM refining a Sudoku or a maze step by step, CRSM's "
        "greedy vs MCTS generation, the meta-attention report with its introspection heat-map and scores. A "
        "family without a folder runs a small untrained model, which the page says. A folder may be a "
        "save_pretrained folder or an `hf-reason export` folder (ONNX Runtime).",
    )
    app.add_argument(
        "--trm",
        action="append",
        metavar="DIR",
        help="A TRM folder: a 9x9 Sudoku solver or a maze solver (give --trm twice for both).",
    )
    app.add_argument("--crsm", default=None, metavar="DIR", help="A CRSM language model folder with its tokenizer.")
    app.add_argument("--meta", default=None, metavar="DIR", help="A meta-attention model folder with its tokenizer.")
    app.add_argument("--critic", default=None, metavar="DIR", help="A meta-attention self-critic folder.")
    app.add_argument("--host", default="127.0.0.1", help="Address to serve on (default 127.0.0.1; 0.0.0.0: all).")
    app.add_argument("--port", type=_positive_int, default=7860, help="Port (default 7860).")
    app.set_defaults(func=cmd_app)
    return parser


def _debug_requested(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "debug", False)) or os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs `hf-reason` with `argv` (default: the process's arguments) and returns the exit status.

    A bad command line exits through argparse (`SystemExit(2)` with the usage); every other error is one
    line on stderr (see the module docstring).
    """
    args = build_parser().parse_args(argv)
    # An application configures logging: other libraries' import-time warnings (bitsandbytes without its
    # optional kernels, ...) would otherwise add lines to the one-line errors; --debug shows them.
    logging.basicConfig(level=logging.WARNING if _debug_requested(args) else logging.ERROR)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        if _debug_requested(args):
            raise
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if _debug_requested(args):
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        if isinstance(error, EXPECTED_ERRORS):
            print(f"error: {message}", file=sys.stderr)
            return EXIT_BAD_INPUT
        print(
            f"error: unexpected {type(error).__name__} in `hf-reason {args.command}`: {message} (a bug: rerun "
            f"with --debug or {DEBUG_ENV}=1 for the traceback, and please report it)",
            file=sys.stderr,
        )
        return EXIT_BUG


__all__ = ["CLIError", "build_parser", "main"]
