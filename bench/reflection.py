"""Multi-pass reflection with episodic memory: second attempt vs first, on held-out generated tasks.

A causal LM (a `save_pretrained` folder with its tokenizer, e.g. an arm of
examples/train_meta_attention.py) answers held-out generated tasks (math, theory of mind, planning:
each with its validator; prompts that are in the training data of that example, the curated set
and the generated tasks of seed 0, are excluded). `hf_reason.workspace.run_reflection` runs pass 0,
then a reflection pass that sees the attempt section by section, the validator's verdict and the
model's most attended prompt tokens (meta-attention models), and stores the reflection in the
episodic memory. Every task is then visited a second time, its past reflection fed in
(Reflexion-style). Prints

    reflection_second_attempt: ours X [lo, hi], reference Y [lo, hi] (first attempt), McNemar p = P
    memory_second_visit: ours X [lo, hi], reference Y [lo, hi] (first visit's first attempt), McNemar p = P

and the goal: second attempt >= first + 10 points with McNemar p < 0.01.

    python bench/reflection.py --model_dir runs/meta-attention/meta --output_dir runs/reflection
    python bench/reflection.py --tiny --output_dir /tmp/reflection_tiny   # random tiny model: the pipeline only
"""

import argparse
import json
import os
import shutil
import sys

import torch
from tqdm.auto import tqdm
from transformers import StoppingCriteriaList

from hf_reason.data.curated_tasks import generated_entries, read_curated_jsonl
from hf_reason.evaluation.statistics import format_proportion, mcnemar_from_outcomes
from hf_reason.file_io import atomic_write_json
from hf_reason.workspace import (
    EpisodicMemory,
    ReflectionConfig,
    StopAfterAnswerLine,
    attended_terms,
    run_reflection,
)


def held_out_tasks(categories, per_category: int, seed: int, training_seed: int, training_per_category: int):
    seen = {t["prompt"] for t in read_curated_jsonl()}
    for category in categories:
        seen |= {e["prompt"] for e in generated_entries(category, training_per_category, seed=training_seed)}
    tasks = []
    for category in categories:
        fresh = [e for e in generated_entries(category, 4 * per_category, seed=seed) if e["prompt"] not in seen]
        unique = list({e["prompt"]: e for e in fresh}.values())
        tasks += unique[:per_category]
    return tasks


def make_generate(model, tokenizer, max_new_tokens: int, temperature: float = 0.0):
    """texts -> reports that end with their Answer line; greedy, or sampled at `temperature` > 0."""
    context = getattr(model.config, "n_positions", None) or 1024

    @torch.no_grad()
    def generate(texts):
        out = []
        for text in texts:
            ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
            ids = ids[:, -(context - max_new_tokens) :]
            result = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new_tokens,
                do_sample=temperature > 0,
                **({"temperature": temperature, "top_k": 0} if temperature > 0 else {}),
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                stopping_criteria=StoppingCriteriaList([StopAfterAnswerLine(tokenizer, ids.shape[1])]),
            )
            completion = tokenizer.decode(result[0, ids.shape[1] :], skip_special_tokens=True)
            # a report ends with its Answer line
            answer = completion.find("Answer:")
            if answer >= 0 and "\n" in completion[answer:]:
                completion = completion[: answer + completion[answer:].index("\n")]
            out.append(completion)
        return out

    return generate


def tiny_model():
    from hf_reason import MetaAttentionConfig, MetaAttentionForCausalLM
    from hf_reason.data import build_tokenizer

    tokenizer = build_tokenizer(vocab_size=512)
    torch.manual_seed(0)
    config = MetaAttentionConfig(
        vocab_size=len(tokenizer),
        n_positions=512,
        n_embd=32,
        n_layer=2,
        n_head=2,
        meta_top_k=3,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return MetaAttentionForCausalLM(config).eval(), tokenizer


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", help="a save_pretrained folder with its tokenizer")
    parser.add_argument("--tiny", action="store_true", help="a random tiny meta-attention model, 3 tasks per category")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--categories", default="math,theory_of_mind,planning")
    parser.add_argument("--per_category", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1000, help="seed of the held-out generated tasks")
    parser.add_argument("--training_seed", type=int, default=0, help="seed of the training tasks to exclude")
    parser.add_argument("--training_per_category", type=int, default=60)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--max_new_tokens", type=int, default=256)
    parser.add_argument(
        "--votes",
        type=int,
        default=0,
        help="sampled pass-0 answers put to a majority vote; agreement under --agreement adds a reflection pass",
    )
    parser.add_argument("--agreement", type=float, default=0.6)
    parser.add_argument("--temperature", type=float, default=0.8, help="sampling temperature of the vote")
    parser.add_argument("--no_validator_feedback", action="store_true", help="reflect without the verdict")
    args = parser.parse_args(argv)
    if args.tiny:
        args.per_category, args.max_new_tokens = 3, 16
    elif not args.model_dir:
        parser.error("--model_dir is required unless --tiny")

    if args.tiny:
        model, tokenizer = tiny_model()
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        import hf_reason  # noqa: F401  (registers the model families with the Auto classes)

        tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
        model = AutoModelForCausalLM.from_pretrained(args.model_dir).eval()
    categories = [c.strip() for c in args.categories.split(",") if c.strip()]
    tasks = held_out_tasks(categories, args.per_category, args.seed, args.training_seed, args.training_per_category)
    memory_dir = os.path.join(args.output_dir, "memory")
    shutil.rmtree(memory_dir, ignore_errors=True)  # every measurement starts with an empty memory
    memory = EpisodicMemory(memory_dir)
    config = ReflectionConfig(
        num_passes=args.passes,
        show_validator=not args.no_validator_feedback,
        votes=args.votes,
        agreement_threshold=args.agreement,
    )
    generate = make_generate(model, tokenizer, args.max_new_tokens)
    sample = make_generate(model, tokenizer, args.max_new_tokens, args.temperature) if args.votes > 1 else None
    attended = None
    if hasattr(model, "introspect"):

        def attended(text, completion):
            start = len(tokenizer(text, add_special_tokens=False)["input_ids"])
            return attended_terms(model, tokenizer, text + completion, start, top=config.top_attended)

    visits = []
    for visit in range(2):  # the second visit reads the reflections the first stored
        traces = []
        for task in tqdm(tasks, desc=f"visit {visit + 1} of 2", unit="task"):
            validator = json.loads(task["validator"]) if isinstance(task["validator"], str) else task["validator"]
            prompt = task["prompt"] + "\n"
            traces.append(
                run_reflection(generate, prompt, validator, config, memory, sample=sample, attended=attended)
            )
        visits.append(traces)

    first = [t.first_passed for t in visits[0]]
    second = [t.final_passed for t in visits[0]]
    revisit = [t.first_passed for t in visits[1]]
    n = len(first)
    _, _, p_reflection = mcnemar_from_outcomes(second, first)
    _, _, p_memory = mcnemar_from_outcomes(revisit, first)
    outcomes = {}
    for trace in visits[0]:
        for outcome in trace.outcomes():
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    gain = (sum(second) - sum(first)) / n
    summary = {
        "settings": dict(vars(args)),
        "tasks": n,
        "first_attempt": sum(first) / n,
        "second_attempt": sum(second) / n,
        "second_visit_first_attempt": sum(revisit) / n,
        "mcnemar_p_reflection": p_reflection,
        "mcnemar_p_memory": p_memory,
        "outcomes": outcomes,
        "extra_passes_from_the_vote": sum(len(t.attempts) > args.passes for t in visits[0]),
        "goal_met": gain >= 0.10 and p_reflection < 0.01,
        "examples": [
            {"task": t.prompt[:200], "passes": [a.completion for a in t.attempts], "outcomes": t.outcomes()}
            for t in visits[0][:5]
        ],
    }
    atomic_write_json(os.path.join(args.output_dir, "results.json"), summary, indent=1)
    print(
        f"reflection_second_attempt: ours {format_proportion(sum(second), n)}, reference "
        f"{format_proportion(sum(first), n)} (first attempt), McNemar p = {p_reflection:.3g}"
    )
    print(
        f"memory_second_visit: ours {format_proportion(sum(revisit), n)}, reference "
        f"{format_proportion(sum(first), n)} (first visit's first attempt), McNemar p = {p_memory:.3g}"
    )
    print(f"outcomes of the reflection passes: {outcomes}")
    print(f"goal (second attempt >= first + 10 points, p < 0.01): {'met' if summary['goal_met'] else 'NOT met'}")
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
