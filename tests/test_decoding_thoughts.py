"""Private thoughts: control tokens and their embeddings, stripping at the token level (batched, left
padded, nested, unclosed), generate's post-processing, pollution, the private subspace, DPO's tags."""

import pytest
import torch
from decoding_testing import ForcedTokens, our_tokenizer, tiny_gpt2, with_control_tokens

from hf_reason.data import CONTROL_TOKENS, THOUGHT_END, THOUGHT_START, add_control_tokens, build_tokenizer
from hf_reason.decoding import (
    enable_private_thought_subspace,
    generate,
    split_thoughts,
    strip_thoughts,
    thought_pollution,
    visible_texts,
)
from hf_reason.decoding.subspace import disable_private_thought_subspace


S, E, PAD = 100, 101, 0  # <thought>, </thought>, padding


def test_strip_thoughts_on_batched_left_padded_rows_with_nested_and_unclosed_tags():
    prompt = [[PAD, PAD, 7, 8], [PAD, 7, 8, 9], [5, 6, 7, 8], [PAD, PAD, PAD, 4]]
    generated = [
        [S, 11, 12, E, 20, 21, 2],  # a thought, then the answer and EOS
        [20, S, 11, S, 12, E, 13, E, 21, 2],  # nested: everything up to the outer close is private
        [20, 21, S, 11, 12, 13],  # unclosed: the rest of the row is withheld
        [E, 20, S, E, 21, 2],  # a stray close is dropped; an empty thought leaves nothing
    ]
    width = max(map(len, generated))
    rows = [p + g + [PAD] * (width - len(g)) for p, g in zip(prompt, generated)]
    out = strip_thoughts(torch.tensor(rows), prompt_length=4, thought_start_id=S, thought_end_id=E, pad_token_id=PAD)
    # rows keep their padding after EOS (as generate leaves it); the width is the longest visible row
    visible = [[20, 21, 2, PAD, PAD, PAD], [20, 21, 2], [20, 21], [20, 21, 2, PAD, PAD, PAD, PAD]]
    expected = [p + v + [PAD] * (7 - len(v)) for p, v in zip(prompt, visible)]
    assert out.tolist() == expected
    assert split_thoughts(generated[1], S, E) == ([20, 21, 2], [11, 12, 13])
    assert split_thoughts(generated[2], S, E) == ([20, 21], [11, 12, 13])
    with pytest.raises(ValueError, match="pad_token_id"):
        strip_thoughts(torch.tensor(rows), 4, S, E, None)


def test_generate_hides_thoughts_by_construction():
    tokenizer, (start, end, _) = with_control_tokens(our_tokenizer())
    model = tiny_gpt2(tokenizer)
    a, b, c = tokenizer.convert_tokens_to_ids(["a", "b", "c"])
    eos = tokenizer.eos_token_id
    batch = tokenizer(["xyz", "q"], return_tensors="pt", padding=True, padding_side="left")
    script = [[start, a, b, end, c, eos], [c, start, a, start, b]]  # row 1 never closes its thought
    kwargs = dict(attention_mask=batch["attention_mask"], max_new_tokens=6, pad_token_id=tokenizer.pad_token_id)
    raw = model.generate(batch["input_ids"], logits_processor=[ForcedTokens(script)], **kwargs)
    prompt = batch["input_ids"].shape[1]
    assert raw[0, prompt : prompt + 6].tolist() == script[0]
    out = generate(model, batch["input_ids"], tokenizer=tokenizer, logits_processor=[ForcedTokens(script)], **kwargs)
    assert out[:, prompt:].tolist() == [[c, eos], [c, tokenizer.pad_token_id]]
    assert visible_texts(out, prompt, tokenizer) == ["c", "c"]
    # what a text-level decode of the raw ids shows: the tags go, the thought content stays
    naive = tokenizer.decode(raw[0, prompt:], skip_special_tokens=True)
    assert naive == "abc" and visible_texts(raw, prompt, tokenizer)[0] == "c"
    # explicitly off: the raw ids
    kept = generate(
        model,
        batch["input_ids"],
        tokenizer=tokenizer,
        hide_thoughts=False,
        logits_processor=[ForcedTokens(script)],
        **kwargs,
    )
    assert torch.equal(kept, raw)
    with pytest.raises(ValueError, match="needs a tokenizer with <thought>"):
        generate(model, batch["input_ids"], tokenizer=our_tokenizer(), hide_thoughts=True, max_new_tokens=2)


def test_pollution_counts_answer_ngrams_copied_from_thoughts():
    rows = [
        [S, 10, 11, 12, E, 10, 11, 2],  # the answer repeats the thought's bigram (10, 11)
        [S, 10, 11, E, 30, 31, 2],  # a clean answer
        [S, 10, 11, E, 10, 11, 2],  # the same copy, but (10, 11) is in the reference: allowed
    ]
    ends = [r[: r.index(2)] for r in rows]
    report = thought_pollution(ends, S, E, n=2, allowed=[[], [], [10, 11]])
    assert report.per_row == [1.0, 0.0, 0.0] and report.polluted_rows == 1
    assert report.mean_pollution == pytest.approx(1 / 3)
    assert report.leaked_thought_tokens == 0
    # shown = a text-level strip that keeps thought content: every thought token is counted as leaked
    naive = [[t for t in r if t not in (S, E)] for r in ends]
    assert thought_pollution(ends, S, E, n=2, visible=naive).leaked_thought_tokens == 3 + 2 + 2
    with pytest.raises(ValueError, match="`n` must be an integer >= 1"):
        thought_pollution(ends, S, E, n=0)


def test_control_tokens_are_added_and_their_rows_start_at_the_mean():
    tokenizer = build_tokenizer(vocab_size=300)
    model = tiny_gpt2(tokenizer)
    old = model.get_input_embeddings().weight.detach().clone()
    ids = add_control_tokens(tokenizer, model)
    assert tokenizer.convert_ids_to_tokens(ids) == list(CONTROL_TOKENS) and ids == [300, 301, 302]
    assert all(len(tokenizer(t, add_special_tokens=False)["input_ids"]) == 1 for t in CONTROL_TOKENS)
    weight = model.get_input_embeddings().weight.detach()
    assert weight.shape[0] == 303 and torch.equal(weight[:300], old)
    mean, std = old.mean(0), old.std(0)
    for i in ids:
        assert ((weight[i] - mean).abs() <= 5e-3 * std + 1e-7).all()  # the mean, perturbed by 1e-3 std
    assert not torch.equal(weight[300], weight[301])  # yet the tags differ
    assert model.lm_head.weight is model.get_input_embeddings().weight  # still tied
    # again: nothing to add, nothing changes
    assert add_control_tokens(tokenizer, model) == ids and model.get_input_embeddings().weight.shape[0] == 303
    # "description": the mean of the rows the tag's text used to split into
    other = build_tokenizer(vocab_size=300)
    described = tiny_gpt2(other)
    pieces = other(THOUGHT_START, add_special_tokens=False)["input_ids"]
    expected = described.get_input_embeddings().weight[pieces].mean(0).detach()
    add_control_tokens(other, described, tokens=[THOUGHT_START, THOUGHT_END], init="description")
    torch.testing.assert_close(described.get_input_embeddings().weight[300].detach(), expected)
    with pytest.raises(ValueError, match="`init` must be one of"):
        add_control_tokens(other, described, init="zeros")


def test_crsm_resizes_its_dynamics_table_for_new_tokens():
    from hf_reason.models.crsm import CRSMConfig, CRSMForCausalLM

    tokenizer = build_tokenizer(vocab_size=300)
    torch.manual_seed(0)
    model = CRSMForCausalLM(
        CRSMConfig(vocab_size=300, hidden_size=32, state_size=8, num_hidden_layers=1, eos_token_id=1, pad_token_id=2)
    ).eval()
    add_control_tokens(tokenizer, model)
    assert model.dynamics.token_embedding.num_embeddings == 303
    # the latent dynamics read the new tokens: a deliberation whose candidates include them runs
    new = torch.tensor([300, 301, 302])
    out = model.predict_next_summary(torch.zeros(3, model.config.summary_size), new)
    assert out.shape == (3, model.config.summary_size)


def test_private_subspace_partitions_the_embeddings_and_follows_cached_decoding():
    tokenizer, (start, end, _) = with_control_tokens(our_tokenizer())
    model = tiny_gpt2(tokenizer, seed=1)
    subspace = enable_private_thought_subspace(model, tokenizer, private_dims=8)
    a, b = tokenizer.convert_tokens_to_ids(["a", "b"])
    ids = torch.tensor([[a, start, a, b, end, b, a], [a, b, a, start, b, b, b]])
    embeddings = model.get_input_embeddings()(ids)
    inside = torch.tensor([[0, 1, 1, 1, 1, 0, 0], [0, 0, 0, 1, 1, 1, 1]], dtype=torch.bool)
    assert (embeddings[inside][:, :-8] == 0).all() and (embeddings[~inside][:, -8:] == 0).all()
    assert subspace.proj.weight.requires_grad and "thought_subspace.proj.weight" in dict(model.named_parameters())
    # cached decoding (one token per call, the depth carried over) gives the logits of the full forward
    with torch.no_grad():
        full = model(ids).logits
        step = model(ids[:, :3], use_cache=True)
        logits, past = [step.logits], step.past_key_values
        for t in range(3, ids.shape[1]):
            step = model(ids[:, t : t + 1], past_key_values=past, use_cache=True)
            logits.append(step.logits)
            past = step.past_key_values
    torch.testing.assert_close(torch.cat(logits, 1), full, rtol=1e-5, atol=1e-5)
    disable_private_thought_subspace(model)
    assert not hasattr(model, "thought_subspace")
    plain = model.get_input_embeddings()(ids)
    assert (plain[~inside][:, -8:] != 0).any()  # off: the embeddings are the model's own again
    with pytest.raises(ValueError, match="private_dims"):
        enable_private_thought_subspace(model, tokenizer, private_dims=32)


def test_length_balanced_dpo_splits_thought_tags_as_think_tags(tmp_path):
    from datasets import Dataset

    from hf_reason.trainers import LengthBalancedDPOConfig, LengthBalancedDPOTrainer
    from hf_reason.trainers.dpo import segment_token_weights

    def weights_for(tags):
        tokenizer = build_tokenizer(vocab_size=384, extra_special_tokens=tags)
        pair = {
            "prompt": "Q: 2 + 3?",
            "chosen": f"{tags[0]} 2 + 3 = 5, checked twice{tags[1]} #### 5",
            "rejected": f"{tags[0]} 2 + 3{tags[1]} #### 6 or so",
        }
        args = LengthBalancedDPOConfig(
            output_dir=str(tmp_path / tags[0].strip("<>")),
            per_device_train_batch_size=1,
            think_alpha=0.25,
            answer_alpha=0.5,
            report_to=[],
            save_strategy="no",
            bf16=False,
            max_steps=1,
        )
        trainer = LengthBalancedDPOTrainer(
            model=tiny_gpt2(tokenizer),
            ref_model=tiny_gpt2(tokenizer),
            args=args,
            train_dataset=Dataset.from_list([pair]),
            processing_class=tokenizer,
        )
        batch = trainer.data_collator([trainer.train_dataset[0]])
        starts, ends = trainer._tag_ids()
        assert tokenizer.convert_ids_to_tokens(starts) == [tags[0]]  # the default pairs: the one the tokenizer has
        return segment_token_weights(batch["input_ids"], batch["completion_mask"], starts, ends, 0.25, 0.5)

    think = weights_for(("<think>", "</think>"))
    thought = weights_for((THOUGHT_START, THOUGHT_END))
    assert torch.equal(think, thought) and (think < 1).any()
    with pytest.raises(ValueError, match="pair up by index"):
        LengthBalancedDPOConfig(
            output_dir=str(tmp_path), think_start_token=["<a>", "<b>"], think_end_token=["</a>"], bf16=False
        )


def test_thoughts_inside_a_constrained_output_are_free_and_never_returned():
    tokenizer, (start, end, _) = with_control_tokens(our_tokenizer())
    model = tiny_gpt2(tokenizer)
    a, b = tokenizer.convert_tokens_to_ids(["a", "b"])
    ids = tokenizer(["q"], return_tensors="pt")["input_ids"]
    schema = {
        "type": "object",
        "properties": {"k": {"type": "boolean"}},
        "required": ["k"],
        "additionalProperties": False,
    }
    # a thought forced first (free inside: `a b` is no JSON), then the grammar's own output
    script = [[start, a, b, end]]
    out = generate(
        model,
        ids,
        tokenizer=tokenizer,
        json_schema=schema,
        allow_thoughts=True,
        max_new_tokens=30,
        logits_processor=[ForcedTokens(script)],
        # the untrained model would open thoughts again and again (they are allowed anywhere)
        sequence_bias={(start,): -20.0},
    )
    text = visible_texts(out, ids.shape[1], tokenizer)[0]
    assert text in ('{"k":true}', '{"k":false}') and start not in out[0].tolist()
    # without allow_thoughts the grammar refuses the forced tag, and says so
    from hf_reason.decoding import GrammarDeadEndError

    with pytest.raises(GrammarDeadEndError, match=f"does not allow token {start}"):
        generate(
            model,
            ids,
            tokenizer=tokenizer,
            json_schema=schema,
            max_new_tokens=30,
            logits_processor=[ForcedTokens(script)],
        )
