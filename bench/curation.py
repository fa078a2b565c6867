"""Curated vs random training data of the same size: held-out accuracy after SFT from the same weak base.

A pool of generated arithmetic with worked solutions (1 to `--max_ops` operators) is spoiled the way generated
data is: a share `--noise` of rows has a wrong final answer, and a share `--duplicates` of rows repeats a few
problems. `curate` then keeps the rows that pass three filters:

  * difficulty - the weak base's own pass rate on the row's prompt (`--k` samples, checked by the verifier) is at
                 most `--max_pass_rate` (problems it always solves teach it nothing)
  * quality    - the row's own worked solution passes the exact verifier
  * diversity  - at most one row per word-bigram cluster of the prompt at Jaccard similarity 1.0

Two SFT runs from the same base, same steps and seed: on the curated rows (ours) and on as many rows drawn
uniformly from the pool (the plain baseline). Reported on held-out problems (no prompt shared with the pool):
greedy exact accuracy with Wilson 95% intervals, exact McNemar (paired on the problems) and Cohen's h; and what
each filter removed. Prints `name: ours X, reference Y, ratio Z` and writes the numbers to `--output`.

    python bench/curation.py --quick                                    # tiny: checks it runs
    OMP_NUM_THREADS=2 python bench/curation.py --output runs/curation.json          # the measured run
"""

import argparse
import os
import random
import tempfile
from pathlib import Path


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import AutoModelForCausalLM, set_seed  # noqa: E402

from hf_reason.data import build_tokenizer, is_correct  # noqa: E402
from hf_reason.data.arithmetic import distinct_arithmetic  # noqa: E402
from hf_reason.data.curation import curate, pass_rates  # noqa: E402
from hf_reason.evaluation.statistics import cohens_h, format_proportion, mcnemar_from_outcomes  # noqa: E402
from hf_reason.file_io import atomic_write_json  # noqa: E402
from hf_reason.trainers.star import (  # noqa: E402
    StarConfig,
    evaluate_accuracy,
    new_small_gpt2,
    sample_completions,
    sft_on_rows,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny model and data: checks the script runs")
    parser.add_argument("--output", default=None, help="JSON file for the numbers")
    parser.add_argument("--num_seed", type=int, default=None, help="worked solutions for the base (default 300)")
    parser.add_argument("--num_pool", type=int, default=None, help="generated pool rows (default 2000)")
    parser.add_argument("--num_eval", type=int, default=None, help="held-out problems (default 500)")
    parser.add_argument("--base_steps", type=int, default=None, help="default 200")
    parser.add_argument("--sft_steps", type=int, default=None, help="default 300")
    parser.add_argument("--hidden_size", type=int, default=None, help="default 128")
    parser.add_argument("--k", type=int, default=None, help="samples per prompt for the pass rate (default 4)")
    parser.add_argument("--max_pass_rate", type=float, default=0.75)
    parser.add_argument("--noise", type=float, default=0.3, help="share of pool rows with a wrong final answer")
    parser.add_argument("--duplicates", type=float, default=0.3, help="share of pool rows repeating a few problems")
    parser.add_argument("--max_ops", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    defaults = dict(num_seed=(16, 300), num_pool=(48, 2000), num_eval=(16, 500), base_steps=(3, 200))
    defaults.update(sft_steps=(3, 300), hidden_size=(32, 128), k=(2, 4))
    for name, (quick, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    return args


def spoiled_pool(args, rows: list[dict]) -> list[dict]:
    """The pool: a share of rows with a wrong final answer, a share replaced by repeats of a few problems."""
    rng = random.Random(args.seed)
    pool = []
    for row in rows:
        row = dict(row, spoiled="clean")
        if rng.random() < args.noise:
            work, answer = row["completion"].rsplit("####", 1)
            row["completion"], row["spoiled"] = f"{work}#### {int(answer) + rng.choice((-1, 1))}", "wrong_answer"
        pool.append(row)
    repeated = rng.sample(pool[: len(pool) // 10 + 1], k=min(3, len(pool) // 10 + 1))
    for i in rng.sample(range(len(pool)), int(args.duplicates * len(pool))):
        pool[i] = dict(rng.choice(repeated), spoiled="duplicate")
    return pool


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    rows = distinct_arithmetic(
        args.num_seed + args.num_pool + args.num_eval, max_ops=args.max_ops, seed=args.seed + 11
    )
    seed_rows = [{"prompt": r["prompt"], "completion": r["completion"]} for r in rows[: args.num_seed]]
    pool = spoiled_pool(args, rows[args.num_seed : args.num_seed + args.num_pool])
    held_out = Dataset.from_list(rows[args.num_seed + args.num_pool :])
    tokenizer = build_tokenizer()
    batch = 4 if args.quick else 16
    report = {"config": vars(args)}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        set_seed(args.seed)

        def fresh():
            return new_small_gpt2(tokenizer, args.hidden_size, num_layers=2)

        config = StarConfig(output_dir=str(folder), sft_steps=args.base_steps, seed=args.seed, batch_size=batch)
        base = sft_on_rows(fresh, None, tokenizer, seed_rows, folder / "base", config)
        outcomes = []
        for start in range(0, len(pool), 32):
            chunk = pool[start : start + 32]
            samples = sample_completions(
                base, tokenizer, [r["prompt"] for r in chunk], args.k, 1.0, 48, seed=args.seed + start
            )
            outcomes += [[is_correct(s, r["answer"]) for s in group] for r, group in zip(chunk, samples)]
        rates = pass_rates(outcomes)
        quality = [float(is_correct(r["completion"], r["answer"])) for r in pool]
        pool_set = Dataset.from_list(pool)
        curated, filters = curate(
            pool_set, pass_rate=rates, max_pass_rate=args.max_pass_rate, quality=quality, min_quality=1.0,
            max_per_cluster=1, ngram=2, similarity=1.0,
        )  # fmt: skip
        report["filters"] = filters
        report["curated_spoiled"] = {
            kind: curated["spoiled"].count(kind) for kind in ("clean", "wrong_answer", "duplicate")
        }
        random_rows = random.Random(args.seed + 1).sample(pool, len(curated))
        report["random_spoiled"] = {
            kind: sum(r["spoiled"] == kind for r in random_rows) for kind in ("clean", "wrong_answer", "duplicate")
        }
        results = {}
        sft = StarConfig(output_dir=str(folder), sft_steps=args.sft_steps, seed=args.seed, batch_size=batch)
        for name, chosen in (("curated", list(curated)), ("random", random_rows)):
            train_rows = [{"prompt": r["prompt"], "completion": r["completion"]} for r in chosen]
            set_seed(args.seed)
            sft_on_rows(None, folder / "base" / "model", tokenizer, train_rows, folder / name, sft)
            model = AutoModelForCausalLM.from_pretrained(folder / name / "model")
            results[name] = evaluate_accuracy(model, tokenizer, held_out, is_correct, max_new_tokens=48)["correct"]
        results["base"] = evaluate_accuracy(base, tokenizer, held_out, is_correct, max_new_tokens=48)["correct"]
    n = len(held_out)
    report["systems"] = {name: sum(outcome) / n for name, outcome in results.items()}
    for name in ("base", "random", "curated"):
        print(f"[{name}] held-out accuracy {format_proportion(sum(results[name]), n)}")
    b, c, p = mcnemar_from_outcomes(results["curated"], results["random"])
    ours, reference = report["systems"]["curated"], report["systems"]["random"]
    report["curated_vs_random"] = {"b": b, "c": c, "p": p, "cohens_h": cohens_h(ours, reference)}
    print(f"filters: {filters}; curated rows {report['curated_spoiled']}, random rows {report['random_spoiled']}")
    ratio = ours / reference if reference else float("nan")
    print(f"curation: ours {ours:.3f}, reference {reference:.3f} (random, same size), ratio {ratio:.3f}, "
          f"McNemar b={b} c={c} p={p:.3g}, Cohen's h {cohens_h(ours, reference):+.3f}")  # fmt: skip
    if args.output:
        atomic_write_json(args.output, report, indent=2)
    return report


if __name__ == "__main__":
    main()
