"""Format collapse in GRPO with and without the cosine structure-to-semantics reward curriculum.

One small GPT-2, warm-started by a short SFT on `<think>...</think> #### n` arithmetic (few steps, so the format is
only partly learned), then two GRPO runs from that same checkpoint, same seed, same data, same rewards
(`ArithmeticAnswerReward` for semantics, `FormatReward` for structure):

  * fixed   - constant weights: correctness 1 - `--end`, format `--end` (the plain baseline)
  * cosine  - `CosineRewardCurriculum`: format weight 1 at the first step, `--end` at the last, cosine between
              (correctness gets the rest); both runs end on the same mix, so only the schedule differs

On held-out problems (none among the training prompts; greedy), after the warm start and after each run: the share of malformed outputs (format
reward below its maximum: no closed think block or no answer after it) and exact accuracy, with Wilson 95%
intervals; exact McNemar (cosine vs fixed, paired on the prompts) and Cohen's h. The training curve of the
format reward is kept from each run's log. Prints `name: ours X, reference Y, ratio Z` (ours = cosine) and
writes the numbers to `--output` (JSON, atomically).

    python bench/curriculum_grpo.py --quick                                   # tiny: checks it runs
    OMP_NUM_THREADS=2 python bench/curriculum_grpo.py --output runs/curriculum_grpo.json    # the measured run
"""

import argparse
import os
import tempfile


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import AutoModelForCausalLM, set_seed  # noqa: E402
from trl import SFTConfig, SFTTrainer  # noqa: E402

from hf_reason.data import build_tokenizer, generate_arithmetic  # noqa: E402
from hf_reason.evaluation.statistics import cohens_h, format_proportion, mcnemar_from_outcomes  # noqa: E402
from hf_reason.file_io import atomic_write_json  # noqa: E402
from hf_reason.trainers import ReasoningGRPOConfig, ReasoningGRPOTrainer  # noqa: E402
from hf_reason.trainers.curriculum import CosineRewardCurriculum  # noqa: E402
from hf_reason.trainers.rewards import ArithmeticAnswerReward, FormatReward  # noqa: E402
from hf_reason.trainers.star import new_small_gpt2  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny model and data: checks the script runs")
    parser.add_argument("--output", default=None, help="JSON file for the numbers")
    parser.add_argument("--sft_steps", type=int, default=None, help="warm-start SFT steps (default 60; quick 4)")
    parser.add_argument("--grpo_steps", type=int, default=None, help="GRPO steps per run (default 150; quick 2)")
    parser.add_argument("--num_eval", type=int, default=None, help="held-out problems (default 400; quick 16)")
    parser.add_argument("--hidden_size", type=int, default=None, help="default 64 (quick 32)")
    parser.add_argument("--end", type=float, default=0.2, help="the format weight both runs end on")
    parser.add_argument("--max_ops", type=int, default=2, help="operators per problem: 1 to this")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    defaults = dict(sft_steps=(4, 60), grpo_steps=(2, 150), num_eval=(16, 400), hidden_size=(32, 64))
    for name, (quick, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    return args


def think_format(completion: str) -> str:
    work, answer = completion.rsplit("####", 1)
    return f" <think>{work.rstrip()}</think> ####{answer}"


def warm_start(args, tokenizer, folder: str) -> str:
    set_seed(args.seed)
    model = new_small_gpt2(tokenizer, args.hidden_size, num_layers=2, n_positions=128)
    data = generate_arithmetic(512, max_ops=args.max_ops, seed=args.seed + 1)
    rows = {"prompt": data["prompt"], "completion": [think_format(c) for c in data["completion"]]}
    trainer = SFTTrainer(
        model=model, processing_class=tokenizer, train_dataset=Dataset.from_dict(rows),
        args=SFTConfig(
            output_dir=os.path.join(folder, "trainer"), max_steps=args.sft_steps, learning_rate=3e-3,
            per_device_train_batch_size=16, completion_only_loss=True, use_cpu=True, bf16=False, report_to=[],
            save_strategy="no", seed=args.seed, disable_tqdm=True, logging_steps=max(1, args.sft_steps // 4),
        ),
    )  # fmt: skip
    trainer.train()
    trainer.save_model(os.path.join(folder, "sft"))
    return os.path.join(folder, "sft")


def grpo(args, tokenizer, start: str, folder: str, curriculum: bool):
    set_seed(args.seed)
    data = generate_arithmetic(2000, max_ops=args.max_ops, seed=args.seed).select_columns(["prompt", "answer"])
    config = ReasoningGRPOConfig(
        output_dir=folder, max_steps=args.grpo_steps, per_device_train_batch_size=8, num_generations=8,
        max_completion_length=24 if args.quick else 40, learning_rate=5e-4, logging_steps=1, report_to=[],
        save_strategy="no", seed=args.seed, disable_tqdm=True, bf16=False, use_cpu=True, disable_dropout=True,
        reward_weights=[1.0 - args.end, args.end],
    )  # fmt: skip
    trainer = ReasoningGRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(start),
        reward_funcs=[ArithmeticAnswerReward(), FormatReward()],
        args=config,
        processing_class=tokenizer,
        train_dataset=data,
    )
    if curriculum:
        trainer.add_callback(
            CosineRewardCurriculum(trainer, structure_indices=[1], semantic_indices=[0], start=1.0, end=args.end)
        )
    trainer.train()
    curve = [log["rewards/format/mean"] for log in trainer.state.log_history if "rewards/format/mean" in log]
    return trainer.model, curve


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


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    tokenizer = build_tokenizer(vocab_size=512, extra_special_tokens=("<think>", "</think>"))
    train_prompts = set(generate_arithmetic(2000, max_ops=args.max_ops, seed=args.seed)["prompt"])
    held_out = generate_arithmetic(4 * args.num_eval, max_ops=args.max_ops, seed=args.seed + 7)
    keep, seen = [], set(train_prompts)
    for i, prompt in enumerate(held_out["prompt"]):
        if prompt not in seen and len(keep) < args.num_eval:
            seen.add(prompt)
            keep.append(i)
    held_out = held_out.select(keep)
    max_new_tokens = 24 if args.quick else 40
    results, curves = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        start = warm_start(args, tokenizer, folder)
        results["warm_start"] = held_out_outcomes(
            AutoModelForCausalLM.from_pretrained(start), tokenizer, held_out, max_new_tokens
        )
        for name, curriculum in (("fixed", False), ("cosine", True)):
            model, curves[name] = grpo(args, tokenizer, start, os.path.join(folder, name), curriculum)
            results[name] = held_out_outcomes(model, tokenizer, held_out, max_new_tokens)
    n = len(held_out)
    report = {"n": n, "config": vars(args), "format_reward_curve": curves, "systems": {}, "cosine_vs_fixed": {}}
    for name, outcome in results.items():
        report["systems"][name] = {key: sum(values) / n for key, values in outcome.items()}
        print(
            f"[{name}] malformed {format_proportion(sum(outcome['malformed']), n)}, "
            f"accuracy {format_proportion(sum(outcome['correct']), n)}"
        )
    for key in ("malformed", "correct"):
        ours, reference = results["cosine"][key], results["fixed"][key]
        b, c, p = mcnemar_from_outcomes(ours, reference)
        rate_ours, rate_ref = sum(ours) / n, sum(reference) / n
        report["cosine_vs_fixed"][key] = {
            "cosine": rate_ours, "fixed": rate_ref, "b": b, "c": c, "p": p, "cohens_h": cohens_h(rate_ours, rate_ref)
        }  # fmt: skip
        ratio = rate_ours / rate_ref if rate_ref else float("nan")
        label = "format_collapse (malformed share)" if key == "malformed" else "held_out_accuracy"
        print(f"{label}: ours {rate_ours:.3f}, reference {rate_ref:.3f}, ratio {ratio:.3f} (McNemar p={p:.3g})")
    if args.output:
        atomic_write_json(args.output, report, indent=2)
    return report


if __name__ == "__main__":
    main()
