"""Base -> SFT -> DPO on the generated instruction set, with the three models evaluated on held-out instructions.

Stages, each in its own folder under --output_dir and skipped when complete (its `done.json`, written last,
records the options it was built with; a complete stage is reused as it is, so delete it and the stages after
it to rebuild with other options):

  base  a new small GPT-2 pretrained on the grounded task *without* constraints (prompt: the fact sheet;
        completion: a plain description): it knows the domain and has never seen a constrained response,
        as a pretrained base model has not
  sft   TRL's `SFTTrainer` from the base on (instruction prompt, verified response) rows, loss on the response
  pairs preference pairs on other training prompts (--pairs): `generated`, the verified response against the
        generated hard negative (a refusal, a hallucinated fact or a format violation); `bon`, best-of-N from
        the SFT model's own samples scored by the instruction checks (chosen: a sample that follows every
        instruction; rejected: the most similar sample that breaks at least one); `both`, the two together
  dpo   TRL's `DPOTrainer` from the SFT model on those pairs
  eval  greedy answers of base, SFT and DPO to held-out prompts (objects never seen in training), after the
        sentinel-prompt check on each loaded model; IFEval's four accuracies, exact McNemar per step
        (base -> SFT, SFT -> DPO; Benjamini-Hochberg over the two steps) and per instruction type (BH across
        types), Wilson intervals, Cohen's h; the share of answers with a refusal or an invented fact

    python examples/instruction_pipeline.py --output_dir runs/instructions --quick     # checks it runs
    python examples/instruction_pipeline.py --output_dir runs/instructions             # the measured run

The goal this run checks: base -> SFT and SFT -> DPO both significant (prompt-level strict accuracy, after
correction) and no instruction type where DPO is significantly worse than SFT.
"""

import argparse
import json
import os
import shutil
from pathlib import Path


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import torch  # noqa: E402
from datasets import Dataset, load_from_disk  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed  # noqa: E402

from hf_reason.data import build_preference_pairs, build_tokenizer  # noqa: E402
from hf_reason.data.instructions import (  # noqa: E402
    INVENTED_FACTS,
    REFUSAL,
    generate_instruction_tasks,
    unconstrained_example,
)
from hf_reason.evaluation import evaluate_instruction_following, run_sentinel_check  # noqa: E402
from hf_reason.evaluation.instruction_comparison import compare_instruction_following  # noqa: E402
from hf_reason.evaluation.instruction_following import follows_instructions  # noqa: E402
from hf_reason.evaluation.statistics import format_proportion  # noqa: E402
from hf_reason.file_io import atomic_write_json, read_json_object  # noqa: E402
from hf_reason.trainers.star import StarConfig, new_small_gpt2, sample_completions, sft_on_rows  # noqa: E402


SYSTEMS = ("base", "sft", "dpo")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--quick", action="store_true", help="tiny model and data: checks the script runs")
    parser.add_argument("--num_base", type=int, default=None, help="unconstrained rows for the base (default 2000)")
    parser.add_argument("--num_sft", type=int, default=None, help="SFT rows (default 2000)")
    parser.add_argument("--num_pairs", type=int, default=None, help="DPO pairs (default 1000)")
    parser.add_argument("--num_eval", type=int, default=None, help="held-out prompts (default 300)")
    parser.add_argument("--base_steps", type=int, default=None, help="default 400")
    parser.add_argument("--sft_steps", type=int, default=None, help="default 400")
    parser.add_argument("--dpo_steps", type=int, default=None, help="default 150")
    parser.add_argument("--pairs", choices=("generated", "bon", "both"), default="generated")
    parser.add_argument("--num_samples", type=int, default=8, help="N of best-of-N (--pairs bon / both)")
    parser.add_argument("--dpo_lr", type=float, default=1e-4)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--hidden_size", type=int, default=None, help="default 128")
    parser.add_argument("--num_layers", type=int, default=None, help="default 3")
    parser.add_argument("--max_new_tokens", type=int, default=None, help="default 120")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    defaults = dict(num_base=(16, 2000), num_sft=(16, 2000), num_pairs=(8, 1000), num_eval=(12, 300))
    defaults.update(base_steps=(3, 400), sft_steps=(3, 400), dpo_steps=(2, 150), hidden_size=(32, 128))
    defaults.update(num_layers=(1, 3), max_new_tokens=(16, 120))
    for name, (quick, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    return args


def datasets_for(args):
    """Base, SFT and pair rows from disjoint draws of the training objects; held-out rows from other objects."""
    base_rows = [
        dict(zip(("prompt", "completion"), unconstrained_example(r["object"], json.loads(r["facts"]), seed=i)))
        for i, r in enumerate(generate_instruction_tasks(args.num_base, "train", seed=args.seed + 1))
    ]
    sft = generate_instruction_tasks(args.num_sft, "train", seed=args.seed + 2)
    pairs = generate_instruction_tasks(args.num_pairs, "train", seed=args.seed + 3)
    held_out = generate_instruction_tasks(args.num_eval, "held_out", seed=args.seed + 4)
    sft_rows = [{"prompt": r["prompt"], "completion": r["chosen"]} for r in sft]
    return base_rows, sft_rows, pairs, held_out


def _done(folder: Path) -> bool:
    return (folder / "done.json").is_file()


def _star_config(args, folder: Path, steps: int) -> StarConfig:
    return StarConfig(
        output_dir=str(folder), sft_steps=steps, seed=args.seed, batch_size=4 if args.quick else 16, max_length=384
    )


def build_base(args, root: Path, rows, tokenizer) -> Path:
    folder = root / "base"
    if not _done(folder):
        set_seed(args.seed)

        def fresh():
            return new_small_gpt2(tokenizer, args.hidden_size, args.num_layers, n_positions=512)

        sft_on_rows(fresh, None, tokenizer, rows, folder, _star_config(args, folder, args.base_steps))
        atomic_write_json(folder / "done.json", {"options": vars(args), "rows": len(rows), "steps": args.base_steps})
    return folder / "model"


def build_sft(args, root: Path, base: Path, rows, tokenizer) -> Path:
    folder = root / "sft"
    if not _done(folder):
        set_seed(args.seed)
        sft_on_rows(None, base, tokenizer, rows, folder, _star_config(args, folder, args.sft_steps))
        atomic_write_json(
            folder / "done.json",
            {"options": vars(args), "rows": len(rows), "steps": args.sft_steps, "from": str(base)},
        )
    return folder / "model"


def bon_pairs(args, sft: Path, tasks, tokenizer) -> list[dict]:
    """Best-of-N pairs from the SFT model's samples, scored by the share of instructions followed (strict)."""
    model = AutoModelForCausalLM.from_pretrained(sft)
    pairs = []
    for start in range(0, len(tasks), 16):
        chunk = tasks[start : start + 16]
        samples = sample_completions(
            model, tokenizer, chunk["prompt"], args.num_samples, 1.0, args.max_new_tokens, seed=args.seed + start
        )
        for prompt, ids, kwargs, group in zip(chunk["prompt"], chunk["instruction_id_list"], chunk["kwargs"], samples):
            group = [text.strip() for text in group]
            kwargs = [json.loads(k) for k in kwargs]
            rewards = [sum(follows_instructions(text, ids, kwargs)) / len(ids) for text in group]
            # a chosen sample follows every instruction; the rejected one breaks at least one of them
            pair = build_preference_pairs(
                prompt, group, rewards, min_margin=1 / len(ids) - 1e-9, min_chosen_reward=1.0
            )
            if pair is not None:
                pairs.append({key: pair[key] for key in ("prompt", "chosen", "rejected")})
    return pairs


def build_pairs(args, root: Path, sft: Path, tasks, tokenizer) -> Dataset:
    folder = root / "pairs"
    if not _done(folder):
        rows = []
        if args.pairs in ("generated", "both"):
            rows += [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]} for r in tasks]
        if args.pairs in ("bon", "both"):
            rows += bon_pairs(args, sft, tasks, tokenizer)
        if not rows:
            raise RuntimeError(
                "best-of-N found no prompt with a sample that follows every instruction and one that does not: "
                "train the SFT model longer (--sft_steps), sample more (--num_samples) or use --pairs both"
            )
        Dataset.from_list(rows).save_to_disk(folder / "data")
        atomic_write_json(folder / "done.json", {"options": vars(args), "pairs": len(rows), "kind": args.pairs})
    return load_from_disk(folder / "data")


def build_dpo(args, root: Path, sft: Path, pairs, tokenizer) -> Path:
    from trl import DPOConfig, DPOTrainer

    folder = root / "dpo"
    if not _done(folder):
        set_seed(args.seed)
        config = DPOConfig(
            output_dir=str(folder / "trainer"), max_steps=args.dpo_steps, learning_rate=args.dpo_lr, beta=args.beta,
            per_device_train_batch_size=4 if args.quick else 16, max_length=384, use_cpu=not torch.cuda.is_available(),
            bf16=False, report_to=[], save_strategy="no", seed=args.seed, disable_tqdm=True,
            logging_steps=max(1, args.dpo_steps // 5),
        )  # fmt: skip
        model = AutoModelForCausalLM.from_pretrained(sft)
        trainer = DPOTrainer(model=model, args=config, train_dataset=pairs, processing_class=tokenizer)
        trainer.train()
        trainer.save_model(str(folder / "model"))
        tokenizer.save_pretrained(folder / "model")
        shutil.rmtree(folder / "trainer", ignore_errors=True)
        atomic_write_json(
            folder / "done.json",
            {"options": vars(args), "pairs": len(pairs), "steps": args.dpo_steps, "from": str(sft)},
        )
    return folder / "model"


@torch.no_grad()
def answer(model, tokenizer, prompts, max_new_tokens: int, batch_size: int = 16) -> list[str]:
    """Greedy completions, cut at the tokenizer's EOS."""
    model.eval()
    texts = []
    for start in range(0, len(prompts), batch_size):
        batch = tokenizer(prompts[start : start + batch_size], return_tensors="pt", padding=True, padding_side="left")
        out = model.generate(
            **batch, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
        decoded = tokenizer.batch_decode(out[:, batch["input_ids"].size(1) :], skip_special_tokens=False)
        texts.extend(t.split(tokenizer.eos_token)[0].replace(tokenizer.pad_token, "").strip() for t in decoded)
    return texts


def evaluate(args, root: Path, models: dict, held_out, tokenizer) -> dict:
    ids = held_out["instruction_id_list"]
    kwargs = [[json.loads(k) for k in row] for row in held_out["kwargs"]]
    results, answers, sentinels, content = {}, {}, {}, {}
    for name, path in models.items():
        model = AutoModelForCausalLM.from_pretrained(path)
        # contamination would make the scores measure a chat template instead of the model: stop here
        sentinels[name] = run_sentinel_check(model, tokenizer).outputs
        answers[name] = answer(model, tokenizer, list(held_out["prompt"]), args.max_new_tokens)
        results[name] = evaluate_instruction_following(answers[name], ids, kwargs)
        content[name] = {
            "refusal_share": sum(REFUSAL in a for a in answers[name]) / len(answers[name]),
            "invented_fact_share": sum(any(f in a for f in INVENTED_FACTS) for a in answers[name])
            / len(answers[name]),
        }
    report = compare_instruction_following(results, [("base", "sft"), ("sft", "dpo")])
    report["content"], report["sentinel_outputs"] = content, sentinels
    steps = report["comparisons"]
    report["goal"] = {
        "base_to_sft_significant": steps["base->sft"]["significant_bh"] and steps["base->sft"]["cohens_h"] > 0,
        "sft_to_dpo_significant": steps["sft->dpo"]["significant_bh"] and steps["sft->dpo"]["cohens_h"] > 0,
        "no_type_where_dpo_is_worse": not steps["sft->dpo"]["worse_types"],
    }
    atomic_write_json(root / "eval.json", report, indent=2)
    atomic_write_json(root / "answers.json", {"prompts": list(held_out["prompt"]), **answers}, indent=2)
    return report


def print_report(report: dict) -> None:
    n = report["systems"]["base"]["num_prompts"]
    for name in SYSTEMS:
        summary = report["systems"][name]
        k = round(summary["prompt_strict"] * n)
        print(
            f"{name:<5} prompt strict {format_proportion(k, n)}, prompt loose {summary['prompt_loose']:.3f}, "
            f"instruction strict {summary['instruction_strict']:.3f}, loose {summary['instruction_loose']:.3f}; "
            f"refusals {report['content'][name]['refusal_share']:.3f}, "
            f"invented facts {report['content'][name]['invented_fact_share']:.3f}"
        )
    for step, comparison in report["comparisons"].items():
        test = comparison["prompt_strict"]
        print(
            f"{step}: ours {test['later']:.3f}, reference {test['earlier']:.3f}, McNemar b={test['b']} c={test['c']} "
            f"p={test['p']:.3g} (BH over steps {comparison['p_bh']:.3g}), Cohen's h {comparison['cohens_h']:+.3f}; "
            f"types worse: {comparison['worse_types'] or 'none'}"
        )
    print(f"goal: {report['goal']}")


def main(argv=None) -> dict:
    args = parse_args(argv)
    root = Path(args.output_dir)
    root.mkdir(parents=True, exist_ok=True)
    base_rows, sft_rows, pairs, held_out = datasets_for(args)
    tokenizer_dir = root / "tokenizer"
    if not (tokenizer_dir / "tokenizer_config.json").is_file():
        texts = [r["prompt"] + r["completion"] for r in base_rows + sft_rows] + list(pairs["rejected"])
        build_tokenizer(vocab_size=512 if args.quick else 2048, texts=texts).save_pretrained(tokenizer_dir)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    base = build_base(args, root, base_rows, tokenizer)
    sft = build_sft(args, root, base, sft_rows, tokenizer)
    dpo = build_dpo(args, root, sft, build_pairs(args, root, sft, pairs, tokenizer), tokenizer)
    if (root / "eval.json").is_file():
        report = read_json_object(root / "eval.json")
    else:
        report = evaluate(args, root, {"base": base, "sft": sft, "dpo": dpo}, held_out, tokenizer)
    print_report(report)
    return report


if __name__ == "__main__":
    main()
