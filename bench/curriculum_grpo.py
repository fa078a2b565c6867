"""GRPO curricula against the plain baseline: the cosine reward curriculum, or difficulty scheduling of the prompts.

One small GPT-2, warm-started by a short SFT on `<think>...</think> #### n` arithmetic (few steps, so the format is
only partly learned), then two GRPO runs from that same checkpoint, same seed, same data, same number of steps, same
rewards (`ArithmeticAnswerReward` for semantics, `FormatReward` for structure):

  * fixed       - constant weights: correctness 1 - `--end`, format `--end`; prompts drawn uniformly (the baseline)
  * cosine      - (`--compare reward`) `CosineRewardCurriculum`: format weight 1 at the first step, `--end` at the
                  last, cosine between (correctness gets the rest); both runs end on the same mix, so only the
                  schedule differs
  * difficulty  - (`--compare difficulty`) fixed weights, prompts drawn easy to hard by their number of operators
                  (`ReasoningGRPOConfig.difficulty_column="num_ops"`: `--max_ops` buckets, all unlocked at
                  `--warmup_fraction` of training); the same prompts and steps as fixed, only their order differs
  * pass_rate   - (`--compare pass_rate`) as difficulty, but the next bucket unlocks when the policy's rollouts on
                  the newest one pass (right answer in format) at `--pass_threshold` over its last 32
                  (`curriculum_schedule="pass_rate"`)

On held-out problems (none among the training prompts; greedy), after the warm start and after each run: the share
of malformed outputs (format reward below its maximum: no closed think block or no answer after it) and exact
accuracy (also per number of operators), with Wilson 95% intervals; exact McNemar (ours vs fixed, paired on the
prompts) and Cohen's h. The training curve of the format reward is kept from each run's log. Prints
`name: ours X, reference Y, ratio Z` and writes the numbers to `--output` (JSON, atomically).

    python bench/curriculum_grpo.py --quick                                   # tiny: checks it runs
    python bench/curriculum_grpo.py --quick --compare difficulty
    python bench/curriculum_grpo.py --quick --compare difficulty pass_rate     # both against one fixed run
    OMP_NUM_THREADS=2 python bench/curriculum_grpo.py --output runs/curriculum_grpo.json    # the measured runs
    OMP_NUM_THREADS=2 python bench/curriculum_grpo.py --compare difficulty --output runs/difficulty_grpo.json
"""

import argparse
import copy
import itertools
import os
import tempfile


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import AutoModelForCausalLM, set_seed  # noqa: E402
from trl import SFTConfig, SFTTrainer  # noqa: E402

from hf_reason.data import build_tokenizer, generate_arithmetic  # noqa: E402
from hf_reason.evaluation.statistics import (  # noqa: E402
    cohens_h,
    format_proportion,
    mcnemar_from_outcomes,
    wilson_interval,
)
from hf_reason.file_io import atomic_write_json  # noqa: E402
from hf_reason.trainers import ReasoningGRPOConfig, ReasoningGRPOTrainer  # noqa: E402
from hf_reason.trainers.curriculum import CosineRewardCurriculum  # noqa: E402
from hf_reason.trainers.rewards import ArithmeticAnswerReward, FormatReward  # noqa: E402
from hf_reason.trainers.star import new_small_gpt2  # noqa: E402


# the system each comparison sets against "fixed"
OURS = {"reward": "cosine", "difficulty": "difficulty", "pass_rate": "pass_rate"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny model and data: checks the script runs")
    parser.add_argument(
        "--compare",
        nargs="+",
        choices=sorted(OURS),
        default=["reward"],
        help="reward: cosine reward curriculum; difficulty: prompts on a fixed schedule; pass_rate: prompts by pass "
        "rate (difficulty and pass_rate together share one warm start and one fixed run)",
    )
    parser.add_argument("--output", default=None, help="JSON file for the numbers")
    parser.add_argument(
        "--sft_steps", type=int, default=None, help="warm-start SFT steps (default 60, difficulty 200; quick 4)"
    )
    parser.add_argument("--grpo_steps", type=int, default=None, help="GRPO steps per run (default 150; quick 2)")
    parser.add_argument("--num_eval", type=int, default=None, help="held-out problems (default 400; quick 16)")
    parser.add_argument("--hidden_size", type=int, default=None, help="default 64 (quick 32)")
    parser.add_argument("--num_layers", type=int, default=2, help="GPT-2 layers")
    parser.add_argument("--sft_rows", type=int, default=512, help="warm-start SFT problems")
    parser.add_argument("--sft_learning_rate", type=float, default=3e-3, help="warm-start SFT peak learning rate")
    parser.add_argument("--grpo_learning_rate", type=float, default=5e-4, help="GRPO learning rate of every run")
    parser.add_argument("--end", type=float, default=0.2, help="the format weight both runs end on")
    parser.add_argument(
        "--max_ops", type=int, default=None, help="operators per problem: 1 to this (default 2; difficulty 4)"
    )
    parser.add_argument("--warmup_fraction", type=float, default=0.5, help="difficulty: all buckets unlocked here")
    parser.add_argument(
        "--pass_threshold", type=float, default=0.5, help="pass_rate: the pass rate that unlocks the next bucket"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    # difficulty: a warm start that solves some one-operator problems, so that easy prompts give GRPO groups a signal
    args.compare = list(dict.fromkeys([args.compare] if isinstance(args.compare, str) else args.compare))
    if "reward" in args.compare and len(args.compare) > 1:
        parser.error("--compare reward runs alone (its warm start and problems differ from the prompt schedules')")
    prompts_compared = args.compare != ["reward"]
    sft_steps = (4, 200) if prompts_compared else (4, 60)
    defaults = dict(sft_steps=sft_steps, grpo_steps=(2, 150), num_eval=(16, 400), hidden_size=(32, 64))
    for name, (quick, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if args.max_ops is None:
        args.max_ops = 4 if prompts_compared else 2
    return args


def completion_budget(args) -> int:
    """Tokens a completion may take. The longest worked chain of k operators is about 13k + 5 byte-level
    tokens with the tags, the `#### n` answer and EOS, so a fixed budget that fits two operators cuts off
    the three- and four-operator problems the difficulty comparison needs."""
    return 24 if args.quick else 16 + 12 * args.max_ops


def think_format(completion: str) -> str:
    work, answer = completion.rsplit("####", 1)
    return f" <think>{work.rstrip()}</think> ####{answer}"


def warm_start(args, tokenizer, folder: str) -> str:
    set_seed(args.seed)
    model = new_small_gpt2(tokenizer, args.hidden_size, num_layers=args.num_layers, n_positions=128)
    data = generate_arithmetic(args.sft_rows, max_ops=args.max_ops, seed=args.seed + 1)
    rows = {"prompt": data["prompt"], "completion": [think_format(c) for c in data["completion"]]}
    trainer = SFTTrainer(
        model=model, processing_class=tokenizer, train_dataset=Dataset.from_dict(rows),
        args=SFTConfig(
            output_dir=os.path.join(folder, "trainer"), max_steps=args.sft_steps, learning_rate=args.sft_learning_rate,
            per_device_train_batch_size=16, completion_only_loss=True, use_cpu=True, bf16=False, report_to=[],
            save_strategy="no", seed=args.seed, disable_tqdm=True, logging_steps=max(1, args.sft_steps // 4),
        ),
    )  # fmt: skip
    trainer.train()
    trainer.save_model(os.path.join(folder, "sft"))
    return os.path.join(folder, "sft")


def grpo(args, tokenizer, start: str, folder: str, system: str):
    set_seed(args.seed)
    data = generate_arithmetic(2000, max_ops=args.max_ops, seed=args.seed).select_columns(
        ["prompt", "answer", "num_ops"]
    )
    curriculum = dict(difficulty_column="num_ops", curriculum_num_buckets=args.max_ops)
    if system == "pass_rate":  # a pass: a right answer in format, total reward (1 - end) + end
        curriculum.update(
            curriculum_schedule="pass_rate", curriculum_pass_threshold=args.pass_threshold, curriculum_pass_reward=1.0
        )
    config = ReasoningGRPOConfig(
        output_dir=folder, max_steps=args.grpo_steps, per_device_train_batch_size=8, num_generations=8,
        max_completion_length=completion_budget(args), learning_rate=args.grpo_learning_rate, logging_steps=1, report_to=[],
        save_strategy="no", seed=args.seed, disable_tqdm=True, bf16=False, use_cpu=True, disable_dropout=True,
        reward_weights=[1.0 - args.end, args.end], curriculum_warmup_fraction=args.warmup_fraction,
        **(curriculum if system in ("difficulty", "pass_rate") else {}),
    )  # fmt: skip
    trainer = ReasoningGRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(start),
        reward_funcs=[ArithmeticAnswerReward(), FormatReward()],
        args=config,
        processing_class=tokenizer,
        train_dataset=data,
    )
    if system == "cosine":
        trainer.add_callback(
            CosineRewardCurriculum(trainer, structure_indices=[1], semantic_indices=[0], start=1.0, end=args.end)
        )
    trainer.train()
    logs = trainer.state.log_history
    curves = {
        "format_reward": [log["rewards/format/mean"] for log in logs if "rewards/format/mean" in log],
        # groups whose completions all got the same reward: no learning signal (what drawing easy prompts first cuts)
        "zero_std_share": [log["frac_reward_zero_std"] for log in logs if "frac_reward_zero_std" in log],
        "trained_num_ops": trained_difficulty(trainer, data["num_ops"]),
    }
    if system == "pass_rate":
        curves["unlock_chunks"] = list(trainer.curriculum_sampler.unlock_chunks)
    return trainer.model, curves


def trained_difficulty(trainer, num_ops) -> list:
    """Mean `num_ops` of the prompts of each quarter of the run, from a copy of the trainer's sampler (its stream is
    seeded and, under the pass-rate schedule, given the run's unlocks, so the copy draws what training drew)."""
    generation_batch = trainer.args.generation_batch_size
    repeat = trainer.num_iterations * trainer.args.steps_per_generation
    chunks = trainer.args.max_steps * trainer.args.gradient_accumulation_steps // repeat
    if trainer.curriculum_sampler is not None:  # a copy: the trainer keeps its own sampler
        sampler = copy.deepcopy(trainer.curriculum_sampler)
        sampler.set_epoch(0)
    else:
        sampler = trainer._get_train_sampler()
    stream = list(itertools.islice(iter(sampler), chunks * generation_batch * repeat))
    per_step = [
        num_ops[i] for i in stream[:: generation_batch * repeat]
    ]  # one prompt per generation batch in these runs
    quarters = np.array_split(np.asarray(per_step, dtype=float), min(4, len(per_step)))
    return [float(q.mean()) for q in quarters]


@torch.no_grad()
def held_out_outcomes(model, tokenizer, problems, max_new_tokens: int) -> dict:
    """Per problem: malformed (format reward below its maximum) and correct (exact answer), greedy."""
    model.eval()
    texts = []
    for start in range(0, len(problems), 32):
        prompts = problems["prompt"][start : start + 32]
        batch = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left")
        out = model.generate(
            **batch, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
        decoded = tokenizer.batch_decode(out[:, batch["input_ids"].size(1) :], skip_special_tokens=False)
        texts.extend(t.split(tokenizer.eos_token)[0].replace(tokenizer.pad_token, "") for t in decoded)
    kwargs = dict(prompts=list(problems["prompt"]), completions=texts, answer=list(problems["answer"]))
    return {
        "malformed": [score < 1.0 for score in FormatReward()(**kwargs)],
        "correct": [score == 1.0 for score in ArithmeticAnswerReward()(**kwargs)],
    }


def by_difficulty(correct, num_ops) -> dict:
    """Accuracy per number of operators, with its Wilson 95% interval."""
    table = {}
    for ops in sorted(set(num_ops)):
        hits = [c for c, k in zip(correct, num_ops) if k == ops]
        table[str(ops)] = {
            "n": len(hits),
            "accuracy": sum(hits) / len(hits),
            "wilson": wilson_interval(sum(hits), len(hits)),
        }
    return table


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    # the think tags are text, not special tokens: GRPO decodes completions with skip_special_tokens=True before
    # the format reward reads them
    tokenizer = build_tokenizer(vocab_size=512, extra_tokens=("<think>", "</think>"))
    train_prompts = set(generate_arithmetic(2000, max_ops=args.max_ops, seed=args.seed)["prompt"])
    held_out = generate_arithmetic(4 * args.num_eval, max_ops=args.max_ops, seed=args.seed + 7)
    keep, seen = [], set(train_prompts)
    for i, prompt in enumerate(held_out["prompt"]):
        if prompt not in seen and len(keep) < args.num_eval:
            seen.add(prompt)
            keep.append(i)
    held_out = held_out.select(keep)
    max_new_tokens = completion_budget(args)
    ours_names = [OURS[name] for name in args.compare]
    results, curves = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        start = warm_start(args, tokenizer, folder)
        results["warm_start"] = held_out_outcomes(
            AutoModelForCausalLM.from_pretrained(start), tokenizer, held_out, max_new_tokens
        )
        for name in ("fixed", *ours_names):
            model, curves[name] = grpo(args, tokenizer, start, os.path.join(folder, name), name)
            results[name] = held_out_outcomes(model, tokenizer, held_out, max_new_tokens)
    n = len(held_out)
    report = {"n": n, "config": vars(args), "training_curves": curves, "systems": {}}
    for name, outcome in results.items():
        report["systems"][name] = {key: sum(values) / n for key, values in outcome.items()}
        report["systems"][name]["wilson"] = {key: wilson_interval(sum(values), n) for key, values in outcome.items()}
        report["systems"][name]["accuracy_by_num_ops"] = by_difficulty(outcome["correct"], held_out["num_ops"])
        trained = f", trained num_ops by quarter {curves[name]['trained_num_ops']}" if name in curves else ""
        print(
            f"[{name}] malformed {format_proportion(sum(outcome['malformed']), n)}, "
            f"accuracy {format_proportion(sum(outcome['correct']), n)}{trained}"
        )
    for ours_name in ours_names:
        pair = report[f"{ours_name}_vs_fixed"] = {}
        for key in ("malformed", "correct"):
            ours, reference = results[ours_name][key], results["fixed"][key]
            b, c, p = mcnemar_from_outcomes(ours, reference)
            rate_ours, rate_ref = sum(ours) / n, sum(reference) / n
            pair[key] = {
                ours_name: rate_ours, "fixed": rate_ref, "b": b, "c": c, "p": p,
                "cohens_h": cohens_h(rate_ours, rate_ref),
            }  # fmt: skip
            ratio = rate_ours / rate_ref if rate_ref else float("nan")
            label = "format_collapse (malformed share)" if key == "malformed" else "held_out_accuracy"
            print(
                f"{label} [{ours_name}]: ours {rate_ours:.3f}, reference {rate_ref:.3f}, ratio {ratio:.3f} "
                f"(McNemar p={p:.3g})"
            )
    if args.output:
        atomic_write_json(args.output, report, indent=2)
    return report


if __name__ == "__main__":
    main()
