"""STaR on generated arithmetic: a weak base model bootstraps its own worked solutions, with and without
rationalisation.

1. ``base``: a small GPT-2 fine-tuned on a few worked solutions (`--num_seed`; the weak starting policy).
2. STaR (`hf_reason.trainers.star.run_star`): `--iterations` rounds of sampling rationales for `--num_train`
   problems given only their answers, keeping the verified ones (exact answer check), rationalising failures
   with the answer as a hint, SFT from the base model, held-out evaluation (greedy, `--num_eval` problems
   that share no expression with training).
3. The same loop without rationalisation (the ablation), unless `--no_ablation`.

Every stage resumes (rerun the command after an interruption) and writes provenance; the summary gives each
iteration's held-out accuracy with its Wilson interval, the exact McNemar test of the last iteration against
iteration 0 and of rationalisation against the ablation, and Cohen's h. Goal: last iteration >= iteration 0 +
10 points.

    python examples/star.py --output_dir runs/star --quick     # tiny: a few minutes, checks it runs
    python examples/star.py --output_dir runs/star             # the measured run
"""

import argparse
import os
from pathlib import Path


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed  # noqa: E402

from hf_reason.data import build_tokenizer, is_correct  # noqa: E402
from hf_reason.data.arithmetic import distinct_arithmetic  # noqa: E402
from hf_reason.evaluation.statistics import cohens_h, format_proportion, mcnemar_from_outcomes  # noqa: E402
from hf_reason.file_io import atomic_write_json, read_json_object  # noqa: E402
from hf_reason.trainers.star import StarConfig, new_small_gpt2, run_star, sft_on_rows  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--quick", action="store_true", help="tiny model and data: checks the script runs")
    parser.add_argument("--num_seed", type=int, default=None, help="worked solutions for the base (default 300)")
    parser.add_argument("--num_train", type=int, default=None, help="STaR problems (default 3000)")
    parser.add_argument("--num_eval", type=int, default=None, help="held-out problems (default 500)")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--num_samples", type=int, default=None, help="rationales per problem (default 4)")
    parser.add_argument("--base_steps", type=int, default=None, help="SFT steps of the base (default 300)")
    parser.add_argument("--sft_steps", type=int, default=None, help="SFT steps per iteration (default 600)")
    parser.add_argument("--hidden_size", type=int, default=None, help="default 128")
    parser.add_argument("--num_layers", type=int, default=None, help="default 3")
    parser.add_argument("--max_ops", type=int, default=3)
    parser.add_argument("--max_value", type=int, default=9)
    parser.add_argument("--no_ablation", action="store_true", help="skip the run without rationalisation")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    defaults = dict(num_seed=(16, 300), num_train=(16, 3000), num_eval=(16, 500), num_samples=(2, 4))
    defaults.update(base_steps=(4, 300), sft_steps=(2, 600), hidden_size=(32, 128), num_layers=(1, 3))
    for name, (quick, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    return args


def disjoint_problems(args):
    """Seed (worked), STaR (answers only) and held-out problems that share no prompt."""
    rows = distinct_arithmetic(
        args.num_seed + args.num_train + args.num_eval, max_ops=args.max_ops, max_value=args.max_value, seed=11
    )
    from datasets import Dataset

    seed_rows = rows[: args.num_seed]
    train = rows[args.num_seed : args.num_seed + args.num_train]
    held_out = rows[args.num_seed + args.num_train :]
    as_set = lambda chunk, keep: Dataset.from_dict({k: [r[k] for r in chunk] for k in keep})  # noqa: E731
    return (
        as_set(seed_rows, ("prompt", "completion")),
        as_set(train, ("prompt", "answer")),
        as_set(held_out, ("prompt", "answer")),
    )


def build_base(args, root: Path, seed_set, tokenizer) -> Path:
    """The weak base policy, trained once (its folder is complete when it holds `base_done.json`)."""
    folder = root / "base"
    if (folder / "base_done.json").is_file():
        return folder / "model"
    set_seed(args.seed)

    def fresh():
        return new_small_gpt2(tokenizer, args.hidden_size, args.num_layers)

    config = StarConfig(output_dir=str(folder), sft_steps=args.base_steps, seed=args.seed)
    sft_on_rows(fresh, None, tokenizer, list(seed_set), folder, config)
    atomic_write_json(folder / "base_done.json", {"rows": len(seed_set), "steps": args.base_steps})
    return folder / "model"


def summarize(runs: dict, args) -> dict:
    summary = {}
    for name, records in runs.items():
        lines = []
        for record in records:
            k = round(record["accuracy"] * record["n"])
            lines.append(f"iteration {record['iteration']}: {format_proportion(k, record['n'])}")
        print(f"[{name}] " + "; ".join(lines))
        summary[name] = records
    folder = Path(args.output_dir)
    first = read_json_object(folder / "rationalize" / "iter_0" / "eval.json")["correct"]
    last = read_json_object(folder / "rationalize" / f"iter_{args.iterations}" / "eval.json")["correct"]
    b, c, p = mcnemar_from_outcomes(last, first)
    gain = (sum(last) - sum(first)) / len(first)
    summary["last_vs_base"] = {"gain_points": 100 * gain, "b": b, "c": c, "p": p, "goal_points": 10.0}
    summary["last_vs_base"]["cohens_h"] = cohens_h(sum(last) / len(last), sum(first) / len(first))
    print(f"star: ours {sum(last) / len(last):.3f}, reference {sum(first) / len(first):.3f} (iteration 0), "
          f"gain {100 * gain:+.1f} points (goal +10), McNemar p={p:.3g}")  # fmt: skip
    if "no_rationalize" in runs:
        ablation = read_json_object(folder / "no_rationalize" / f"iter_{args.iterations}" / "eval.json")["correct"]
        b, c, p = mcnemar_from_outcomes(last, ablation)
        summary["rationalize_vs_ablation"] = {"b": b, "c": c, "p": p}
        print(f"rationalisation: ours {sum(last) / len(last):.3f}, reference {sum(ablation) / len(ablation):.3f} "
              f"(without), McNemar p={p:.3g}")  # fmt: skip
    atomic_write_json(folder / "summary.json", summary, indent=2)
    return summary


def main(argv=None) -> dict:
    args = parse_args(argv)
    root = Path(args.output_dir)
    root.mkdir(parents=True, exist_ok=True)
    tokenizer_dir = root / "tokenizer"
    if not (tokenizer_dir / "tokenizer_config.json").is_file():
        build_tokenizer().save_pretrained(tokenizer_dir)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    seed_set, train, held_out = disjoint_problems(args)
    base = build_base(args, root, seed_set, tokenizer)
    runs = {}
    variants = [("rationalize", True)] + ([] if args.no_ablation else [("no_rationalize", False)])
    for name, rationalize in variants:
        config = StarConfig(
            output_dir=str(root / name), num_iterations=args.iterations, num_samples=args.num_samples,
            rationalize=rationalize, sft_steps=args.sft_steps, seed=args.seed,
            chunk_size=8 if args.quick else 64, max_new_tokens=16 if args.quick else 48,
            batch_size=4 if args.quick else 16,
        )  # fmt: skip
        runs[name] = run_star(
            lambda: AutoModelForCausalLM.from_pretrained(base), tokenizer, train, held_out, is_correct, config
        )
    return summarize(runs, args)


if __name__ == "__main__":
    torch.set_num_threads(max(1, torch.get_num_threads()))
    main()
