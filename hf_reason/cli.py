"""The `hf-reason` command line: `hf-reason env`, `hf-reason solve MODEL_DIR ...`."""

import argparse
import json
import sys
from typing import Optional, Sequence


def _cmd_env(args: argparse.Namespace) -> int:
    import importlib.metadata as md
    import platform

    packages = ["hf-reason", "torch", "transformers", "trl", "peft", "accelerate", "datasets", "optimum",
                "optimum-onnx", "onnxruntime", "safetensors", "tokenizers"]
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-reason", description="Reasoning models for the Hugging Face stack.")
    sub = parser.add_subparsers(dest="command", required=True)

    env = sub.add_parser("env", help="Print the versions of the stack (for bug reports).")
    env.set_defaults(func=_cmd_env)

    solve = sub.add_parser("solve", help="Solve puzzles with a saved TRM checkpoint.")
    solve.add_argument("model_dir", help="Directory or Hub id of a TRMForPuzzleSolving checkpoint.")
    solve.add_argument("--input", default="-", help="JSONL of puzzles: token lists or {'input_ids': [...]} (- = stdin).")
    solve.add_argument("--max-steps", type=int, default=None, help="Supervision-step budget (default: the config's).")
    solve.add_argument("--no-halting", action="store_true", help="Run every step instead of the learned halting.")
    solve.set_defaults(func=_cmd_solve)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
