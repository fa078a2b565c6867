"""Supervised warm-up of a small meta-attention model on the curated report tasks, with an ablation.

    python examples/train_meta_attention.py --output_dir runs/meta-attention --max_steps 600 \
        --per_device_train_batch_size 8 --learning_rate 1e-3 --warmup_ratio 0.05 --save_strategy no --use_cpu
    accelerate launch --config_file accelerate_configs/cpu_2proc.yaml examples/train_meta_attention.py --output_dir ...

For each arm (meta-attention module on / off, same seed, data and steps) the script:
1. builds a GPT-2-sized-down meta-attention model from scratch (no weights can be downloaded) and a
   byte-level BPE tokenizer trained locally on the task texts;
2. writes reports for the held-out curated tasks with the untrained model (greedy), scores them with
   the report evaluator, and checks each report's `[focus: ...]` claims against `model.introspect`;
3. trains with TRL's `SFTTrainer` on the gold completions (curated training half + generated math,
   theory-of-mind and planning tasks; loss on the completion only); with
   `--introspection_supervision_steps K`, then K more steps on the same completions whose
   `[focus: ...]` claims are rewritten to name what the model itself attends to (introspection
   supervision: the claims' targets come from its own `introspect`); with `--reflection_steps K`, K more
   steps on reflection passes built from its own first attempts at training tasks
   (`hf_reason.workspace.reflection_training_row`: the validator's verdict and the attended tokens in the
   prompt, the attempt kept when it passed, the gold report written when it did not; rows longer than
   `--n_positions` are dropped), so that `bench/reflection.py` measures a model that has learned the pass;
   with `--reflection_rl_steps K`, K GRPO steps on reflection passes from its own first attempts (the same
   reflection prompts; reward `hf_reason.workspace.ReflectionReward`: fixing a wrong answer earns most,
   keeping a right one or saying it may be wrong less, repeating a wrong answer or copying the attempt
   verbatim is penalised), so the pass is also learned from its outcomes and not only imitated;
4. with `--rl_steps N`, continues with GRPO (`ReasoningGRPOTrainer`, reward: the evaluator's overall
   score) on the curated training prompts under the training cadence (`TrainingCadenceCallback`: short
   chunks, reports on training-split validation tasks between them, longer chunks after two good ones,
   an abort with a checkpoint when the scores fall; decisions in `<arm>/rl/progress.jsonl`), and
   the reports after training are the RL model's;
5. writes and scores the reports again;
6. trains the self-critic head (`MetaAttentionForSequenceScoring`, started from the arm's trained model)
   on the evaluator's verdicts of the arm's own reports, before and after training
   (`hf_reason.evaluation.self_critic.critic_rows`), with half of the tasks held out: its held-out
   error against a constant predictor and its correlation with the verdicts go to `results.json`.
One table compares the arms: every evaluator score before / after with a 95% interval (Wilson for
pass / fail scores, percentile bootstrap for the others), and how often the focus claims match the
model's real attention (`focus_match`: the evaluator's attention alignment; `focus_accuracy`: the share
of claims true of the attention, term and layer / head) and, on theory-of-mind tasks, `tom_belief` (right
answer *and* a reflection about the agent's belief). With both arms, a second table (`goals.md`,
`hf_reason.evaluation.criteria`) puts the seed's success criteria side by side with and without the module,
paired by task (plan / monitor coverage, diagnosis accuracy, reflection alignment, focus accuracy, ToM
accuracy and ToM with a belief-referring reflection): both means, their ratio, the paired test and whether
the goal is met. `--heldout_tom N` adds N generated ToMi-style stories from an unseen seed to the held-out
evaluation, so that the ToM rows rest on more than the few curated stories. Outputs: `results.json`
(settings, every cell, the goals, the reports after training, the loss curves), `table.md`, `goals.md`, `train_loss.png`, and per arm a heat-map PNG of the first report's key step
(`step1_attention_<arm>.png`; `report_attention_<arm>.png`, the whole report, if none writes a Step 1).
The arms can run in separate invocations with the same flags and `--output_dir` (`--arms meta`, then
`--arms no_meta`): a run keeps the other arm from the earlier `results.json` and writes both tables.
Every flag is listed by --help.

Presets (`--preset cpu`): settings chosen so that both arms together finish in about 20 minutes on 2
CPU cores (one torch thread) while still measuring something: a 3-layer, 128-wide model with a
2048-token BPE vocabulary (so that ~90% of the gold reports fit in 256 tokens), 600 SFT steps of batch
8 at learning rate 2e-3 (cosine; ~20 epochs of the 219 training tasks, enough for the report format
and its `[focus: ...]` citations), 32 held-out curated tasks, reports of at most 256 new tokens that
stop at eos or at the end of the `Answer:` line (KV-cached greedy decoding; eager attention only in the
layers whose maps the module reads). The self-critic takes 40 steps of batch 8 per arm (about 30 s on
one thread). Flags given after it on the command line override it:

    OMP_NUM_THREADS=1 python examples/train_meta_attention.py --preset cpu --output_dir runs/meta-attention
"""

import json
import os
import random
import sys
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import HfArgumentParser, StoppingCriteriaList
from trl import SFTConfig, SFTTrainer

from hf_reason import MetaAttentionConfig, MetaAttentionForCausalLM
from hf_reason.data.curated_tasks import generated_entries, load_curated_tasks
from hf_reason.data.text import build_tokenizer
from hf_reason.distributed import end_distributed
from hf_reason.evaluation.attention_plots import save_attention_heatmap, section_token_positions
from hf_reason.evaluation.criteria import compare_goals, goal_outcomes, goals_table
from hf_reason.evaluation.reports import (
    REQUIRED_SECTIONS,
    SCORE_NAMES,
    ReportEvaluator,
    parse_report,
    present_sections,
    reflection_alignment,
)
from hf_reason.evaluation.statistics import wilson_interval
from hf_reason.file_io import atomic_path, atomic_write
from hf_reason.workspace import (
    StopAfterAnswerLine,
    agent_of_question,
    attended_terms,
    focus_targets,
    refers_to_belief,
    reflection_training_row,
    relabel_focus_claims,
)


# Added to the training seed for the held-out generated stories (`--heldout_tom`).
HELDOUT_SEED_OFFSET = 10_007

# Values a preset puts on the command line before the user's flags (argparse keeps the last
# occurrence, so anything the user passes wins).
PRESETS = {
    "cpu": {
        "n_embd": "128",
        "n_layer": "3",
        "n_head": "4",
        "n_positions": "512",
        "vocab_size": "2048",
        "generated_per_category": "60",
        "max_eval_tasks": "32",
        "max_new_tokens": "256",
        "max_steps": "600",
        "per_device_train_batch_size": "8",
        "learning_rate": "2e-3",
        "lr_scheduler_type": "cosine",
        "warmup_ratio": "0.05",
        "logging_steps": "20",
        "save_strategy": "no",
        "use_cpu": "true",
        "bf16": "false",
        "gradient_checkpointing": "false",
        "report_to": "none",
        "seed": "0",
        "critic_steps": "40",
    },
}


def expand_preset(argv: list[str]) -> list[str]:
    """`argv` with the flags of its `--preset NAME` (if any) put first, so explicit flags override them."""
    name = None
    for i, arg in enumerate(argv):
        if arg == "--preset" and i + 1 < len(argv):
            name = argv[i + 1]
        elif arg.startswith("--preset="):
            name = arg.split("=", 1)[1]
    if name is None or name == "":
        return list(argv)
    if name not in PRESETS:
        raise ValueError(f"--preset must be one of {sorted(PRESETS)} (or empty), got {name!r}")
    return [token for key, value in PRESETS[name].items() for token in (f"--{key}", value)] + list(argv)


@dataclass
class WarmupArguments:
    preset: str = field(
        default="",
        metadata={
            "help": "'cpu': a ~20-minute measurement on 2 CPU cores (see the module docstring); "
            "flags given on the command line override the preset's values. '' for none."
        },
    )
    n_embd: int = field(default=128, metadata={"help": "Model width (GPT-2 `n_embd`)."})
    n_layer: int = field(default=4, metadata={"help": "GPT-2 blocks."})
    n_head: int = field(default=4, metadata={"help": "Attention heads; must divide n_embd."})
    n_positions: int = field(default=512, metadata={"help": "Context size; also the SFT max_length."})
    vocab_size: int = field(default=1024, metadata={"help": "Size of the locally trained BPE vocabulary (>= 260)."})
    meta_top_k: int = field(default=4, metadata={"help": "Attended positions per head in the summaries."})
    generated_per_category: int = field(
        default=60,
        metadata={"help": "Generated training tasks per generatable category (math, theory_of_mind, planning)."},
    )
    eval_fraction: float = field(
        default=0.5, metadata={"help": "Fraction of the curated set held out for evaluation (0-1)."}
    )
    max_eval_tasks: int = field(default=0, metadata={"help": "Evaluate at most this many held-out tasks (0: all)."})
    max_new_tokens: int = field(
        default=256,
        metadata={
            "help": "Most tokens generated per report (generation stops earlier at eos or after the Answer line)."
        },
    )
    introspect_top_k: int = field(
        default=8, metadata={"help": "Attention entries per generated position for the focus check."}
    )
    arms: str = field(
        default="meta,no_meta", metadata={"help": "Comma-separated arms: meta (module on), no_meta (ablation)."}
    )
    bootstrap_samples: int = field(default=2000, metadata={"help": "Bootstrap resamples for the intervals."})
    critic_steps: int = field(
        default=40,
        metadata={
            "help": "Optimizer steps of the self-critic on the evaluator's verdicts of the arm's "
            "reports (0: no critic)."
        },
    )
    critic_batch_size: int = field(default=8, metadata={"help": "Episodes per critic step (>= 1)."})
    critic_learning_rate: float = field(default=1e-3, metadata={"help": "AdamW learning rate of the critic."})
    introspection_supervision_steps: int = field(
        default=0,
        metadata={
            "help": "After the warm-up, SFT steps on the training completions with their [focus: ...] claims "
            "rewritten to name what the model itself attended to (its `introspect`), so reports learn to tell "
            "the truth about the attention (0: none)."
        },
    )
    rl_steps: int = field(
        default=0,
        metadata={
            "help": "GRPO steps after the warm-up (0: no RL stage), rewarded with the evaluator's overall "
            "score and paced by the training cadence (chunks, evaluation between them, abort on a fall)."
        },
    )
    rl_num_generations: int = field(default=4, metadata={"help": "GRPO completions per prompt (>= 2)."})
    rl_max_completion_length: int = field(default=128, metadata={"help": "Most tokens of a GRPO completion."})
    rl_learning_rate: float = field(default=1e-4, metadata={"help": "Learning rate of the RL stage."})
    rl_chunk_steps: int = field(default=5, metadata={"help": "Steps of the first cadence chunk (>= 1)."})
    rl_validation_tasks: int = field(
        default=8,
        metadata={
            "help": "Training-split curated tasks held back from RL and scored between chunks (the held-out "
            "evaluation tasks are never used to steer training)."
        },
    )
    rl_thresholds: str = field(
        default="evaluator=0.5,validator=0.25",
        metadata={
            "help": "Cadence thresholds, NAME=VALUE pairs: 'evaluator' (mean overall score of the validation "
            "reports) and 'validator' (their pass rate, the validators' verdicts)."
        },
    )
    rl_abort_below: str = field(
        default="evaluator=0.2",
        metadata={"help": "Cadence floors (NAME=VALUE pairs) under which the RL stage aborts."},
    )
    reflection_steps: int = field(
        default=0,
        metadata={
            "help": "SFT steps on reflection passes built from the model's own first attempts at training tasks "
            "(the validator's verdict in the prompt; fix a wrong answer, keep a right one), so that "
            "bench/reflection.py has a model that has learned the pass (0: none)."
        },
    )
    reflection_tasks: int = field(
        default=64, metadata={"help": "Training tasks (curated training split, then generated) the model attempts."}
    )
    reflection_rl_steps: int = field(
        default=0,
        metadata={
            "help": "GRPO steps on reflection passes from the model's own first attempts at the reflection tasks, "
            "rewarded by ReflectionReward (fix a wrong answer, keep a right one, say when unsure; a repeated "
            "wrong answer or a verbatim copy is penalised), after --reflection_steps (0: none). Uses the "
            "--rl_num_generations, --rl_max_completion_length and --rl_learning_rate settings."
        },
    )
    heldout_tom: int = field(
        default=0,
        metadata={
            "help": "Generated ToMi-style theory-of-mind stories (from a seed the training data never uses) added "
            "to the held-out evaluation, so the ToM goal is measured on more than the curated stories (0: none)."
        },
    )
    reports_before: bool = field(
        default=True,
        metadata={"help": "Also write and score the reports of the untrained model (the 'before' columns)."},
    )
    critic_label: str = field(
        default="overall",
        metadata={
            "help": "Evaluator score the critic learns: 'overall' or another score in [0, 1] "
            "(squared error), or 'validator' (pass / fail, cross-entropy)."
        },
    )


def bootstrap_interval(values, samples: int, seed: int = 0) -> tuple[float, float]:
    # A percentile bootstrap of the mean is ten lines of numpy; scipy is not a dependency.
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(samples, len(values)))].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def summarise(values, binary: bool, samples: int) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "low": None, "high": None, "n": 0}
    if binary:
        low, high = wilson_interval(int(round(sum(values))), len(values))
    else:
        low, high = bootstrap_interval(values, samples)
    return {"mean": float(np.mean(values)), "low": low, "high": high, "n": len(values)}


def greedy_report(model, tokenizer, prompt: str, max_new_tokens: int):
    """(prompt ids, prompt + report ids): a KV-cached greedy report that stops after its Answer line."""
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    ids = ids[:, -(model.config.n_positions - max_new_tokens) :]
    with torch.no_grad():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            use_cache=True,
            stopping_criteria=StoppingCriteriaList([StopAfterAnswerLine(tokenizer, ids.shape[1])]),
        )
    return ids, out


def write_reports(model, tokenizer, tasks, evaluator, args) -> list[dict]:
    """Greedy reports for `tasks`, scored, with their introspection and focus-claim match."""
    from tqdm.auto import tqdm

    model.eval()
    rows = []
    for task in tqdm(tasks, desc="reports", unit="task"):
        ids, out = greedy_report(model, tokenizer, task["prompt"] + "\n", args.max_new_tokens)
        completion = tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
        introspection = []
        if out.shape[1] > ids.shape[1]:
            introspection = model.introspect(out, start=ids.shape[1], top_k=args.introspect_top_k).to_json(tokenizer)
        scores = evaluator.score(completion, task["id"], task["prompt"], introspection)
        citations = parse_report(completion).citations
        tom_belief = None
        if task["category"] == "theory_of_mind":  # right answer and a reflection about the agent's belief
            tom_belief = bool(scores["validator"]) and refers_to_belief(completion, agent_of_question(task["prompt"]))
        # focus match: only the attention part (no prior terms) of reflection alignment
        focus = reflection_alignment(citations, introspection, None) if citations else None
        rows.append(
            {
                "task_id": task["id"],
                "category": task["category"],
                "completion": completion,
                "scores": scores,
                "new_tokens": out.shape[1] - ids.shape[1],
                "num_citations": len(citations),
                "focus_match": focus,
                "tom_belief": tom_belief,
                "ids": out[0].tolist(),
                "prompt_length": ids.shape[1],
            }
        )
    return rows


def train_critic(lm_dir: str, tokenizer, rows: list[dict], prompts: dict, args, seed: int) -> dict:
    """The self-critic, started from the trained LM in `lm_dir`, trained on the evaluator's verdicts of
    `rows` (reports from `write_reports`) and measured on the reports of held-out tasks."""
    from transformers import DataCollatorWithPadding

    from hf_reason import MetaAttentionForSequenceScoring
    from hf_reason.evaluation.self_critic import SelfCriticReward, critic_examples, critic_rows

    # the evaluator already scored every report (its validators ran in the sandbox once): reuse it
    episodes = [
        {"task_id": r["task_id"], "prompt": prompts[r["task_id"]], "completion": r["completion"]} for r in rows
    ]
    examples = critic_rows(episodes, results=[r["scores"] for r in rows], label=args.critic_label)
    task_ids = sorted({e["task_id"] for e in examples})
    random.Random(seed).shuffle(task_ids)
    held_out = set(task_ids[: len(task_ids) // 2])  # by task: a task's two reports never straddle the split
    train = [e for e in examples if e["task_id"] not in held_out]
    test = [e for e in examples if e["task_id"] in held_out]
    summary = {
        "label": args.critic_label,
        "n_train": len(train),
        "n_eval": len(test),
        "steps": args.critic_steps,
        "mse": None,
        "baseline_mse": None,
        "pearson": None,
        "train_loss": [],
    }
    if not train or not test:
        return summary
    torch.manual_seed(seed)
    critic = MetaAttentionForSequenceScoring.from_pretrained(
        lm_dir, critic_loss="bce" if args.critic_label == "validator" else "mse"
    )
    features = critic_examples(
        [e["prompt"] for e in train],
        [e["completion"] for e in train],
        [e["label"] for e in train],
        tokenizer,
        max_length=args.n_positions,
    )
    collator = DataCollatorWithPadding(tokenizer)
    optimizer = torch.optim.AdamW(critic.parameters(), lr=args.critic_learning_rate)
    generator = torch.Generator().manual_seed(seed)
    critic.train()
    for _ in range(args.critic_steps):
        picks = torch.randint(len(features), (min(args.critic_batch_size, len(features)),), generator=generator)
        loss = critic(**collator([features[i] for i in picks.tolist()])).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        summary["train_loss"].append(loss.item())
    predicted = np.asarray(
        SelfCriticReward(critic, tokenizer, max_length=args.n_positions)(
            [e["prompt"] for e in test], [e["completion"] for e in test]
        )
    )
    labels = np.asarray([e["label"] for e in test])
    constant = float(np.mean([e["label"] for e in train]))
    summary["mse"] = float(np.mean((predicted - labels) ** 2))
    summary["baseline_mse"] = float(np.mean((constant - labels) ** 2))
    if predicted.std() > 0 and labels.std() > 0:
        summary["pearson"] = float(np.corrcoef(predicted, labels)[0, 1])
    return summary


def introspection_supervision(model, tokenizer, rows: list[dict], sft_args, steps: int, output_dir: str):
    """SFT for `steps` more steps on `rows` whose focus claims are rewritten from `model`'s own attention
    while it reads the gold completion (`focus_targets` / `relabel_focus_claims`). Returns the trainer."""
    import copy

    import datasets

    model.eval()
    relabelled, changed = [], 0
    for row in rows:
        completion = row["completion"]
        if "[focus:" in completion:
            targets = focus_targets(model, tokenizer, row["prompt"] + "\n", completion, top=2)
            new = relabel_focus_claims(completion, targets)
            changed += new != completion
            completion = new
        relabelled.append({"prompt": row["prompt"] + "\n", "completion": completion + tokenizer.eos_token})
    print(f"introspection supervision: {changed} of {len(rows)} completions relabelled from the model's attention")
    args = copy.deepcopy(sft_args)
    args.max_steps, args.output_dir = steps, output_dir
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=datasets.Dataset.from_list(relabelled), processing_class=tokenizer
    )
    trainer.train()
    return trainer


def first_attempts(model, tokenizer, tasks: list[dict], args) -> list[dict]:
    """The model's greedy first attempt at each task, with the tokens it attended to most while writing it:
    what a reflection pass is built from (`reflection_training_row`)."""
    model.eval()
    attempts = []
    for task in tasks:
        prompt = task["prompt"] + "\n"
        ids, out = greedy_report(model, tokenizer, prompt, args.max_new_tokens)
        attempt = tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
        attended = []
        if out.shape[1] > ids.shape[1]:
            attended = attended_terms(model, tokenizer, prompt + attempt, ids.shape[1], top=5)
        validator = json.loads(task["validator"]) if isinstance(task["validator"], str) else task["validator"]
        row = reflection_training_row(prompt, attempt, validator, task["completion"], attended)
        attempts.append({**row, "attempt": attempt, "validator": validator})
    return attempts


def reflection_training(model, tokenizer, tasks: list[dict], sft_args, args, output_dir: str) -> dict:
    """SFT on reflection passes built from the model's own first attempts (`reflection_training_row`: the
    validator's verdict and the attended tokens in the prompt; the attempt kept when it passed, the gold
    report written when it did not), mixed with the tasks' gold first passes so pass 0 is not forgotten."""
    import copy

    import datasets

    rows = first_attempts(model, tokenizer, tasks, args)
    wrong = sum(not r["passed"] for r in rows)
    # SFT would cut an over-long row's completion off (it keeps the start): such rows teach nothing
    fits = [
        r
        for r in rows
        if len(tokenizer(r["prompt"] + r["completion"], add_special_tokens=False)["input_ids"]) < args.n_positions
    ]
    print(
        f"reflection training: {wrong} of {len(rows)} first attempts failed their validator; "
        f"{len(rows) - len(fits)} rows longer than --n_positions dropped"
    )
    data = [{"prompt": r["prompt"], "completion": r["completion"] + tokenizer.eos_token} for r in fits]
    data += [{"prompt": t["prompt"] + "\n", "completion": t["completion"] + tokenizer.eos_token} for t in tasks]
    train_args = copy.deepcopy(sft_args)
    train_args.max_steps, train_args.output_dir = args.reflection_steps, output_dir
    trainer = SFTTrainer(
        model=model, args=train_args, train_dataset=datasets.Dataset.from_list(data), processing_class=tokenizer
    )
    trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    return {
        "tasks": len(rows),
        "first_attempts_failed": wrong,
        "rows_too_long": len(rows) - len(fits),
        "steps": args.reflection_steps,
        "train_loss": losses,
    }


def rl_config(args, sft_args, output_dir: str, **overrides):
    """The GRPO settings of the RL stages (`--rl_*` flags; two prompts per step), with `overrides`."""
    from hf_reason.trainers import ReasoningGRPOConfig

    settings = dict(
        output_dir=output_dir,
        per_device_train_batch_size=2 * args.rl_num_generations,
        num_generations=args.rl_num_generations,
        max_completion_length=args.rl_max_completion_length,
        learning_rate=args.rl_learning_rate,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=sft_args.use_cpu,
        bf16=False,
        seed=sft_args.seed,
        disable_tqdm=sft_args.disable_tqdm,
    )
    return ReasoningGRPOConfig(**{**settings, **overrides})


def reflection_rl_stage(model, tokenizer, tasks: list[dict], args, sft_args, output_dir: str) -> dict:
    """GRPO on reflection passes, training `model` in place: the prompts are the reflection prompts of the model's
    own first attempts at `tasks` (as `bench/reflection.py` asks for a second pass; drawn after any reflection SFT,
    so they are the current model's), the reward `ReflectionReward` (what the revision did to the attempt: fixed,
    kept, uncertain, changed, repeated, broke, verbatim)."""
    import datasets

    from hf_reason.trainers import ReasoningGRPOTrainer
    from hf_reason.workspace import ReflectionReward

    attempts = first_attempts(model, tokenizer, tasks, args)
    failed = sum(not a["passed"] for a in attempts)
    room = args.n_positions - args.rl_max_completion_length  # prompt + completion must fit the positions
    rows = [
        {"prompt": a["prompt"], "previous_completion": a["attempt"], "validator": json.dumps(a["validator"])}
        for a in attempts
        if len(tokenizer(a["prompt"], add_special_tokens=False)["input_ids"]) <= room
    ]
    if not rows:
        raise ValueError(
            f"--reflection_rl_steps: no reflection prompt of the {len(attempts)} tasks fits --n_positions "
            f"{args.n_positions} with --rl_max_completion_length {args.rl_max_completion_length}"
        )
    config = rl_config(args, sft_args, output_dir, max_steps=args.reflection_rl_steps, disable_dropout=True)
    trainer = ReasoningGRPOTrainer(
        model=model,
        reward_funcs=ReflectionReward(),
        args=config,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    trainer.train()
    curve = [
        e["rewards/reflection_reward/mean"] for e in trainer.state.log_history if "rewards/reflection_reward/mean" in e
    ]
    print(
        f"reflection RL: {len(rows)} reflection prompts ({failed} first attempts failed), "
        f"{trainer.state.global_step} GRPO steps, mean reward first / last step "
        f"{curve[0] if curve else None} / {curve[-1] if curve else None}"
    )
    return {
        "prompts": len(rows),
        "prompts_too_long": len(attempts) - len(rows),
        "first_attempts_failed": failed,
        "steps": trainer.state.global_step,
        "reward_curve": curve,
    }


def parse_pairs(text: str, flag: str) -> dict[str, float]:
    """'a=0.5,b=0.2' -> {'a': 0.5, 'b': 0.2}; names must be 'evaluator' or 'validator'."""
    pairs = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        if name not in ("evaluator", "validator") or not value:
            raise ValueError(f"{flag} takes NAME=VALUE pairs with NAME 'evaluator' or 'validator', got {item!r}")
        pairs[name] = float(value)
    return pairs


def rl_stage(model, tokenizer, tasks, validation_tasks, evaluator, args, sft_args, output_dir: str) -> dict:
    """GRPO on the curated training prompts (reward: the evaluator's overall score) under the training
    cadence: chunks of steps alternate with reports on `validation_tasks`; the log is `progress.jsonl`."""
    import datasets

    from hf_reason.evaluation.reports import ReportScoreReward
    from hf_reason.trainers import (
        CadenceConfig,
        ReasoningGRPOTrainer,
        TrainingCadenceCallback,
    )

    def metrics_fn(model, step):
        rows = write_reports(model, tokenizer, validation_tasks, evaluator, args)
        return {
            "evaluator": float(np.mean([r["scores"]["overall"] for r in rows])),
            "validator": float(np.mean([r["scores"]["validator"] or 0.0 for r in rows])),
        }

    cadence = TrainingCadenceCallback(
        CadenceConfig(
            thresholds=parse_pairs(args.rl_thresholds, "--rl_thresholds"),
            abort_below=parse_pairs(args.rl_abort_below, "--rl_abort_below"),
            initial_chunk_steps=args.rl_chunk_steps,
            max_chunk_steps=max(args.rl_chunk_steps, args.rl_steps),
        ),
        metrics_fn=metrics_fn,
    )
    config = rl_config(args, sft_args, output_dir, max_steps=args.rl_steps)
    data = datasets.Dataset.from_list([{"prompt": t["prompt"] + "\n", "task_id": t["id"]} for t in tasks])
    trainer = ReasoningGRPOTrainer(
        model=model,
        reward_funcs=ReportScoreReward(evaluator),
        args=config,
        train_dataset=data,
        processing_class=tokenizer,
        callbacks=[cadence],
    )
    trainer.train()
    trainer.save_model(output_dir)
    return {
        "model": trainer.model,
        "steps": trainer.state.global_step,
        "decisions": cadence.decisions,
        "abort_reason": cadence.abort_reason,
    }


def summarise_rows(rows, samples: int) -> dict:
    table = {
        name: summarise([r["scores"][name] for r in rows], name == "validator", samples)
        for name in (*SCORE_NAMES, "overall")
    }
    table["focus_match"] = summarise([r["focus_match"] for r in rows], False, samples)
    table["focus_accuracy"] = summarise([r["scores"]["focus_accuracy"] for r in rows], False, samples)
    table["tom_belief"] = summarise(
        [None if r["tom_belief"] is None else float(r["tom_belief"]) for r in rows], True, samples
    )
    table["reports_with_focus_claims"] = summarise([float(r["num_citations"] > 0) for r in rows], True, samples)
    present = [present_sections(r["completion"]) for r in rows]
    for kind in REQUIRED_SECTIONS:  # per section: share of reports that have it with a non-empty body
        table[f"has_{kind.lower()}"] = summarise([float(kind in p) for p in present], True, samples)
    return table


def fmt(cell: dict) -> str:
    if cell["mean"] is None:
        return "n/a"
    return f"{cell['mean']:.3f} [{cell['low']:.3f}, {cell['high']:.3f}] (n={cell['n']})"


def earlier_arms(path: str, results: dict, arms: list[str]) -> dict:
    """The arms of an earlier run's `results.json` at `path` that this run does not train, when that run had
    the same settings (all but `--arms`) and evaluation tasks, so the arms can run in separate invocations
    and the comparison is still made (a run with other settings raises instead of mixing them)."""
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        earlier = json.load(f)
    wanted = [arm for arm in earlier.get("arms", {}) if arm not in arms]
    if not wanted:
        return {}

    def key(r):
        return {k: v for k, v in r["settings"].items() if k != "arms"}, r["eval_task_ids"]

    # through JSON so that both sides compare as they are stored
    if key(earlier) != key(json.loads(json.dumps(results))):
        raise ValueError(
            f"{path} holds arms {wanted} trained under other settings; use another --output_dir, or the same "
            "flags (all but --arms) to add an arm to that run"
        )
    return {arm: earlier["arms"][arm] for arm in wanted}


def main():
    argv = expand_preset(sys.argv[1:])
    args, sft_args = HfArgumentParser((WarmupArguments, SFTConfig)).parse_args_into_dataclasses(args=argv)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    if not arms or any(a not in ("meta", "no_meta") for a in arms):
        raise ValueError(f"--arms must list 'meta' and / or 'no_meta', got {args.arms!r}")
    if not 0.0 < args.eval_fraction < 1.0:
        raise ValueError(f"--eval_fraction must be in (0, 1), got {args.eval_fraction}")
    if args.critic_label not in (*SCORE_NAMES, "overall"):
        raise ValueError(f"--critic_label must be 'overall' or one of {list(SCORE_NAMES)}, got {args.critic_label!r}")
    parse_pairs(args.rl_thresholds, "--rl_thresholds"), parse_pairs(args.rl_abort_below, "--rl_abort_below")
    if args.reflection_rl_steps < 0:
        raise ValueError(f"--reflection_rl_steps must be >= 0, got {args.reflection_rl_steps}")
    if args.rl_steps < 0 or args.rl_num_generations < 2 or args.rl_chunk_steps < 1:
        raise ValueError(
            f"--rl_steps must be >= 0, --rl_num_generations >= 2 and --rl_chunk_steps >= 1, got {args.rl_steps} / "
            f"{args.rl_num_generations} / {args.rl_chunk_steps}"
        )
    if args.critic_steps < 0 or args.critic_batch_size < 1:
        raise ValueError(
            f"--critic_steps must be >= 0 and --critic_batch_size >= 1, got {args.critic_steps} / "
            f"{args.critic_batch_size}"
        )
    seed = sft_args.seed

    curated = load_curated_tasks()
    order = list(range(len(curated)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, int(round(args.eval_fraction * len(order))))
    eval_tasks = [curated[i] for i in sorted(order[:n_eval])]
    if args.max_eval_tasks:
        eval_tasks = eval_tasks[: args.max_eval_tasks]
    train_rows = [{"prompt": curated[i]["prompt"], "completion": curated[i]["completion"]} for i in order[n_eval:]]
    # the RL stage's prompts and its cadence's validation tasks both come from the training split
    rl_tasks = [curated[i] for i in sorted(order[n_eval:])]
    rl_validation = rl_tasks[: args.rl_validation_tasks]
    rl_tasks = rl_tasks[args.rl_validation_tasks :] or rl_tasks
    # tasks with validators for the reflection stage: the curated training split, then generated ones
    reflection_pool = list(rl_tasks) + list(rl_validation)
    for category in ("math", "theory_of_mind", "planning"):
        if args.generated_per_category:
            entries = generated_entries(category, args.generated_per_category, seed=seed)
            reflection_pool += entries
            train_rows += [{"prompt": e["prompt"], "completion": e["completion"]} for e in entries]
    random.Random(seed + 1).shuffle(reflection_pool)  # a mix of every category for --reflection_tasks

    tokenizer = build_tokenizer(
        vocab_size=args.vocab_size,
        texts=[r["prompt"] + "\n" + r["completion"] for r in train_rows] + [t["prompt"] for t in eval_tasks],
    )
    import datasets

    # the prompt ends with a newline so that the report starts on its own line, as in the gold format
    train_ds = datasets.Dataset.from_list(
        [{"prompt": r["prompt"] + "\n", "completion": r["completion"] + tokenizer.eos_token} for r in train_rows]
    )
    heldout_tom = []
    if args.heldout_tom:
        # a seed the training data never uses: new stories, and none whose prompt a training row has
        seen = {r["prompt"] for r in train_rows}
        heldout_tom = [
            e
            for e in generated_entries("theory_of_mind", args.heldout_tom, seed=seed + HELDOUT_SEED_OFFSET)
            if e["prompt"] not in seen
        ]
        eval_tasks += heldout_tom
    evaluator = ReportEvaluator(tasks=[*curated, *heldout_tom])
    sft_args.max_length = args.n_positions
    sft_args.report_to = sft_args.report_to or []
    base_output_dir = sft_args.output_dir
    results = {
        "arms": {},
        "num_train": len(train_rows),
        "num_eval": len(eval_tasks),
        "settings": {
            **vars(args),
            "max_steps": sft_args.max_steps,
            "learning_rate": sft_args.learning_rate,
            "per_device_train_batch_size": sft_args.per_device_train_batch_size,
            "seed": seed,
        },
        "eval_task_ids": [t["id"] for t in eval_tasks],
    }
    losses = {}
    for arm, cell in earlier_arms(os.path.join(base_output_dir, "results.json"), results, arms).items():
        results["arms"][arm], losses[arm] = cell, cell["train_loss"]

    for arm in arms:
        torch.manual_seed(seed)
        config = MetaAttentionConfig(
            vocab_size=len(tokenizer),
            n_positions=args.n_positions,
            n_embd=args.n_embd,
            n_layer=args.n_layer,
            n_head=args.n_head,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            use_meta_attention=arm == "meta",
            meta_top_k=args.meta_top_k,
        )
        model = MetaAttentionForCausalLM(config)
        sft_args.output_dir = os.path.join(base_output_dir, arm)
        trainer = SFTTrainer(model=model, args=sft_args, train_dataset=train_ds, processing_class=tokenizer)
        main_process = trainer.accelerator.is_main_process
        before = (
            write_reports(model, tokenizer, eval_tasks, evaluator, args)
            if main_process and args.reports_before
            else []
        )
        trainer.train()
        if args.introspection_supervision_steps:
            warmup_losses = [(e["step"], e["loss"]) for e in trainer.state.log_history if "loss" in e]
            trainer = introspection_supervision(
                trainer.model,
                tokenizer,
                train_rows,
                sft_args,
                args.introspection_supervision_steps,
                os.path.join(sft_args.output_dir, "introspection"),
            )
            offset = warmup_losses[-1][0] if warmup_losses else 0
            trainer.state.log_history = [{"step": s, "loss": v} for s, v in warmup_losses] + [
                {**e, "step": e["step"] + offset} for e in trainer.state.log_history if "loss" in e
            ]
        reflection = reflection_rl = None
        if args.reflection_steps:
            reflection = reflection_training(
                trainer.model,
                tokenizer,
                reflection_pool[: args.reflection_tasks],
                sft_args,
                args,
                os.path.join(sft_args.output_dir, "reflection"),
            )
        if args.reflection_rl_steps:
            reflection_rl = reflection_rl_stage(
                trainer.model,
                tokenizer,
                reflection_pool[: args.reflection_tasks],
                args,
                sft_args,
                os.path.join(sft_args.output_dir, "reflection_rl"),
            )
        trainer.save_model(sft_args.output_dir)
        if not main_process:
            continue
        final_model, rl = trainer.model, None
        if args.rl_steps:
            rl = rl_stage(
                final_model,
                tokenizer,
                rl_tasks,
                rl_validation,
                evaluator,
                args,
                sft_args,
                os.path.join(sft_args.output_dir, "rl"),
            )
            final_model = rl.pop("model")
        after = write_reports(final_model, tokenizer, eval_tasks, evaluator, args)
        losses[arm] = [(e["step"], e["loss"]) for e in trainer.state.log_history if "loss" in e]
        results["arms"][arm] = {
            "before": summarise_rows(before, args.bootstrap_samples),
            "after": summarise_rows(after, args.bootstrap_samples),
            "mean_new_tokens": {
                "before": float(np.mean([r["new_tokens"] for r in before])) if before else None,
                "after": float(np.mean([r["new_tokens"] for r in after])),
            },
            "train_loss": losses[arm],
            "reports_after": [{k: r[k] for k in ("task_id", "completion", "focus_match")} for r in after],
            "outcomes_after": [
                goal_outcomes(r["task_id"], r["category"], r["scores"], r["tom_belief"]) for r in after
            ],
        }
        if rl is not None:
            results["arms"][arm]["rl"] = rl
        if reflection is not None:
            results["arms"][arm]["reflection"] = reflection
        if reflection_rl is not None:
            results["arms"][arm]["reflection_rl"] = reflection_rl
        if args.critic_steps:
            prompts = {t["id"]: t["prompt"] + "\n" for t in eval_tasks}  # as the reports were generated
            critic = train_critic(sft_args.output_dir, tokenizer, before + after, prompts, args, seed)
            results["arms"][arm]["critic"] = critic
            if critic["mse"] is not None:
                print(
                    f"self-critic ({arm}, {critic['label']}): held-out MSE {critic['mse']:.4f} vs constant "
                    f"{critic['baseline_mse']:.4f}, Pearson {critic['pearson']} (n={critic['n_eval']})"
                )
        # heat-map of the first report's key step (Step 1) after training; a model that writes no Step 1
        # yet gets the map of its whole first report, so every run leaves a picture to look at
        chosen = None
        for row in after:
            text = tokenizer.decode(row["ids"][row["prompt_length"] :], skip_special_tokens=False)
            if "Step 1:" in text:
                enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
                positions = section_token_positions(enc["offset_mapping"], text, "Step 1")
                rows = [p + row["prompt_length"] for p in positions if p + row["prompt_length"] < len(row["ids"])]
                if rows:
                    chosen = (row, rows, "Step 1")
                    break
        if chosen is None and after and len(after[0]["ids"]) > after[0]["prompt_length"]:
            chosen = (after[0], list(range(after[0]["prompt_length"], len(after[0]["ids"]))), "whole report")
        if chosen is not None:
            row, rows, what = chosen
            name = f"step1_attention_{arm}.png" if what == "Step 1" else f"report_attention_{arm}.png"
            ids = torch.tensor([row["ids"]])
            with torch.no_grad():
                maps = trainer.model.eval()(ids, output_attentions=True).attentions
            save_attention_heatmap(
                maps,
                os.path.join(base_output_dir, name),
                rows,
                tokens=tokenizer.convert_ids_to_tokens(row["ids"]),
                title=f"{row['task_id']} {what} ({arm})",
            )
            results["arms"][arm]["heatmap"] = {"task_id": row["task_id"], "section": what, "file": name}

    if results["arms"]:
        names = [
            *SCORE_NAMES,
            "overall",
            "focus_match",
            "focus_accuracy",
            "tom_belief",
            "reports_with_focus_claims",
            *(f"has_{kind.lower()}" for kind in REQUIRED_SECTIONS),
        ]
        header = "| score | " + " | ".join(f"{arm} before | {arm} after" for arm in results["arms"]) + " |"
        lines = [header, "|" + "---|" * (1 + 2 * len(results["arms"]))]
        for name in names:
            cells = []
            for arm in results["arms"].values():
                cells += [fmt(arm["before"][name]), fmt(arm["after"][name])]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        table = "\n".join(lines)
        print(table)
        atomic_write(os.path.join(base_output_dir, "table.md"), table + "\n")
        if {"meta", "no_meta"} <= set(results["arms"]):
            results["goals"] = compare_goals(
                results["arms"]["meta"]["outcomes_after"],
                results["arms"]["no_meta"]["outcomes_after"],
                args.bootstrap_samples,
            )
            goals = goals_table(results["goals"])
            print(goals)
            atomic_write(os.path.join(base_output_dir, "goals.md"), goals + "\n")
        atomic_write(os.path.join(base_output_dir, "results.json"), json.dumps(results, indent=2))
        if any(losses.values()):
            save_loss_curves(losses, os.path.join(base_output_dir, "train_loss.png"))


def save_loss_curves(losses: dict, path: str) -> None:
    """The SFT loss of every arm on one plot (PNG, written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for arm, points in losses.items():
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], label=arm)
    ax.set_xlabel("step")
    ax.set_ylabel("SFT loss (completion tokens)")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)


if __name__ == "__main__":
    main()
    end_distributed()
