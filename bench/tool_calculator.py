"""A small LM learns to call the calculator: 4-digit x 3-digit products, with the tool vs without it.

Both arms train the same GPT-2-shaped model (byte-level tokenizer, so digits are single tokens) on the
same problems for the same number of steps; only the completions differ:

    without the tool:  Q: 4213*512=\n  ->  Answer: 2157056
    with the tool:     Q: 4213*512=\n  ->  Tool: calculator({"expression": "4213*512"})
                                           Result: 2157056            (forced at generation: no loss on it)
                                           Answer: 2157056

At evaluation both arms generate greedily through `hf_reason.tools.generate_with_tools` (the no-tool arm
with an empty registry) on held-out problems (pairs never seen in training). Prints

    calculator_exact: ours X [lo, hi], reference Y [lo, hi], ratio Z, McNemar p = P
    tool_call_precision: X [lo, hi] (calls whose result is the true product / all calls), recall R

and the goals: held-out exact >= 0.95 with the tool, above the model's own no-tool accuracy (McNemar),
and tool-call precision >= 0.95. Training checkpoints every `--save_steps` and resumes from the last
checkpoint of each arm when run again with the same `--output_dir`.

    python bench/tool_calculator.py --output_dir runs/tool_calculator            # the measured run
    python bench/tool_calculator.py --tiny --output_dir /tmp/tool_calculator_tiny  # end-to-end check, ~1 min

Each arm's held-out evaluation is kept in `<output_dir>/<arm>/evaluation.json` (with the settings it was
made under), so the arms can run in separate invocations (`--arms with_tool`, then `--arms without_tool`
with the same flags and `--output_dir`); the comparison is printed once both are there.
"""

import argparse
import json
import os
import random
import re
import sys

import torch
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from hf_reason.data import build_tokenizer
from hf_reason.evaluation.statistics import format_proportion, mcnemar_from_outcomes, wilson_interval
from hf_reason.file_io import atomic_write_json
from hf_reason.tools import ToolRegistry, calculator_tool, format_tool_call, generate_with_tools


IGNORE = -100
# arm name -> whether its completions call the calculator
ARMS = {"with_tool": True, "without_tool": False}


def problems(count: int, seed: int, exclude=frozenset()) -> list[tuple[int, int]]:
    """`count` distinct (4-digit, 3-digit) pairs not in `exclude`."""
    rng, out, seen = random.Random(seed), [], set(exclude)
    while len(out) < count:
        pair = (rng.randint(1000, 9999), rng.randint(100, 999))
        if pair not in seen:
            seen.add(pair)
            out.append(pair)
    return out


def prompt_of(a: int, b: int) -> str:
    return f"Q: {a}*{b}=\n"


def pieces(a: int, b: int, tool: bool) -> list[tuple[str, bool]]:
    """The completion as (text, learned) pieces: the tool result is not learned (it is forced)."""
    if not tool:
        return [(f"Answer: {a * b}", True)]
    call = format_tool_call("calculator", {"expression": f"{a}*{b}"})
    return [(call, True), (f"\nResult: {a * b}\n", False), (f"Answer: {a * b}", True)]


def encode(tokenizer, a: int, b: int, tool: bool) -> dict:
    ids = tokenizer(prompt_of(a, b), add_special_tokens=False)["input_ids"]
    labels = [IGNORE] * len(ids)
    for text, learned in pieces(a, b, tool):
        piece = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids += piece
        labels += piece if learned else [IGNORE] * len(piece)
    ids.append(tokenizer.eos_token_id)
    labels.append(tokenizer.eos_token_id)
    return {"input_ids": ids, "labels": labels}


def collate(tokenizer):
    def fn(rows):
        width = max(len(r["input_ids"]) for r in rows)
        pad = tokenizer.pad_token_id
        return {
            "input_ids": torch.tensor([r["input_ids"] + [pad] * (width - len(r["input_ids"])) for r in rows]),
            "labels": torch.tensor([r["labels"] + [IGNORE] * (width - len(r["labels"])) for r in rows]),
            "attention_mask": torch.tensor(
                [[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"])) for r in rows]
            ),
        }

    return fn


def train_arm(tokenizer, train_pairs, tool: bool, args) -> GPT2LMHeadModel:
    out_dir = os.path.join(args.output_dir, "with_tool" if tool else "without_tool")
    torch.manual_seed(args.seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=128,
        n_embd=args.width,
        n_layer=args.layers,
        n_head=args.heads,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = GPT2LMHeadModel(config)
    rows = [encode(tokenizer, a, b, tool) for a, b in train_pairs]
    training = TrainingArguments(
        out_dir,
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=min(200, args.steps // 10),
        weight_decay=0.01,
        logging_steps=max(args.steps // 20, 1),
        save_steps=args.save_steps,
        save_total_limit=1,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=args.seed,
        remove_unused_columns=False,
    )
    trainer = Trainer(model=model, args=training, train_dataset=rows, data_collator=collate(tokenizer))
    last = get_last_checkpoint(out_dir) if os.path.isdir(out_dir) else None
    # the Trainer writes trainer_state.json last: without it the save did not finish
    resume = last if last and os.path.isfile(os.path.join(last, "trainer_state.json")) else None
    trainer.train(resume_from_checkpoint=resume)
    return trainer.model.eval()


def answer_of(text: str):
    found = re.findall(r"^Answer: *(-?\d+)", text, re.MULTILINE)
    return int(found[-1]) if found else None


def evaluate_arm(model, tokenizer, pairs, registry, batch_size: int, max_new_tokens: int) -> dict:
    correct, calls, good_calls, called = [], 0, 0, 0
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        outs = generate_with_tools(
            model,
            tokenizer,
            [prompt_of(a, b) for a, b in chunk],
            registry,
            max_calls=2,
            max_new_tokens=max_new_tokens,
            do_sample=False,
        )
        for (a, b), out in zip(chunk, outs):
            correct.append(answer_of(out.text) == a * b)
            calls += len(out.results)
            called += bool(out.results)
            good_calls += sum(r.ok and r.output == str(a * b) for r in out.results)
    return {"correct": correct, "calls": calls, "good_calls": good_calls, "problems_with_a_call": called}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--tiny", action="store_true", help="a few steps on a few problems: the pipeline only")
    parser.add_argument("--train_size", type=int, default=20000)
    parser.add_argument("--eval_size", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--save_steps", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    # a full tool-arm completion is 77 tokens (call 44, result 17, answer 15, EOS)
    parser.add_argument("--max_new_tokens", type=int, default=90)
    parser.add_argument(
        "--arms",
        default="with_tool,without_tool",
        help="arms to train and evaluate now; an arm left out is read from its evaluation.json if one exists",
    )
    args = parser.parse_args(argv)
    requested = [a.strip() for a in args.arms.split(",") if a.strip()]
    if not requested or any(a not in ARMS for a in requested):
        parser.error(f"--arms must list arms out of {list(ARMS)}, got {args.arms!r}")
    if args.tiny:
        args.train_size, args.eval_size, args.steps, args.batch_size = 256, 24, 40, 16
        args.width, args.layers, args.heads, args.save_steps = 32, 2, 2, 20

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    # bytes and the special tokens only: every digit is its own token
    tokenizer = build_tokenizer(vocab_size=260, texts=["0123456789"])
    train_pairs = problems(args.train_size, seed=args.seed)
    eval_pairs = problems(args.eval_size, seed=args.seed + 1, exclude=frozenset(train_pairs))
    registry = ToolRegistry([calculator_tool()])

    # what an arm's evaluation depends on: another value means the cached one does not belong to this run
    key = {k: v for k, v in vars(args).items() if k not in ("output_dir", "arms", "save_steps")}
    arms = {}
    for name, tool in ARMS.items():
        cached = os.path.join(args.output_dir, name, "evaluation.json")
        if name in requested:
            model = train_arm(tokenizer, train_pairs, tool, args)
            arms[name] = evaluate_arm(
                model, tokenizer, eval_pairs, registry if tool else ToolRegistry(), 64, args.max_new_tokens
            )
            atomic_write_json(cached, {"settings": key, **arms[name]}, indent=1)
        elif os.path.isfile(cached):
            with open(cached, encoding="utf-8") as f:
                saved = json.load(f)
            if saved.pop("settings") != key:
                raise ValueError(f"{cached} was made under other settings; rerun with --arms {name} or the same flags")
            arms[name] = saved
    if len(arms) < len(ARMS):
        done = arms[requested[0]]
        n = len(done["correct"])
        print(f"{requested[0]}: exact {format_proportion(sum(done['correct']), n)}; run the other arm to compare")
        return {"arm": requested[0], **done}

    ours, ref = arms["with_tool"]["correct"], arms["without_tool"]["correct"]
    b, c, p_value = mcnemar_from_outcomes(ours, ref)
    n = len(ours)
    calls, good = arms["with_tool"]["calls"], arms["with_tool"]["good_calls"]
    precision = good / calls if calls else 0.0
    exact = sum(ours) / n
    summary = {
        "settings": dict(vars(args)),
        "held_out_problems": n,
        "with_tool_exact": exact,
        "with_tool_interval": wilson_interval(sum(ours), n),
        "without_tool_exact": sum(ref) / n,
        "without_tool_interval": wilson_interval(sum(ref), n),
        "mcnemar": {"only_with_tool": b, "only_without_tool": c, "p_value": p_value},
        "tool_calls": calls,
        "tool_call_precision": precision,
        "tool_call_precision_interval": wilson_interval(good, calls) if calls else None,
        "tool_call_recall": arms["with_tool"]["problems_with_a_call"] / n,
        "goals": {
            "exact_at_least_0.95": exact >= 0.95,
            "better_than_no_tool_p_below_0.01": exact > sum(ref) / n and p_value < 0.01,
            "precision_at_least_0.95": precision >= 0.95,
        },
    }
    atomic_write_json(os.path.join(args.output_dir, "results.json"), summary, indent=1)
    ratio = exact / (sum(ref) / n) if sum(ref) else (float("inf") if exact else float("nan"))
    print(
        f"calculator_exact: ours {format_proportion(sum(ours), n)}, reference {format_proportion(sum(ref), n)}, "
        f"ratio {ratio:.3g}, McNemar p = {p_value:.3g}"
    )
    print(
        f"tool_call_precision: {format_proportion(good, calls) if calls else 'no calls'}, "
        f"recall {summary['tool_call_recall']:.3f}"
    )
    print("goals: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in summary["goals"].items()))
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
