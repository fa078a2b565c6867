"""Inference-time reasoning on held-out countdown, 24 game, arithmetic and planning: what search buys over greedy.

Trains (or loads with `--model_dir`) two small LMs of about the same parameter count on the same
data and budget: a GPT-2-shaped transformer and a CRSM (Mamba with a value head). Both learn worked
countdown solutions (SFT, one step per line) mixed with worked arithmetic chains and blocks-world
plans (the tasks where search should help less; greedy and self-consistency run there), so their samples
are varied and often, not always, right: the regime where search can pay. The CRSM then trains its
value head in two stages: regression of the exact reward of sampled continuations at every prefix
(Monte-Carlo), then rounds of learning from search outcomes (`train_value_from_search`: token-level
MCTS on training problems; the value at every prefix of each searched completion regresses its
exact reward, with sampled rows mixed in). Its latent-dynamics and state-delta stages (examples/train_crsm.py) are not run
here: MCTS uses the value head (`rollout="value"`).

Then, on held-out problems the models never saw (disjoint seeds and prompts), per task:
greedy; self-consistency@k (majority vote; verifier-weighted where a scorer exists); tree-of-thought
beam search with backtracking and MCTS over steps, each with three scorers: the exact countdown
verifier with solver lookahead (an oracle value), the verifier without lookahead (steps checked
only: trace validity), and the model's own confidence (no verifier); CRSM's token-level MCTS with
its value head and step-level beam search with its value head as scorer. Each at several budgets.

Output (`--output_dir`): `table.json` (per task and method: accuracy, Wilson 95 % interval, exact
McNemar against greedy of the same model, mean cost per problem: generated tokens, model calls,
seconds, and the ratio to greedy's tokens), `accuracy_vs_compute.png`, and the trained models
(`gpt2/final`, `crsm/final`, each with its tokenizer) to score again with `--model_dir`.

    python bench/reasoning.py --preset cpu-small --output_dir runs/reasoning   # the whole grid
    python bench/reasoning.py --preset cpu-small --model_dir runs/reasoning --output_dir runs/reasoning-rescore
    python bench/reasoning.py --preset tiny --output_dir /tmp/reasoning-tiny   # end-to-end smoke run

`--families`, `--tasks`, `--methods` and `--scorers` pick a part of the grid (greedy always runs);
docs/reasoning.md lists the three runs that check the goals.
"""

import argparse
import json
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass
from typing import Optional


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel  # noqa: E402

from hf_reason import CRSMConfig, CRSMForCausalLM  # noqa: E402
from hf_reason.data import (  # noqa: E402
    build_tokenizer,
    generate_24_game,
    generate_arithmetic,
    generate_countdown,
    generate_planning,
)
from hf_reason.evaluation.statistics import mcnemar_from_outcomes, wilson_interval  # noqa: E402
from hf_reason.file_io import atomic_write_json, save_figure_atomic  # noqa: E402
from hf_reason.reasoning import (  # noqa: E402
    CountdownVerifierScorer,
    ValueHeadScorer,
    arithmetic_task,
    countdown_task,
    planning_task,
    solve,
    sweep_deliberation,
    train_value_from_search,
    value_regression_step,
)


@dataclass
class Preset:
    train_countdown: int
    train_arithmetic: int
    train_planning: int
    eval_problems: int
    validation_problems: int
    gpt2_embd: int
    gpt2_layers: int
    crsm_hidden: int
    crsm_layers: int
    sft_steps: int
    batch_size: int
    value_steps: int
    rl_rounds: int
    rl_problems: int
    sample_counts: tuple
    beam_sizes: tuple  # (beam_width, expansions)
    mcts_simulations: tuple
    token_mcts_simulations: tuple
    max_new_tokens: int
    token_budgets: tuple = (2, 4)  # search budgets, in multiples of `max_new_tokens` (one greedy path at most)
    sweep_trials: int = 0  # optuna trials over CRSM's MCTS settings on the validation split (needs optuna)
    learning_rate: float = 2e-3
    temperature: float = 0.8  # sampling temperature of every sampled method, fixed beforehand (not tuned)


PRESETS = {
    "tiny": Preset(
        train_countdown=100,
        train_arithmetic=50,
        train_planning=30,
        eval_problems=6,
        validation_problems=4,
        gpt2_embd=32,
        gpt2_layers=1,
        crsm_hidden=32,
        crsm_layers=1,
        sft_steps=6,
        batch_size=8,
        value_steps=2,
        rl_rounds=1,
        rl_problems=2,
        sample_counts=(2,),
        beam_sizes=((1, 2),),
        mcts_simulations=(2,),
        token_mcts_simulations=(2,),
        max_new_tokens=24,
        token_budgets=(2,),
        sweep_trials=2,
    ),
    "cpu-small": Preset(
        train_countdown=8000,
        train_arithmetic=6000,
        train_planning=3000,
        eval_problems=300,
        validation_problems=100,
        gpt2_embd=96,
        gpt2_layers=3,
        crsm_hidden=96,
        crsm_layers=4,
        sft_steps=1500,
        batch_size=32,
        value_steps=150,
        rl_rounds=2,
        rl_problems=24,
        sample_counts=(8,),
        beam_sizes=((2, 3),),
        mcts_simulations=(12,),
        token_mcts_simulations=(2, 4),
        max_new_tokens=80,
    ),
}

COUNTDOWN = dict(num_numbers=4, max_number=25, target_range=(10, 100))


# --- data ------------------------------------------------------------------------------------------
def planning_rows(n: int, seed: int) -> Dataset:
    """Blocks-world puzzles of 3 and 4 blocks (`generate_planning`) with a compact prompt (the generator's
    prose would be ~200 tokens for this bench's small tokenizer): stacks bottom to top, one move per
    line, then ``#### <number of moves>``. `answer` is the puzzle (JSON) that `planning_task` checks."""
    halves = [
        generate_planning(max(1, n // 2), num_items=3, seed=seed),
        generate_planning(n - n // 2, num_items=4, seed=seed),
    ]
    rows = {"prompt": [], "completion": [], "answer": []}
    for half in halves:
        for puzzle, steps in zip(half["puzzle"], half["steps"]):
            state = json.loads(puzzle)
            initial, goal = (
                " ".join("[" + " ".join(stack) + "]" for stack in state[key]) for key in ("initial", "goal")
            )
            rows["prompt"].append(f"Blocks {initial} goal {goal}\nA:")
            rows["completion"].append(" " + "\n".join(steps) + f"\n#### {len(steps)}")
            rows["answer"].append(puzzle)
    return Dataset.from_dict({k: v[:n] for k, v in rows.items()})


def datasets_for(preset: Preset, seed: int) -> dict:
    """Train / validation / test splits from disjoint seeds; test prompts seen in training are dropped."""
    train_cd = generate_countdown(preset.train_countdown, seed=seed, count_solutions=False, **COUNTDOWN)
    train_ar = generate_arithmetic(preset.train_arithmetic, max_ops=3, max_value=20, seed=seed + 1)
    train_pl = planning_rows(preset.train_planning, seed=seed + 6)
    seen = set(train_cd["prompt"]) | set(train_ar["prompt"]) | set(train_pl["prompt"])

    def held_out(rows, n):
        # Unseen in training and each problem once (a small planning world repeats puzzles).
        first = {p: i for i, p in reversed(list(enumerate(rows["prompt"])))}
        keep = [i for i, p in enumerate(rows["prompt"]) if p not in seen and first[p] == i][:n]
        return rows.select(keep)

    n = preset.eval_problems
    return {
        "train": [p + c for p, c in zip(train_cd["prompt"], train_cd["completion"])]
        + [p + c for p, c in zip(train_ar["prompt"], train_ar["completion"])]
        + [p + c for p, c in zip(train_pl["prompt"], train_pl["completion"])],
        "train_countdown": train_cd,
        "validation": held_out(
            generate_countdown(preset.validation_problems * 2, seed=seed + 2, **COUNTDOWN), preset.validation_problems
        ),
        "countdown": held_out(generate_countdown(n * 2, seed=seed + 3, **COUNTDOWN), n),
        "24": held_out(generate_24_game(n * 2, seed=seed + 4), n),
        "arithmetic": held_out(generate_arithmetic(n * 2, max_ops=3, max_value=20, seed=seed + 5), n),
        # A few-block world has few distinct puzzles: held-out ones are those no training row shows.
        "planning": held_out(planning_rows(n * 4, seed=seed + 7), n),
    }


# --- models ----------------------------------------------------------------------------------------
def build_models(preset: Preset, tokenizer, seed: int) -> dict:
    ids = dict(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    gpt2 = GPT2LMHeadModel(
        GPT2Config(
            n_positions=256,
            n_embd=preset.gpt2_embd,
            n_layer=preset.gpt2_layers,
            n_head=4 if preset.gpt2_embd % 4 == 0 else 1,
            **ids,
        )
    )
    torch.manual_seed(seed)
    try:
        import mambapy  # noqa: F401

        use_mambapy = True
    except ImportError:
        use_mambapy = False
    crsm = CRSMForCausalLM(
        CRSMConfig(
            hidden_size=preset.crsm_hidden,
            num_hidden_layers=preset.crsm_layers,
            state_size=16,
            use_mambapy=use_mambapy,
            **ids,
        )
    )
    return {"gpt2": gpt2, "crsm": crsm}


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def batch_of(texts, tokenizer, max_length: int = 256):
    enc = tokenizer(
        [t + tokenizer.eos_token for t in texts],
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    labels = enc.input_ids.masked_fill(enc.attention_mask == 0, -100)
    return enc.input_ids, enc.attention_mask, labels


def save_model(model, tokenizer, path: str) -> None:
    """`save_pretrained` into a temporary folder, then swapped into place (a half-written model never is)."""
    tmp = path + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if os.path.exists(path):
        shutil.rmtree(path)
    os.replace(tmp, path)


def sft(model, tokenizer, texts, preset: Preset, out_dir: str, seed: int, save_steps: int = 250) -> None:
    """Supervised fine-tuning on worked solutions; resumable (`out_dir/checkpoint` every `save_steps`,
    `out_dir/sft` when done). Batches are a function of (seed, step), so a resumed run sees the same ones."""
    final, ckpt = os.path.join(out_dir, "sft"), os.path.join(out_dir, "checkpoint")
    if os.path.exists(os.path.join(final, "config.json")):
        model.load_state_dict(type(model).from_pretrained(final).state_dict())
        return
    optimizer = torch.optim.AdamW(model.parameters(), lr=preset.learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / 50) * max(0.05, 1 - s / preset.sft_steps)
    )
    start = 0
    if os.path.exists(os.path.join(ckpt, "state.json")):
        model.load_state_dict(type(model).from_pretrained(ckpt).state_dict())
        optimizer.load_state_dict(torch.load(os.path.join(ckpt, "optimizer.pt"), weights_only=True))
        start = json.load(open(os.path.join(ckpt, "state.json")))["step"]
        for _ in range(start):
            schedule.step()
    model.train()
    for step in range(start, preset.sft_steps):
        rng = np.random.default_rng([seed, step])
        rows = [texts[i] for i in rng.integers(0, len(texts), size=preset.batch_size)]
        ids, mask, labels = batch_of(rows, tokenizer)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if step % 50 == 0 or step == preset.sft_steps - 1:
            print(f"  sft {type(model).__name__} step {step}: loss {loss.item():.3f}", flush=True)
        if (step + 1) % save_steps == 0 and step + 1 < preset.sft_steps:
            save_model(model, tokenizer, ckpt)
            torch.save(optimizer.state_dict(), os.path.join(ckpt, "optimizer.pt"))
            atomic_write_json(os.path.join(ckpt, "state.json"), {"step": step + 1})  # written last
    model.eval()
    save_model(model, tokenizer, final)
    shutil.rmtree(ckpt, ignore_errors=True)


def train_value_head(model, tokenizer, data, preset: Preset, out_dir: str, seed: int) -> dict:
    """Value head: Monte-Carlo regression on sampled continuations (with the gold solution and a corrupted one),
    then `rl_rounds` rounds of RL from search outcomes (token-level MCTS completions and their exact rewards)."""
    final = os.path.join(out_dir, "final")
    if os.path.exists(os.path.join(final, "config.json")):
        model.load_state_dict(type(model).from_pretrained(final).state_dict())
        return json.load(open(os.path.join(final, "value_training.json")))
    task = countdown_task()
    for p in model.parameters():
        p.requires_grad_(False)
    heads = (
        [*model.backbone.aggregator.parameters(), *model.value_head.parameters()]
        if hasattr(model.backbone, "aggregator")
        else list(model.value_head.parameters())
    )
    for p in heads:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(heads, lr=1e-3)
    pool = data["train_countdown"]
    rng = random.Random(seed)
    history = {"mc": [], "rl": [], "rl_solve_rate": []}
    group = 6
    for step in range(preset.value_steps):
        row = pool[rng.randrange(len(pool))]
        ids = tokenizer(row["prompt"], return_tensors="pt").input_ids
        torch.manual_seed(seed * 100003 + step)
        with torch.no_grad():
            sampled = model.generate(
                ids,
                do_sample=True,
                num_return_sequences=group,
                max_new_tokens=preset.max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
            )
        texts = [tokenizer.decode(s[ids.shape[1] :], skip_special_tokens=True) for s in sampled]
        texts += [row["completion"], row["completion"].replace("####", "#### 1 +")]
        rewards = [float(task.is_correct(row["prompt"], t, None)) for t in texts]
        history["mc"].append(
            value_regression_step(model, tokenizer, row["prompt"], texts, rewards, optimizer, preset.max_new_tokens)
        )
        if step % 25 == 0:
            print(f"  value (Monte-Carlo) step {step}: loss {history['mc'][-1]:.4f}", flush=True)
    if preset.rl_rounds:
        rows = pool.select(rng.sample(range(len(pool)), min(len(pool), preset.rl_problems * preset.rl_rounds)))
        searched = train_value_from_search(
            model,
            tokenizer,
            rows["prompt"],
            task,
            rounds=preset.rl_rounds,
            problems_per_round=preset.rl_problems,
            samples_per_problem=2,
            max_new_tokens=preset.max_new_tokens,
            optimizer=optimizer,
            seed=seed,
            deliberation={"num_simulations": preset.token_mcts_simulations[0]},
        )
        history["rl"], history["rl_solve_rate"] = searched["loss"], searched["solve_rate"]
        print(f"  value RL from search: solve rate per round {searched['solve_rate']}", flush=True)
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()
    save_model(model, tokenizer, final)
    atomic_write_json(os.path.join(final, "value_training.json"), history)
    return history


# --- evaluation ------------------------------------------------------------------------------------
def method_grid(preset: Preset, family: str, task_name: str, model, tokenizer) -> list:
    """(label, method, scorer, options) for one model and task."""
    grid = [("greedy", "greedy", None, {})]
    for k in preset.sample_counts:
        grid.append((f"self-consistency@{k}", "self_consistency", None, {"num_samples": k}))
    if task_name in ("arithmetic", "planning"):
        return grid
    integer_steps = task_name != "24"
    scorers = {
        "verifier+lookahead": CountdownVerifierScorer(lookahead=True, integer_steps=integer_steps),
        "verifier": CountdownVerifierScorer(lookahead=False, integer_steps=integer_steps),
        "confidence": None,
    }
    if family == "crsm":
        scorers["value-head"] = ValueHeadScorer(model, tokenizer)
    if task_name == "24":
        # The 24 game is the second search task: the oracle-valued search only, to keep the run short.
        scorers = {"verifier+lookahead": scorers["verifier+lookahead"]}
    for k in preset.sample_counts[-1:]:
        grid.append(
            (f"self-consistency@{k} weighted[verifier]", "self_consistency", scorers["verifier"], {"num_samples": k})
        )
    for name, scorer in scorers.items():
        # The oracle-valued verifier runs at every budget; the weaker scorers at the largest only.
        budgets = preset.token_budgets if name == "verifier+lookahead" else preset.token_budgets[-1:]
        # Without a verifier no score reaches 1, so the first finished solution ends the search.
        accept = {"accept_score": 0.0} if name == "confidence" else {}
        for multiple in budgets:
            budget = {"token_budget": multiple * preset.max_new_tokens, **accept}
            for width, expansions in preset.beam_sizes:
                grid.append(
                    (
                        f"beam w{width}x{expansions} budget {multiple * preset.max_new_tokens} [{name}]",
                        "beam",
                        scorer,
                        {"beam_width": width, "expansions": expansions, **budget},
                    )
                )
            if name != "confidence":
                for sims in preset.mcts_simulations:
                    grid.append(
                        (
                            f"mcts-steps {sims} budget {multiple * preset.max_new_tokens} [{name}]",
                            "mcts",
                            scorer,
                            {"num_simulations": sims, "expansions": 3, **budget},
                        )
                    )
    if family == "crsm":
        for sims in preset.token_mcts_simulations:
            grid.append(
                (
                    f"crsm token-mcts {sims} [value-head]",
                    "token_mcts",
                    None,
                    {"deliberation": {"num_simulations": sims}},
                )
            )
        if getattr(model.generation_config, "deliberation", None):
            grid.append(("crsm token-mcts [swept on validation]", "token_mcts", None, {}))
    return grid


def selected(label: str, method: str, methods: Optional[set], scorers: Optional[set]) -> bool:
    """Whether a grid entry is kept by `--methods` (method kinds) and `--scorers` (the bracketed scorer
    names); greedy always runs (every comparison is against it); CRSM's token MCTS has its own value head."""
    if method == "greedy":
        return True
    scorer = label[label.index("[") + 1 : label.rindex("]")] if "[" in label and method != "token_mcts" else None
    return (methods is None or method in methods) and (scorers is None or scorer is None or scorer in scorers)


def evaluate(
    model,
    tokenizer,
    family: str,
    task_name: str,
    rows,
    preset: Preset,
    seed: int,
    methods: Optional[set] = None,
    scorers: Optional[set] = None,
) -> list:
    task = {"arithmetic": arithmetic_task, "planning": planning_task}.get(task_name, countdown_task)()
    references = list(rows["answer"])
    entries, greedy = [], None
    for label, method, scorer, options in method_grid(preset, family, task_name, model, tokenizer):
        if not selected(label, method, methods, scorers):
            continue
        started = time.perf_counter()
        results = solve(
            model,
            tokenizer,
            list(rows["prompt"]),
            method,
            task=task,
            scorer=scorer,
            references=references,
            max_new_tokens=preset.max_new_tokens,
            max_step_tokens=40,
            max_steps=6,
            temperature=preset.temperature,
            seed=seed,
            **options,
        )
        outcomes = [bool(r.correct) for r in results]
        k, n = sum(outcomes), len(outcomes)
        low, high = wilson_interval(k, n)
        cost = {
            key: float(np.mean([r.cost[key] for r in results]))
            for key in ("generated_tokens", "model_calls", "scorer_calls", "seconds")
        }
        entry = {
            "family": family,
            "task": task_name,
            "method": label,
            "accuracy": k / n,
            "ci95": [low, high],
            "n": n,
            "cost": cost,
        }
        if greedy is None:
            greedy = entry | {"outcomes": outcomes}
        else:
            b, c, p = mcnemar_from_outcomes(outcomes, greedy["outcomes"])
            entry["vs_greedy"] = {
                "delta": entry["accuracy"] - greedy["accuracy"],
                "only_this_right": b,
                "only_greedy_right": c,
                "mcnemar_p": p,
                "token_ratio": cost["generated_tokens"] / max(greedy["cost"]["generated_tokens"], 1e-9),
            }
        if method == "self_consistency":
            entry["mean_agreement"] = float(np.mean([r.agreement or 0.0 for r in results]))
        entries.append(entry)
        delta = entry.get("vs_greedy", {})
        print(
            f"{family:5s} {task_name:10s} {label:42s} acc {k / n:.3f} [{low:.3f}, {high:.3f}]  tokens {cost['generated_tokens']:.1f}"
            f"  calls {cost['model_calls']:.1f}  s {cost['seconds']:.3f}"
            + (f"  d {delta['delta']:+.3f} p {delta['mcnemar_p']:.2g} x{delta['token_ratio']:.2f}" if delta else "")
            + f"  ({time.perf_counter() - started:.0f}s)",
            flush=True,
        )
    return entries


def plot(entries: list, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(e["family"], e["task"]) for e in entries})
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (family, task) in zip(axes[0], panels):
        for e in [e for e in entries if e["family"] == family and e["task"] == task]:
            x, y = e["cost"]["generated_tokens"], e["accuracy"]
            ax.errorbar(x, y, yerr=[[max(y - e["ci95"][0], 0.0)], [max(e["ci95"][1] - y, 0.0)]], fmt="o", capsize=2)
            ax.annotate(e["method"], (x, y), fontsize=6)
        ax.set_xscale("log")
        ax.set_xlabel("generated tokens per problem")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{family}: {task}")
    fig.tight_layout()
    save_figure_atomic(fig, path)


def goals(entries: list) -> dict:
    """The issue's goals, read off the table (held-out countdown, same model)."""

    def best(rows):
        return max(rows, key=lambda e: e["accuracy"]) if rows else None

    out = {}
    for family in ("gpt2", "crsm"):
        rows = [
            e
            for e in entries
            if e["family"] == family
            and e["task"] == "countdown"
            and "vs_greedy" in e
            and e["vs_greedy"]["token_ratio"] <= 4
        ]
        top = best(rows)
        if top:
            out[f"{family}: best search <= 4x tokens vs greedy"] = {
                "method": top["method"],
                "delta": top["vs_greedy"]["delta"],
                "p": top["vs_greedy"]["mcnemar_p"],
                "met(+15 points, p<0.01)": top["vs_greedy"]["delta"] >= 0.15 and top["vs_greedy"]["mcnemar_p"] < 0.01,
            }
    token = [
        e
        for e in entries
        if e["family"] == "crsm" and e["task"] == "countdown" and e["method"].startswith("crsm token-mcts")
    ]
    token = [
        e
        for e in token
        if e["cost"]["model_calls"]
        <= 4
        * max(next(g for g in entries if g["family"] == "crsm" and g["task"] == "countdown")["cost"]["model_calls"], 1)
    ]
    top = best(token)
    if top:
        out["crsm token-mcts <= 4x model calls vs greedy"] = {
            "method": top["method"],
            "delta": top["vs_greedy"]["delta"],
            "p": top["vs_greedy"]["mcnemar_p"],
            "met(+10 points)": top["vs_greedy"]["delta"] >= 0.10,
        }
    sc = [e for e in entries if e["task"] == "arithmetic" and e["method"] == "self-consistency@8"]
    for e in sc:
        out[f"{e['family']}: self-consistency@8 on arithmetic"] = {
            "delta": e["vs_greedy"]["delta"],
            "p": e["vs_greedy"]["mcnemar_p"],
            "met(+5 points)": e["vs_greedy"]["delta"] >= 0.05,
        }
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu-small")
    parser.add_argument("--output_dir", default="runs/reasoning")
    parser.add_argument(
        "--model_dir", default=None, help="A previous --output_dir: score its gpt2/final and crsm/final again."
    )
    parser.add_argument("--families", default="gpt2,crsm", help="Comma-separated subset of gpt2,crsm.")
    parser.add_argument(
        "--tasks",
        default="countdown,24,arithmetic,planning",
        help="Comma-separated subset of countdown,24,arithmetic,planning.",
    )
    parser.add_argument(
        "--eval_problems", type=int, default=None, help="Override the preset's held-out problems per task."
    )
    parser.add_argument("--sft_steps", type=int, default=None, help="Override the preset's SFT steps.")
    parser.add_argument("--value_steps", type=int, default=None, help="Override the preset's value-regression steps.")
    parser.add_argument(
        "--sweep_trials", type=int, default=None, help="Optuna trials over CRSM's MCTS settings (0: no sweep)."
    )
    parser.add_argument(
        "--methods",
        default=None,
        help="Comma-separated subset of self_consistency,beam,mcts,token_mcts to evaluate (greedy always runs).",
    )
    parser.add_argument(
        "--scorers",
        default=None,
        help="Comma-separated subset of verifier+lookahead,verifier,confidence,value-head for the scored methods.",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    preset = PRESETS[args.preset]
    for name in ("eval_problems", "sft_steps", "value_steps", "sweep_trials"):
        if getattr(args, name) is not None:
            setattr(preset, name, getattr(args, name))
    families = [f for f in args.families.split(",") if f]
    tasks = [t for t in args.tasks.split(",") if t]
    bad = [f for f in families if f not in ("gpt2", "crsm")] + [
        t for t in tasks if t not in ("countdown", "24", "arithmetic", "planning")
    ]
    methods = None if args.methods is None else {m for m in args.methods.split(",") if m}
    scorers = None if args.scorers is None else {m for m in args.scorers.split(",") if m}
    bad += sorted((methods or set()) - {"self_consistency", "beam", "mcts", "token_mcts"})
    bad += sorted((scorers or set()) - {"verifier+lookahead", "verifier", "confidence", "value-head"})
    if bad:
        raise SystemExit(
            f"unknown family / task / method / scorer {bad}; families: gpt2, crsm; tasks: countdown, 24, "
            "arithmetic, planning; methods: self_consistency, beam, mcts, token_mcts; scorers: verifier+lookahead, "
            "verifier, confidence, value-head"
        )
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    os.makedirs(args.output_dir, exist_ok=True)
    data = datasets_for(preset, args.seed)
    models, training = {}, {}
    if args.model_dir:
        for family in families:
            path = os.path.join(args.model_dir, family, "final")
            cls = CRSMForCausalLM if family == "crsm" else GPT2LMHeadModel
            models[family] = cls.from_pretrained(path).eval()
            tokenizer = AutoTokenizer.from_pretrained(path)
    else:
        tokenizer = build_tokenizer(vocab_size=260, texts=data["train"][:2000])
        built = build_models(preset, tokenizer, args.seed)
        for family in families:
            model, out_dir = built[family], os.path.join(args.output_dir, family)
            os.makedirs(out_dir, exist_ok=True)
            print(f"training {family}: {count_parameters(model):,} parameters", flush=True)
            sft(model, tokenizer, data["train"], preset, out_dir, args.seed)
            if family == "crsm":
                training["crsm_value"] = train_value_head(model, tokenizer, data, preset, out_dir, args.seed)
                if preset.sweep_trials:
                    validation = data["validation"]
                    swept = sweep_deliberation(
                        model,
                        tokenizer,
                        list(validation["prompt"]),
                        list(validation["answer"]),
                        countdown_task(),
                        n_trials=preset.sweep_trials,
                        max_simulations=max(preset.token_mcts_simulations),
                        max_new_tokens=preset.max_new_tokens,
                        seed=args.seed,
                    )
                    training["crsm_sweep"] = {"best": swept["best"], "validation_accuracy": swept["accuracy"]}
                    save_model(model, tokenizer, os.path.join(out_dir, "final"))
            else:
                save_model(model, tokenizer, os.path.join(out_dir, "final"))
            models[family] = model.eval()
    entries = []
    for family, model in models.items():
        for task_name in tasks:
            entries.extend(
                evaluate(model, tokenizer, family, task_name, data[task_name], preset, args.seed, methods, scorers)
            )
    table = {
        "preset": asdict(preset),
        "parameters": {f: count_parameters(m) for f, m in models.items()},
        "training": {
            k: {"mc_final_loss": v["mc"][-1] if v["mc"] else None, "rl_solve_rate": v["rl_solve_rate"]}
            if k == "crsm_value"
            else v
            for k, v in training.items()
        },
        "results": [{k: v for k, v in e.items() if k != "outcomes"} for e in entries],
        "goals": goals(entries),
    }
    atomic_write_json(os.path.join(args.output_dir, "table.json"), table, indent=1)
    plot(entries, os.path.join(args.output_dir, "accuracy_vs_compute.png"))
    print(json.dumps(table["goals"], indent=1))
    print(
        f"table: {os.path.join(args.output_dir, 'table.json')}; plot: {os.path.join(args.output_dir, 'accuracy_vs_compute.png')}"
    )


if __name__ == "__main__":
    main()
