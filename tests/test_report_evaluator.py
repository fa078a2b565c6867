"""The report evaluator: every score on hand-made good and bad reports, the reward, the CLI."""

import csv
import json
import math
import os
import re
import stat
import subprocess
import sys

import pytest
import torch

from hf_reason.data.curated_tasks import read_curated_jsonl
from hf_reason.evaluation.reports import (
    DEFAULT_TOOLS,
    ReportEvaluator,
    ReportScoreReward,
    coverage_score,
    parse_report,
    prefix_quality,
    present_sections,
    reflection_alignment,
    repetition_score,
    tool_call_problems,
    tool_sanity,
)


GOOD = """Plan: Track where the key is and who saw each move.
Step 1: The key starts in the box.
Step 2: Anne moved the key to the drawer while Sally was away.
Monitor: Sally did not see the move.
Diagnosis: Answering drawer would report reality, not Sally's belief.
Reflection: The answer rests on [focus: box @ L1 H0] and [focus: Sally @ late]. Steps confirmed.
Tool: calculator({"expression": "1 + 1"})
Answer: box"""

STORY = "1. Sally entered the hall.\n2. The key is in the box.\n3. Sally exited the hall.\n4. Anne moved the key to the drawer."
TASK = {
    "id": "theory_of_mind-test",
    "category": "theory_of_mind",
    "prompt": STORY + "\nQuestion: Where will Sally look?",
    "validator": {"kind": "tom_answer", "config": {"answer": "box", "distractors": ["drawer"], "order": 1}},
    "introspection": {"focus_terms": ["box", "Sally"], "hints": []},
}
# introspect() JSON (the meta-attention model's output form): per position, attended tokens.
INTROSPECTION = [
    {
        "position": 20,
        "token": "Ġlook",
        "num_layers": 3,
        "attended": [
            {"token": "Ġbox", "position": 9, "layer": 1, "head": 0, "weight": 0.6},
            {"token": "Sally", "position": 3, "layer": 2, "head": 1, "weight": 0.3},
        ],
    },
]


def test_parse_report_sections_citations_tools():
    parsed = parse_report("noise\n" + GOOD)
    assert parsed.prefix == "noise\n"
    assert parsed.names() == ["Plan", "Step 1", "Step 2", "Monitor", "Diagnosis", "Reflection", "Answer"]
    assert parsed.answer == "box"
    assert [(c.term, c.layer, c.head, c.band) for c in parsed.citations] == [
        ("box", 1, 0, None),
        ("Sally", None, None, "late"),
    ]
    assert parsed.tool_calls == ['calculator({"expression": "1 + 1"})']


def test_prefix_quality_distance_part():
    assert prefix_quality(GOOD) == 1.0
    short = prefix_quality("Okay.\n" + GOOD)
    long = prefix_quality("zx qv " * 40 + "\n" + GOOD)
    assert 1.0 > short > long > 0.0 and long < 0.01
    assert prefix_quality(GOOD.replace("Plan:", "Idea:")) == 0.0


@pytest.fixture(scope="module")
def tiny_lm():
    from transformers import GPT2Config, GPT2LMHeadModel

    from hf_reason.data.text import build_tokenizer

    sentence = "the report starts with a plan and then checks each step. "
    tokenizer = build_tokenizer(vocab_size=300, texts=[sentence * 4, "zq xv kk jj"])
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=1, n_head=2))
    ids = torch.tensor([tokenizer(sentence * 3)["input_ids"][:60]])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(40):  # memorise one sentence: a real LM that finds it likely and noise unlikely
        loss = model(ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval(), tokenizer


def test_prefix_quality_perplexity_part(tiny_lm):
    lm, tokenizer = tiny_lm
    fluent = prefix_quality(
        "the report starts with a plan and then checks each step.\n" + GOOD, lm=lm, tokenizer=tokenizer
    )
    noise = prefix_quality("zq kk xv jj qz vk zj xq kj vz qq.\n" + GOOD, lm=lm, tokenizer=tokenizer)
    distance_only = prefix_quality(
        "the report starts with a plan and then checks each step.\n" + GOOD, tokenizer=tokenizer
    )
    assert 0.0 <= noise < fluent <= distance_only <= 1.0
    assert fluent > 2 * noise


def test_prefix_perplexity_fits_prompts_and_prefixes_longer_than_the_context(tiny_lm):
    from hf_reason.evaluation.reports import _perplexity

    lm, tokenizer = tiny_lm
    window = lm.config.n_positions
    sentence = "the report starts with a plan and then checks each step. "
    prompt = "zq xv kk jj " * 40 + sentence * 3  # noise far back, the memorised text right before the prefix
    assert len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) > 2 * window
    prefix = "the report starts with a plan and then checks each step."
    fluent = prefix_quality(prefix + "\n" + GOOD, prompt=prompt, lm=lm, tokenizer=tokenizer)
    noise = prefix_quality("zq kk xv jj qz vk zj xq kj vz qq.\n" + GOOD, prompt=prompt, lm=lm, tokenizer=tokenizer)
    assert 0.0 <= noise < fluent <= 1.0
    # the context kept is the prompt's end: the same as scoring with only that end as the prompt
    target = tokenizer(prefix, add_special_tokens=False)["input_ids"]
    tail = tokenizer.decode(tokenizer(prompt, add_special_tokens=False)["input_ids"][-(window - len(target)) :])
    assert _perplexity(prefix, prompt, lm, tokenizer)[0] == pytest.approx(
        _perplexity(prefix, tail, lm, tokenizer)[0], rel=1e-4
    )
    # a prefix longer than the window is scored on its first window - 1 tokens
    long_prefix = sentence * 20
    ppl, scored = _perplexity(long_prefix, prompt, lm, tokenizer)
    assert scored == window - 1 and math.isfinite(ppl)


def test_coverage_and_repetition():
    assert coverage_score(GOOD) == 1.0
    partial = "Plan: do it.\nStep 1: did it.\nAnswer: 3"
    assert coverage_score(partial) == pytest.approx(3 / 6)
    assert present_sections(partial) == {"Plan", "Step", "Answer"}
    assert present_sections("Plan:\nStep 2: x\nMonitor:   \n") == {"Step"}  # empty bodies do not count
    assert repetition_score(GOOD) == 1.0
    looping = GOOD.replace(
        "Monitor: Sally did not see the move.",
        "Monitor: check the move check the move check the move check the move.\nMonitor: again.",
    )
    assert 0.0 < repetition_score(looping) < 0.6
    assert repetition_score("Answer: 3") == 0.0


def test_reflection_alignment_against_introspection_and_prior():
    good = parse_report(GOOD).citations
    assert reflection_alignment(good, INTROSPECTION, ["box", "Sally"]) == pytest.approx(1.0)
    wrong_hints = parse_report(GOOD.replace("L1 H0", "L0 H1").replace("@ late", "@ early")).citations
    score = reflection_alignment(wrong_hints, INTROSPECTION, ["box", "Sally"])
    assert score == pytest.approx((1.0 + 0.0 + 1.0) / 3)
    unattended = parse_report("Reflection: [focus: hall] [focus: drawer]\n").citations
    assert reflection_alignment(unattended, INTROSPECTION, ["box", "Sally"]) == 0.0
    assert reflection_alignment([], INTROSPECTION, ["box"]) == 0.0
    assert reflection_alignment(good, None, None) is None
    assert reflection_alignment(good, None, ["box", "hall"]) == pytest.approx(0.5)  # F1 of {box, sally} vs {box, hall}


def _record(position, *entries, num_layers=4):
    return {
        "position": position,
        "token": "x",
        "num_layers": num_layers,
        "attended": [dict(zip(("token", "position", "layer", "head", "weight"), e)) for e in entries],
    }


def test_reflection_alignment_counts_only_real_attention_to_the_prompt():
    cite = lambda text: parse_report(f"Reflection: {text}\n").citations  # noqa: E731
    # prompt = positions 0..9 (the first described position is 10)
    # 1. attention to the report's own tokens (keys >= the prompt length) is not evidence
    own = [_record(10, ("Ġbox", 9, 0, 0, 0.5)), _record(12, ("Ġbox", 11, 0, 0, 0.9))]
    assert reflection_alignment(cite("[focus: box]"), own) == 1.0
    assert reflection_alignment(cite("[focus: box]"), own[1:], prompt_length=10) == 0.0
    # 2. weights at or below chance (1 / p over the p visible keys) are not evidence
    weak = [_record(10, ("Ġbox", 9, 0, 0, 0.09))]
    assert reflection_alignment(cite("[focus: box]"), weak) == 0.0
    assert reflection_alignment(cite("[focus: box]"), weak, min_weight=0.05) == 1.0
    # 3. a term split into BPE pieces matches through the decoded span; a glued word does not
    pieces = [_record(10, ("ĠS", 3, 0, 0, 0.02), ("ally", 4, 0, 0, 0.6), ("Ġboxes", 7, 0, 0, 0.3))]
    assert reflection_alignment(cite("[focus: Sally]"), pieces) == 1.0
    assert reflection_alignment(cite("[focus: box]"), pieces) == 0.0
    # the pieces must be adjacent positions to form the word
    apart = [_record(10, ("ĠS", 2, 0, 0, 0.02), ("ally", 4, 0, 0, 0.6))]
    assert reflection_alignment(cite("[focus: Sally]"), apart) == 0.0
    # 4. bands are thirds of the model's layers (from the JSON), not of the largest layer seen
    early = [_record(10, ("Ġbox", 9, 1, 0, 0.6), num_layers=6)]
    assert reflection_alignment(cite("[focus: box @ early]"), early) == 1.0
    assert reflection_alignment(cite("[focus: box @ early]"), early, num_layers=2) == 0.5  # layer 1 of 2 is late
    no_depth = [{k: v for k, v in early[0].items() if k != "num_layers"}]
    evaluator = ReportEvaluator()
    warnings = evaluator.score("Plan: x\nReflection: [focus: box @ early]\nAnswer: 1", introspection=no_depth)[
        "warnings"
    ]
    assert any("num_layers" in w for w in warnings)


def test_reflection_alignment_on_a_real_introspect_json():
    """A tiny MetaAttentionForCausalLM's `introspect(...).to_json(tokenizer)` fed to the evaluator, checked
    against the attention maps themselves."""
    from hf_reason import MetaAttentionConfig, MetaAttentionForCausalLM
    from hf_reason.data.text import build_tokenizer

    prompt = (
        "Sally put the marble in the basket. Anne moved the marble to the box.\nQuestion: Where will Sally look?\n"
    )
    report = (
        "Plan: track the marble.\nStep 1: Sally saw the basket.\nReflection: [focus: Sally @ late] "
        "[focus: basket @ L0] [focus: marble] [focus: zebra]\nAnswer: basket"
    )
    # trained on other text, so that the task's words are split into several BPE pieces
    tokenizer = build_tokenizer(
        vocab_size=290, texts=["the report starts with a plan and then checks each step. " * 4]
    )
    torch.manual_seed(0)
    config = MetaAttentionConfig(
        vocab_size=len(tokenizer), n_positions=256, n_embd=32, n_layer=2, n_head=2, meta_top_k=2, meta_hidden_size=16
    )
    model = MetaAttentionForCausalLM(config).eval()
    encoded = tokenizer(prompt, return_offsets_mapping=True, add_special_tokens=False)
    prompt_ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
    ids = torch.tensor([prompt_ids + tokenizer(report, add_special_tokens=False)["input_ids"]])
    start, seq = len(prompt_ids), ids.shape[1]
    records = model.introspect(ids, start=start, top_k=config.n_layer * config.n_head * seq).to_json(tokenizer)
    assert records[0]["num_layers"] == 2

    # the expectation, straight from the maps: per term, the prompt tokens overlapping its occurrences
    def token_positions(term):
        spans = [(m.start(), m.end()) for m in re.finditer(rf"\b{term}\b", prompt)]
        return {i for i, (a, b) in enumerate(offsets) if any(a < e and b > s for s, e in spans)}

    assert all(len(token_positions(t)) > 2 for t in ("Sally", "basket", "marble"))  # split into pieces
    maps = torch.stack(model(ids, output_attentions=True).attentions, dim=1)[0]  # (L, H, T, S)

    def hit(term, layer=None, band=None):
        for p in range(start, seq):
            for key in token_positions(term):
                for l in range(config.n_layer):
                    if (layer is None or l == layer) and (band is None or {0: "early", 1: "late"}[l] == band):
                        if maps[l, :, p - 1, key].max() >= 1.0 / p:
                            return True
        return False

    attention = sum(hit(t) for t in ("Sally", "basket", "marble", "zebra")) / 4
    hints = (hit("Sally", band="late") + hit("basket", layer=0)) / 2
    result = ReportEvaluator().score(report, introspection=records)
    assert not result["warnings"] or all("num_layers" not in w for w in result["warnings"])
    assert result["reflection_alignment"] == pytest.approx((attention + hints) / 2)
    assert 0.0 < attention < 1.0  # "zebra" is not in the prompt; the others are attended somewhere


def test_tool_sanity():
    assert tool_sanity(GOOD) == 1.0
    assert tool_sanity("Plan: x\nAnswer: 1") == 1.0  # no calls, nothing ill-formed
    bad = GOOD + '\nTool: rm_rf({"path": "/"})\nTool: calculator({"expr": 1})\nTool: calculator(not json)'
    assert tool_sanity(bad) == pytest.approx(1 / 4)


def test_validator_score_and_overall_good_vs_bad():
    evaluator = ReportEvaluator([TASK])
    good = evaluator.score(GOOD, "theory_of_mind-test", introspection=INTROSPECTION)
    assert good["validator"] == 1.0 and good["overall"] == pytest.approx(1.0) and good["warnings"] == []
    bad = evaluator.score("blah blah\nPlan: guess\nAnswer: drawer or box", "theory_of_mind-test")
    assert bad["validator"] == 0.0 and bad["overall"] < 0.6
    assert any("validator failed" in w for w in bad["warnings"]) and any(
        "missing sections" in w for w in bad["warnings"]
    )
    for value in (*good.values(), *bad.values()):
        if isinstance(value, float):
            assert 0.0 <= value <= 1.0
    assert "unknown task_id" in evaluator.score(GOOD, "nope")["warnings"][0]


def test_python_validator_runs_in_sandbox_fail_fast(tmp_path):
    task = next(e for e in read_curated_jsonl() if e["id"] == "programming-dedupe")
    evaluator = ReportEvaluator([task])
    assert evaluator.score(task["completion"], task["id"])["validator"] == 1.0
    broken = task["completion"].replace("if item not in seen:", "if True:")
    result = evaluator.score(broken, task["id"])
    assert result["validator"] == 0.0 and "test 1 failed" in " ".join(result["warnings"])
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    hostile = task["completion"].replace(
        "seen, out = set(), []", f"import os; os.remove({str(victim)!r}); seen, out = set(), []"
    )
    assert evaluator.score(hostile, task["id"])["validator"] == 0.0
    assert victim.read_text() == "keep me"


def test_python_validator_refuses_solutions_that_fake_a_pass():
    from hf_reason.evaluation.validators import validate

    task = next(e for e in read_curated_jsonl() if e["id"] == "programming-dedupe")
    good = task["completion"]
    assert validate(good, task["validator"]).passed
    head = "```python\n"
    cheats = {
        "the old harness's pass text, then exit 0 at import": "print('all tests passed'); raise SystemExit(0)\n",
        "hard exit 0 at import": "import os; print('all tests passed', flush=True); os._exit(0)\n",
        "a nonce-shaped last line": "print('0123456789abcdef0123456789abcdef 5'); raise SystemExit(0)\n",
        "KeyboardInterrupt at import": "raise KeyboardInterrupt\n",
    }
    for name, cheat in cheats.items():
        report = good.replace(head, head + cheat, 1)
        assert report != good
        result = validate(report, task["validator"])
        assert not result.passed, name
    # exit 0 from inside the function under test is a failed assert, not a pass
    exiting = good.replace("seen, out = set(), []", "raise SystemExit(0)")
    result = validate(exiting, task["validator"])
    assert not result.passed and "test 1 failed" in result.reason


def test_report_score_reward_has_trl_signature():
    reward = ReportScoreReward(ReportEvaluator([TASK]))
    assert reward.__name__ == "report_overall"
    values = reward(
        prompts=["p", "p"],
        completions=[[{"role": "assistant", "content": GOOD}], "Answer: drawer"],
        task_id=["theory_of_mind-test"] * 2,
        introspection=[INTROSPECTION, None],
    )
    assert values[0] == pytest.approx(1.0) and values[1] < 0.5
    only_validator = ReportScoreReward(ReportEvaluator([TASK]), score="validator")
    assert only_validator(["p"], ["Answer: box"], task_id=["theory_of_mind-test"]) == [1.0]
    with pytest.raises(ValueError, match="score"):
        ReportScoreReward(ReportEvaluator(), score="vibes")


def test_cli_end_to_end(tmp_path):
    tasks = read_curated_jsonl()
    gold = [t for t in tasks if t["category"] in ("math", "narrative")][:3]
    reports = [{"task_id": t["id"], "completion": t["completion"]} for t in gold]
    reports.append({"task_id": gold[0]["id"], "completion": "umm umm umm\nAnswer: -1"})
    path = tmp_path / "reports.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in reports) + "\n")
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "hf_reason.cli", "eval-reports", str(path), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_reports"] == 4
    assert [r["validator"] for r in summary["rows"]] == [1.0, 1.0, 1.0, 0.0]
    rows = list(csv.DictReader((out / "scores.csv").open()))
    assert len(rows) == 4 and float(rows[0]["overall"]) > float(rows[3]["overall"])
    progress = [json.loads(line) for line in (out / "progress.jsonl").read_text().splitlines()]
    assert progress and all(p["index"] == 3 for p in progress)
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_every_output_file_is_created_with_the_same_permissions(umask, tmp_path):
    """summary.json and scores.csv are written atomically, progress.jsonl is appended: all three are
    created as a plain `open` creates a file, 0o666 less the umask."""
    report = {"task_id": TASK["id"], "completion": "Answer: drawer"}  # warns: no Plan section
    previous = os.umask(umask)
    try:
        ReportEvaluator([TASK]).evaluate([report], out_dir=str(tmp_path / "out"))
    finally:
        os.umask(previous)
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in (tmp_path / "out").iterdir()}
    assert modes == dict.fromkeys(["progress.jsonl", "scores.csv", "summary.json"], 0o666 & ~umask)


def test_tool_sanity_runs_the_real_tools_and_flags_contradicted_results():
    report = (
        'Plan: multiply.\nTool: calculator({"expression": "4213 * 512"})\nResult: 2157056\n'
        'Tool: calculator({"expression": "12 * 12"})\nResult: 145\n'
        'Tool: calculator({"expression": "__import__(\'os\')"})\n'
        'Tool: search({"query": "x", "k": 99})\nTool: lookup({"term": 3})\nAnswer: 2157056'
    )
    problems = dict(tool_call_problems(report))
    assert problems['calculator({"expression": "4213 * 512"})'] is None
    assert (
        problems['calculator({"expression": "12 * 12"})']
        == "the report says calculator returned '145', it returns '144'"
    )
    assert "ArithmeticExpressionError" in problems['calculator({"expression": "__import__(\'os\')"})']
    assert "`k`" in problems['search({"query": "x", "k": 99})'] and "`term`" in problems['lookup({"term": 3})']
    assert tool_sanity(report) == pytest.approx(1 / 5)
    result = ReportEvaluator().score(report)
    assert result["tool_sanity"] == pytest.approx(1 / 5)
    assert sum(w.startswith("tool call `") for w in result["warnings"]) == 4
    # a signature dict checks tool and argument names only, which all five calls get right
    assert tool_sanity(report, DEFAULT_TOOLS) == 1.0
