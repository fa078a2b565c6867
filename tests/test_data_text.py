import pytest

from hf_reason.data import (
    build_tokenizer,
    extract_answer,
    generate_arithmetic,
    is_correct,
    load_text_corpus,
)
from hf_reason.data.arithmetic import distinct_arithmetic, solve_steps


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(vocab_size=512)


def test_corpus_splits_are_disjoint_deterministic_and_english():
    splits = {name: load_text_corpus(name) for name in ("train", "validation", "test")}
    assert len(splits["train"]) > 1000
    assert 30 < len(splits["validation"]) < 300 and 30 < len(splits["test"]) < 300
    texts = {name: set(ds["text"]) for name, ds in splits.items()}
    assert not texts["train"] & texts["validation"]
    assert not texts["train"] & texts["test"]
    assert not texts["validation"] & texts["test"]
    # the seed changes the order only
    other = load_text_corpus("train", seed=1)
    assert set(other["text"]) == texts["train"] and other["text"] != splits["train"]["text"]
    assert load_text_corpus("train")["text"] == splits["train"]["text"]
    joined = " ".join(splits["train"]["text"])
    assert " the " in joined and "function" in joined


def test_corpus_rejects_unknown_split():
    with pytest.raises(ValueError, match="split.*train.*validation.*test"):
        load_text_corpus("dev")


def test_tokenizer_round_trip_special_tokens_and_determinism(tokenizer):
    assert len(tokenizer) == 512
    assert tokenizer.bos_token_id == 0 and tokenizer.eos_token_id == 1 and tokenizer.pad_token_id == 2
    text = "Q: 12 + 7 * 3 = ?\nA: 7 * 3 = 21\n#### 33 — unicode café"
    ids = tokenizer(text).input_ids
    assert tokenizer.decode(ids) == text
    assert tokenizer.unk_token_id not in ids
    assert len(ids) < len(text.encode("utf-8"))  # merges were learned
    assert build_tokenizer(vocab_size=512).get_vocab() == tokenizer.get_vocab()
    batch = tokenizer(["a", "a longer sentence"], padding=True)
    assert batch.input_ids[0][-1] == tokenizer.pad_token_id


def test_tokenizer_extra_special_tokens_and_validation():
    tok = build_tokenizer(vocab_size=300, texts=["hello world"] * 10, extra_special_tokens=("<think>",))
    assert tok.convert_tokens_to_ids("<think>") == 4
    assert tok("<think>hello").input_ids[0] == 4
    with pytest.raises(ValueError, match="vocab_size"):
        build_tokenizer(vocab_size=100, texts=["x"])
    with pytest.raises(ValueError, match="extra_special_tokens"):
        build_tokenizer(vocab_size=300, texts=["x"], extra_special_tokens=("<|eos|>",))


def test_arithmetic_answers_are_exact():
    ds = generate_arithmetic(200, min_ops=1, max_ops=4, max_value=30, seed=3)
    assert ds.column_names == ["prompt", "completion", "answer", "num_ops"]
    for row in ds:
        assert row["prompt"].startswith("Q: ") and row["prompt"].endswith(" = ?\nA:")
        assert is_correct(row["completion"], row["answer"])
        assert row["completion"].count("\n") == row["num_ops"]  # one line per operation
        expression = row["prompt"][3 : -len(" = ?\nA:")]
        tokens = expression.split()
        numbers, ops = [int(t) for t in tokens[0::2]], tokens[1::2]
        # an independent evaluation: sum of products, left to right
        terms, signs, current = [], [1], numbers[0]
        for op, n in zip(ops, numbers[1:]):
            if op == "*":
                current *= n
            else:
                terms.append(current)
                signs.append(1 if op == "+" else -1)
                current = n
        terms.append(current)
        assert int(row["answer"]) == sum(s * t for s, t in zip(signs, terms))
    assert generate_arithmetic(5, seed=3)["prompt"] == generate_arithmetic(5, seed=3)["prompt"]
    assert generate_arithmetic(20, seed=3)["prompt"] != generate_arithmetic(20, seed=4)["prompt"]


def test_solve_steps_precedence():
    lines, value = solve_steps([3, 4, 2], ["+", "*"])
    assert lines == ["4 * 2 = 8", "3 + 8 = 11"] and value == 11
    assert solve_steps([5, 7, 2], ["-", "-"])[1] == -4


def test_extract_answer_and_is_correct():
    assert extract_answer(" 4 * 2 = 8\n#### 8") == "8"
    assert extract_answer("#### -3 then #### 5") == "-3"  # the first committed answer counts
    assert extract_answer("no answer here") is None
    assert extract_answer(None) is None
    assert is_correct("#### 007", "7") and is_correct("####12", 12)
    assert not is_correct("#### 8", "9") and not is_correct("8", "8") and not is_correct("#### 8", "x")


def test_arithmetic_rejects_bad_arguments():
    with pytest.raises(ValueError, match="max_ops"):
        generate_arithmetic(3, min_ops=3, max_ops=2)
    with pytest.raises(ValueError, match="num_examples"):
        generate_arithmetic(0)
    with pytest.raises(ValueError, match="max_value"):
        generate_arithmetic(3, max_value=0)


def test_distinct_arithmetic_has_no_repeated_prompt_and_says_when_the_space_is_too_small():
    rows = distinct_arithmetic(200, max_ops=1, max_value=9, seed=3)
    assert len(rows) == 200 and len({r["prompt"] for r in rows}) == 200
    assert rows == distinct_arithmetic(200, max_ops=1, max_value=9, seed=3)
    # one operator over 0..2 gives at most 3 * 3 * 4 = 36 different problems
    with pytest.raises(ValueError, match=r"only \d+ distinct problems for 50 \(max_ops=1, max_value=2\)"):
        distinct_arithmetic(50, max_ops=1, max_value=2)


def test_tokenizers_return_what_a_gpt2_is_trained_on_and_generate_matches_a_plain_greedy_loop(tokenizer, tmp_path):
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from hf_reason.data import build_gpt2_style_tokenizer

    gpt2_style = build_gpt2_style_tokenizer(vocab_size=280, texts=["hello world, the quick brown fox"] * 20)
    for tok in (tokenizer, gpt2_style):
        assert set(tok(["a b", "c"])) == {"input_ids", "attention_mask"}
        tok.save_pretrained(tmp_path / "tok")
        assert set(AutoTokenizer.from_pretrained(tmp_path / "tok")("a b")) == {"input_ids", "attention_mask"}
    # GPT-2 reads `token_type_ids` (adding token 0's embedding at every position) though no trainer passes them:
    # `generate(**tokenizer(...))` must run the model on what it was trained on, as a plain greedy loop does
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=2, n_head=2))
    model.eval()
    batch = tokenizer(["Q: 12 + 7 * 3 = ?\nA:"], return_tensors="pt")
    out = model.generate(**batch, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    ids = batch["input_ids"]
    with torch.no_grad():
        for _ in range(8):
            ids = torch.cat([ids, model(ids).logits[:, -1:].argmax(-1)], dim=1)
    assert out.tolist() == ids.tolist()


def test_extra_tokens_are_never_split_and_survive_skipping_special_tokens(tmp_path):
    from transformers import AutoTokenizer

    tok = build_tokenizer(vocab_size=400, extra_special_tokens=("<x>",), extra_tokens=("<think>", "</think>"))
    assert len(tok) == 400 and tok.convert_tokens_to_ids(["<think>", "</think>"]) == [398, 399]
    text = " <think> 12 + 3 = 15</think> #### 15<x>"
    ids = tok(text)["input_ids"]
    assert ids[1] == 398 and 399 in ids
    # what TRL's GRPO hands its reward functions: special tokens dropped, think tags kept
    assert tok.decode(ids, skip_special_tokens=True) == " <think> 12 + 3 = 15</think> #### 15"
    tok.save_pretrained(tmp_path)
    assert AutoTokenizer.from_pretrained(tmp_path).decode(ids, skip_special_tokens=True) == tok.decode(
        ids, skip_special_tokens=True
    )
    with pytest.raises(ValueError, match="extra_tokens` must be distinct and not repeat a special token"):
        build_tokenizer(vocab_size=300, texts=["x"], extra_special_tokens=("<think>",), extra_tokens=("<think>",))
    with pytest.raises(ValueError, match=r"vocab_size` must be an int >= 262"):
        build_tokenizer(vocab_size=261, texts=["x"], extra_tokens=("<a>", "<b>"))
