"""Reward models on held-out arithmetic chains: pairwise accuracy, quantile calibration, best-of-16 selection.

Four reward models of the same backbone size, trained for the same number of steps on the same training
problems (`generate_step_labelled_chains`, seed 0; held-out problems come from another seed and the
script drops any held-out prompt that also occurs in training):

  * scalar        - the plain baseline: `trl.RewardTrainer` on `GPT2ForSequenceClassification`
  * quantile      - `QuantileRewardTrainer` (Bradley-Terry on the scalar reward + pinball loss) on two
                    attributes, correctness and soundness (share of steps before the first error), each
                    with N(0, `--label_noise`) annotator noise, so calibration is measured on a
                    continuous target
  * br_rm         - `BranchRethinkRewardModel`: TRL's `SFTTrainer` on both turns' rows
  * hierarchical  - `HierarchicalRewardTrainer` on step labels and outcome labels

Reported, each with its Wilson 95% interval: held-out pairwise accuracy (chosen = the correct chain,
rejected = the same problem corrupted at a random step, or with only a wrong final answer); exact
McNemar of each RM against the scalar baseline (Benjamini-Hochberg across the three) and Cohen's h;
the quantile RM's empirical coverage per attribute and level and its largest coverage error
(goal: within 5 points of nominal); best-of-16 on held-out problems, whose 16 candidates are drawn by
construction (correct with probability `--p_correct`, else corrupted as above): accuracy when selecting
by each RM, by the exact verifier (the ceiling) and at random, with McNemar against random.
Prints `name: ours X, reference Y, ratio Z` lines (reference = the scalar RM, or random for best-of-16)
and writes the numbers to `--output` (JSON, atomically).

    python bench/reward_models.py --quick                      # tiny: about 2 minutes, checks it runs
    OMP_NUM_THREADS=2 python bench/reward_models.py --output runs/reward_models.json   # the measured run
"""

import argparse
import os
import random
import tempfile
import time


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel  # noqa: E402
from trl import RewardConfig, RewardTrainer, SFTConfig, SFTTrainer  # noqa: E402

from hf_reason.data import build_tokenizer, is_correct  # noqa: E402
from hf_reason.data.arithmetic import solve_steps  # noqa: E402
from hf_reason.data.step_labels import generate_step_labelled_chains, step_labels  # noqa: E402
from hf_reason.evaluation.statistics import (  # noqa: E402
    benjamini_hochberg,
    cohens_h,
    format_proportion,
    mcnemar_from_outcomes,
)
from hf_reason.file_io import atomic_write_json  # noqa: E402
from hf_reason.reward_models import (  # noqa: E402
    BranchRethinkReward,
    BranchRethinkRewardModel,
    HierarchicalReward,
    HierarchicalRewardModel,
    HierarchicalRewardModelConfig,
    QuantileRewardModel,
    QuantileRewardModelConfig,
    RewardModelReward,
    best_of_n,
    branch_rethink_examples,
    quantile_coverage,
    score_texts,
)
from hf_reason.trainers import (  # noqa: E402
    HierarchicalRewardConfig,
    HierarchicalRewardTrainer,
    QuantileRewardConfig,
    QuantileRewardTrainer,
)


STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:6.0f} s] {message}", flush=True)


def completion(steps, final) -> str:
    return " " + "\n".join(steps) + ("\n" if steps else "") + final


def parse_prompt(prompt: str):
    tokens = prompt.removeprefix("Q: ").removesuffix(" = ?\nA:").split()
    return [int(t) for t in tokens[0::2]], tokens[1::2]


def variant(prompt: str, rng: random.Random, correct: bool):
    """(steps, final, step labels, outcome, soundness) of a correct or corrupted chain for `prompt`."""
    numbers, ops = parse_prompt(prompt)
    lines, value = solve_steps(numbers, ops)
    if correct:
        stated = value
    elif rng.random() < 0.8:
        lines, stated = solve_steps(
            numbers, ops, errors={rng.randrange(len(ops)): rng.choice([-1, 1]) * rng.randint(1, 3)}
        )
    else:
        stated = value + rng.choice([-1, 1]) * rng.randint(1, 3)
    labels = step_labels(lines)
    return lines, f"#### {stated}", labels, int(stated == value), sum(labels) / len(labels)


def build_data(args):
    train_chains = generate_step_labelled_chains(args.num_train, max_value=args.max_value, seed=0)
    seen = set(train_chains["prompt"])
    held = generate_step_labelled_chains(4 * (args.num_eval + args.num_bon), max_value=args.max_value, seed=1)
    held = list(dict.fromkeys(p for p in held["prompt"] if p not in seen))
    rng = random.Random(2)

    def pairs(prompts):
        rows = {k: [] for k in ("prompt", "chosen", "rejected", "chosen_labels", "rejected_labels")}
        for prompt in prompts:
            good, bad = variant(prompt, rng, True), variant(prompt, rng, False)
            rows["prompt"].append(prompt)
            rows["chosen"].append(completion(good[0], good[1]))
            rows["rejected"].append(completion(bad[0], bad[1]))
            for key, v in (("chosen_labels", good), ("rejected_labels", bad)):
                rows[key].append([v[3] + rng.gauss(0, args.label_noise), v[4] + rng.gauss(0, args.label_noise)])
        return Dataset.from_dict(rows)

    eval_prompts, bon_prompts = held[: args.num_eval], held[args.num_eval : args.num_eval + args.num_bon]
    return train_chains, pairs(list(dict.fromkeys(train_chains["prompt"]))), pairs(eval_prompts), bon_prompts


def backbone(tokenizer, args, **extra):
    return GPT2Config(
        vocab_size=len(tokenizer), n_positions=256, n_embd=args.hidden_size, n_layer=args.num_layers, n_head=2,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **extra,
    )  # fmt: skip


def common(args, out: str) -> dict:
    return dict(
        output_dir=out, max_steps=args.steps, per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate, report_to=[], save_strategy="no", use_cpu=True, bf16=False,
        seed=args.seed, disable_tqdm=True, logging_steps=max(1, args.steps // 4),
    )  # fmt: skip


def train_all(args, tokenizer, train_chains, train_pairs, tmp):
    models = {}
    torch.manual_seed(args.seed)
    scalar = GPT2ForSequenceClassification(backbone(tokenizer, args, num_labels=1))
    pair_columns = train_pairs.remove_columns(["chosen_labels", "rejected_labels"])
    RewardTrainer(
        scalar, args=RewardConfig(**common(args, f"{tmp}/scalar")), train_dataset=pair_columns,
        processing_class=tokenizer,
    ).train()  # fmt: skip
    models["scalar"] = RewardModelReward(scalar, tokenizer)
    log("scalar RM trained")

    torch.manual_seed(args.seed)
    config = QuantileRewardModelConfig(
        backbone_config=backbone(tokenizer, args).to_dict(), attributes=["correctness", "soundness"],
        attribute_weights=[0.5, 0.5],
    )  # fmt: skip
    quantile = QuantileRewardModel(config)
    QuantileRewardTrainer(
        quantile, args=QuantileRewardConfig(**common(args, f"{tmp}/quantile")), train_dataset=train_pairs,
        processing_class=tokenizer,
    ).train()  # fmt: skip
    models["quantile"] = RewardModelReward(quantile, tokenizer)
    log("quantile RM trained")

    torch.manual_seed(args.seed)
    br = BranchRethinkRewardModel.from_causal_lm(GPT2LMHeadModel(backbone(tokenizer, args)))
    rows = []
    for row in train_pairs:
        rows += branch_rethink_examples(br.config, row["prompt"] + row["chosen"], [], acceptable=True)
        rows += branch_rethink_examples(br.config, row["prompt"] + row["rejected"], ["correctness"], acceptable=False)
    SFTTrainer(
        br.lm, args=SFTConfig(**common(args, f"{tmp}/br")), train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    ).train()  # fmt: skip
    models["br_rm"] = BranchRethinkReward(br, tokenizer)
    log("BR-RM trained")

    torch.manual_seed(args.seed)
    hierarchical = HierarchicalRewardModel(
        HierarchicalRewardModelConfig(backbone_config=backbone(tokenizer, args).to_dict(), process_weight=0.5)
    )
    HierarchicalRewardTrainer(
        hierarchical, args=HierarchicalRewardConfig(**common(args, f"{tmp}/hierarchical")),
        train_dataset=train_chains, processing_class=tokenizer,
    ).train()  # fmt: skip
    models["hierarchical"] = HierarchicalReward(hierarchical, tokenizer)
    log("hierarchical RM trained")
    return models, quantile


def compare(results: dict, outcomes: dict, reference: str, label: str) -> None:
    names = [n for n in outcomes if n != reference]
    tests = {n: mcnemar_from_outcomes(outcomes[n], outcomes[reference]) for n in names}
    adjusted, significant = benjamini_hochberg([tests[n][2] for n in names])
    ref_rate = sum(outcomes[reference]) / len(outcomes[reference])
    for name, p_adj, sig in zip(names, adjusted, significant):
        rate = sum(outcomes[name]) / len(outcomes[name])
        b, c, p = tests[name]
        results[label][name].update(
            mcnemar_vs=reference, b=b, c=c, p=p, p_bh=p_adj, significant=sig, cohens_h=cohens_h(rate, ref_rate)
        )
        ratio = rate / ref_rate if ref_rate else float("nan")
        print(f"{label} {name}: ours {rate:.3f}, reference {ref_rate:.3f}, ratio {ratio:.2f} (p_BH={p_adj:.3g})")


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny models and data: checks the script runs")
    parser.add_argument("--num_train", type=int, default=None, help="training problems (default 3000; quick 96)")
    parser.add_argument("--num_eval", type=int, default=None, help="held-out pairs (default 500; quick 40)")
    parser.add_argument("--num_bon", type=int, default=None, help="best-of-N problems (default 300; quick 12)")
    parser.add_argument("--n", type=int, default=16, help="candidates per best-of-N problem")
    parser.add_argument("--p_correct", type=float, default=0.25, help="chance a best-of-N candidate is correct")
    parser.add_argument("--steps", type=int, default=None, help="training steps per RM (default 1500; quick 20)")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--hidden_size", type=int, default=None, help="default 128 (quick 32)")
    parser.add_argument("--num_layers", type=int, default=None, help="default 3 (quick 1)")
    parser.add_argument("--max_value", type=int, default=9, help="largest operand")
    parser.add_argument("--label_noise", type=float, default=0.1, help="annotator noise on the quantile RM's labels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="JSON file for the numbers")
    args = parser.parse_args()
    defaults = dict(num_train=(96, 3000), num_eval=(40, 500), num_bon=(12, 300), steps=(20, 1500))
    defaults.update(hidden_size=(32, 128), num_layers=(1, 3))
    for name, (quick, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)

    tokenizer = build_tokenizer()
    train_chains, train_pairs, eval_pairs, bon_prompts = build_data(args)
    log(
        f"{len(train_chains)} training chains, {len(eval_pairs)} held-out pairs, {len(bon_prompts)} best-of-N problems"
    )
    with tempfile.TemporaryDirectory() as tmp:
        models, quantile = train_all(args, tokenizer, train_chains, train_pairs, tmp)

    results = {"args": vars(args), "pairwise": {}, "best_of_n": {}, "coverage": {}}
    pairwise = {}
    for name, reward in models.items():
        chosen = reward(eval_pairs["prompt"], eval_pairs["chosen"])
        rejected = reward(eval_pairs["prompt"], eval_pairs["rejected"])
        pairwise[name] = [c > r for c, r in zip(chosen, rejected)]
        k = sum(pairwise[name])
        results["pairwise"][name] = {"accuracy": k / len(chosen), "n": len(chosen)}
        print(f"pairwise accuracy {name:13s} {format_proportion(k, len(chosen))}")
    compare(results, pairwise, "scalar", "pairwise")

    prompts, chosen, rejected = (list(eval_pairs[k]) for k in ("prompt", "chosen", "rejected"))
    texts = [p + c for p, c in zip(prompts * 2, chosen + rejected)]
    predicted = score_texts(quantile, tokenizer, texts)["quantiles"]
    targets = torch.tensor(list(eval_pairs["chosen_labels"]) + list(eval_pairs["rejected_labels"]))
    coverage = quantile_coverage(predicted, targets)
    levels = torch.tensor(quantile.config.quantiles)
    error = (coverage - levels).abs()
    results["coverage"] = {
        "levels": levels.tolist(), "attributes": quantile.config.attributes, "coverage": coverage.tolist(),
        "max_abs_error_points": 100 * error.max().item(), "goal_points": 5.0,
    }  # fmt: skip
    for a, attribute in enumerate(quantile.config.attributes):
        shown = ", ".join(f"{lv:.2f}->{cv:.2f}" for lv, cv in zip(levels.tolist(), coverage[a].tolist()))
        print(f"coverage {attribute}: {shown}")
    print(f"quantile coverage error: ours {100 * error.max().item():.1f} points, reference 5.0 points (goal)")

    rng = random.Random(3)
    groups, answers = [], []
    for prompt in bon_prompts:
        group = []
        for _ in range(args.n):
            steps, final, *_ = variant(prompt, rng, rng.random() < args.p_correct)
            group.append(completion(steps, final))
        groups.append(group)
        numbers, ops = parse_prompt(prompt)
        answers.append(str(solve_steps(numbers, ops)[1]))
    selections = {
        "verifier": [next((i for i, c in enumerate(g) if is_correct(c, a)), 0) for g, a in zip(groups, answers)]
    }
    selections["random"] = [rng.randrange(args.n) for _ in groups]
    for name, reward in models.items():
        selections[name] = best_of_n(reward, bon_prompts, groups)
    outcomes = {
        name: [is_correct(g[i], a) for g, i, a in zip(groups, picks, answers)] for name, picks in selections.items()
    }
    for name, ok in outcomes.items():
        results["best_of_n"][name] = {"accuracy": sum(ok) / len(ok), "n": len(ok)}
        print(f"best-of-{args.n} {name:13s} {format_proportion(sum(ok), len(ok))}")
    compare(results, {k: v for k, v in outcomes.items() if k != "verifier"}, "random", "best_of_n")
    if args.output:
        atomic_write_json(args.output, results, indent=2)
    return results


if __name__ == "__main__":
    main()
