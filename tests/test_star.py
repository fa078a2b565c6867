"""STaR: only verified rationales are kept (sampled and rationalised), hints never reach the training prompts, and
an interrupted iteration resumes from its completed stage files to the result of an uninterrupted run."""

import json

import pytest
from datasets import Dataset
from decoding_testing import our_tokenizer
from grpo_testing import tiny_gpt2

import hf_reason.trainers.star as star
from hf_reason.trainers.star import StarConfig, load_kept, run_star


def _problems(n, offset=0):
    return Dataset.from_dict(
        {
            "prompt": [f"Q: {i} + 0 = ?\nA:" for i in range(offset, offset + n)],
            "answer": [str(i % 10) for i in range(n)],
        }
    )


def _verifier(completion, answer):
    # a scripted verifier (about one completion in three passes, by its characters and the answer): an untrained
    # tiny model's samples then pass sometimes and fail sometimes, which is what the bookkeeping is checked on
    return (sum(map(ord, completion)) + int(answer)) % 3 == 0


def _config(tmp_path, name, **options):
    values = dict(
        output_dir=str(tmp_path / name), num_iterations=1, num_samples=3, chunk_size=4, sft_steps=2, batch_size=4,
        max_new_tokens=6, max_length=64, temperature=1.0,
    )  # fmt: skip
    values.update(options)
    return StarConfig(**values)


def _base():
    return tiny_gpt2(our_tokenizer())


def test_only_verified_rationales_are_kept_and_trained_on_hint_free_prompts(tmp_path):
    tokenizer = our_tokenizer()
    records = run_star(_base, tokenizer, _problems(8), _problems(4, 100), _verifier, _config(tmp_path, "run"), log=str)
    assert [r["iteration"] for r in records] == [0, 1]
    folder = tmp_path / "run" / "iter_1"
    kept = load_kept(folder)
    assert kept and all(_verifier(r["completion"], a) for r in kept for a in [_answer(r["prompt"])])
    assert all("Hint" not in r["prompt"] for r in kept)
    samples = [g for f in sorted(folder.glob("samples_*.json")) for g in json.loads(f.read_text())["samples"]]
    problems = _problems(8)
    solved = [any(_verifier(s, a) for s in group) for group, a in zip(samples, problems["answer"])]
    assert sum(r["source"] == "sampled" for r in kept) == sum(solved)
    rationalised = [r for r in kept if r["source"] == "rationalised"]
    assert {r["prompt"] for r in rationalised} <= {p for p, ok in zip(problems["prompt"], solved) if not ok}
    assert records[1]["sampled_correct"] == sum(solved) and records[1]["rationalised"] == len(rationalised)
    provenance = json.loads((folder / "provenance.json").read_text())
    assert provenance["config"]["num_samples"] == 3 and "kept.json" in provenance["files"]


def _answer(prompt):
    return str(int(prompt.split()[1]) % 10)


def test_without_rationalisation_nothing_is_rationalised(tmp_path):
    records = run_star(
        _base, our_tokenizer(), _problems(8), _problems(4, 100), _verifier,
        _config(tmp_path, "ablation", rationalize=False), log=str,
    )  # fmt: skip
    assert records[1]["rationalised"] == 0
    assert not list((tmp_path / "ablation" / "iter_1").glob("rationalised_*.json"))


def test_an_interrupted_iteration_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    tokenizer = our_tokenizer()
    train, held_out = _problems(8), _problems(4, 100)
    reference = run_star(_base, tokenizer, train, held_out, _verifier, _config(tmp_path, "straight"), log=str)

    real_sft = star.sft_on_rows
    monkeypatch.setattr(star, "sft_on_rows", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        run_star(_base, tokenizer, train, held_out, _verifier, _config(tmp_path, "resumed"), log=str)
    folder = tmp_path / "resumed" / "iter_1"
    assert (folder / "kept.json").is_file() and not (folder / "provenance.json").exists()
    sampled = {f.name: f.read_text() for f in folder.glob("samples_*.json")}

    calls = []
    real_sample = star.sample_completions
    monkeypatch.setattr(star, "sft_on_rows", real_sft)
    monkeypatch.setattr(star, "sample_completions", lambda *a, **k: calls.append(a[2]) or real_sample(*a, **k))
    resumed = run_star(_base, tokenizer, train, held_out, _verifier, _config(tmp_path, "resumed"), log=str)
    # every sampling and rationalising chunk was on disk: the only generation left is the held-out evaluation
    assert calls and all(list(prompts) == list(held_out["prompt"]) for prompts in calls)
    assert {f.name: f.read_text() for f in folder.glob("samples_*.json")} == sampled
    assert resumed == reference
    assert (tmp_path / "resumed" / "iter_1" / "provenance.json").is_file()
    again = run_star(_base, tokenizer, train, held_out, _verifier, _config(tmp_path, "resumed"), log=str)
    assert again == reference  # a complete iteration is read back, not redone


def test_sft_resumes_from_the_newest_checkpoint_whose_save_finished(tmp_path):
    from hf_reason.trainers.star import last_saved_checkpoint

    assert last_saved_checkpoint(tmp_path / "absent") is None
    for step, finished in ((2, True), (10, True), (12, False)):
        (tmp_path / f"checkpoint-{step}").mkdir()
        if finished:
            (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert last_saved_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")  # 10 > 2 numerically; 12 unfinished
