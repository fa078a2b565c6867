"""Episodic memory: normalised keys, concurrent writers, restarts, damaged lines."""

import json
import multiprocessing

import pytest

from hf_reason.workspace import EpisodicMemory, prompt_key


def _writer(folder, rank, writer, count):
    memory = EpisodicMemory(folder, rank=rank)
    for i in range(count):
        # long lines, so that an unlocked or split write would interleave visibly
        memory.add(f"prompt {writer}-{i}", f"reflection {writer}-{i} " + "x" * 5000, answer=str(i))


def test_prompt_key_ignores_case_and_whitespace_only():
    assert prompt_key("Where is  the KEY?\n") == prompt_key("where is the key?")
    assert prompt_key("Where is the key?") != prompt_key("Where was the key?")


def test_concurrent_writers_leave_no_corrupt_line(tmp_path):
    # four processes append to the same rank file (the worst case), two more to their own
    context = multiprocessing.get_context("fork")  # the writers only append; fork keeps the start cheap
    jobs = [context.Process(target=_writer, args=(tmp_path, 0, w, 25)) for w in range(4)]
    jobs += [context.Process(target=_writer, args=(tmp_path, r, 10 + r, 25)) for r in (1, 2)]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(timeout=120)
        assert job.exitcode == 0
    lines = (tmp_path / "memory-rank0.jsonl").read_bytes().splitlines()
    assert len(lines) == 100 and all(json.loads(line)["reflection"].endswith("x" * 5000) for line in lines)
    memory = EpisodicMemory(tmp_path, rank=0)
    records = memory.records()
    assert len(records) == 150 and memory.skipped_lines == 0
    assert {r["prompt"] for r in records} == {f"prompt {w}-{i}" for w in (0, 1, 2, 3, 11, 12) for i in range(25)}


def test_memory_is_read_back_after_a_restart_and_skips_a_torn_last_line(tmp_path):
    memory = EpisodicMemory(tmp_path, rank=3)
    memory.add("What is 17 * 23?", "I slipped on the carry.", answer="381", correct=False)
    memory.add("what is 17 *  23?", "17 * 23 = 391: 17 * 20 + 17 * 3.", answer="391", correct=True)
    with open(tmp_path / "memory-rank3.jsonl", "ab") as handle:  # a crash in the middle of a write
        handle.write(b'{"key": "abc", "prompt": "trunc')
    again = EpisodicMemory(tmp_path, rank=0)
    assert [r["answer"] for r in again.get("WHAT IS 17 * 23?")] == ["381", "391"]
    assert again.latest("What is 17 * 23?")["correct"] is True and again.skipped_lines == 1
    assert again.get("What is 18 * 23?") == [] and again.latest("nothing") is None
    assert again.search("carry multiplication 17", k=1)[0]["answer"] == "381"


def test_rank_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "5")
    memory = EpisodicMemory(tmp_path)
    memory.add("p", "r")
    assert memory.path.name == "memory-rank5.jsonl" and len(memory) == 1


@pytest.mark.parametrize("bad", ["[1, 2]", '{"key": "k"}'])
def test_lines_that_are_not_records_are_skipped(tmp_path, bad):
    (tmp_path / "memory-rank0.jsonl").write_text(bad + "\n")
    memory = EpisodicMemory(tmp_path)
    assert memory.records() == [] and memory.skipped_lines == 1
