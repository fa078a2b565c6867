"""Grammar-constrained GRPO: the loss scores completions with the log-probabilities they were sampled with."""

import re

import pytest
import torch
from decoding_testing import our_tokenizer, tiny_gpt2
from grpo_testing import grpo_trainer
from grpo_testing import tiny_gpt2 as tiny_gpt2_without_dropout

from hf_reason.decoding import (
    GrammarConstrainedGRPOMixin,
    GrammarLogitsProcessor,
    GrammarSpec,
    compile_grammar,
    generate_with_processors,
    masked_completion_logps,
)


PATTERN = "(ab|cd|x[0-9]){1,4}"


def test_masked_logps_are_the_log_probabilities_of_the_sampling_distribution():
    tokenizer = our_tokenizer()
    model = tiny_gpt2(tokenizer, seed=3)
    compiled = compile_grammar(tokenizer, GrammarSpec("regex", PATTERN))
    ids = torch.tensor([tokenizer("hello")["input_ids"], tokenizer("world")["input_ids"]])
    assert ids.shape[0] == 2  # equal lengths: no padding, so positions agree between generate and forward
    torch.manual_seed(0)
    with generate_with_processors(model, lambda: [GrammarLogitsProcessor(compiled, tokenizer.eos_token_id)]):
        out = model.generate(
            ids,
            do_sample=True,
            temperature=0.7,
            top_k=0,
            top_p=1.0,
            max_new_tokens=10,
            output_scores=True,
            return_dict_in_generate=True,
            pad_token_id=tokenizer.pad_token_id,
        )
    assert "generate" not in vars(model)  # the patch is gone after the block
    completion = out.sequences[:, ids.shape[1] :]
    steps = completion.shape[1]
    # what generate sampled from: its processed scores (mask, then temperature)
    sampled = torch.log_softmax(torch.stack(out.scores, 1), -1).gather(-1, completion[..., None])[..., 0]
    allowed = GrammarLogitsProcessor(compiled, tokenizer.eos_token_id).replay_masks(completion.tolist(), steps)
    attention = torch.ones_like(out.sequences)
    with torch.no_grad():
        masked, entropy = masked_completion_logps(
            model, out.sequences, attention, steps, allowed, temperature=0.7, compute_entropy=True
        )
        logits = model(out.sequences).logits[:, ids.shape[1] - 1 : -1] / 0.7
    unmasked = torch.log_softmax(logits, -1).gather(-1, completion[..., None])[..., 0]
    eos = (completion == tokenizer.eos_token_id).int()
    valid = (eos.cumsum(1) - eos) == 0  # up to and including each row's end of output
    torch.testing.assert_close(masked[valid], sampled[valid], rtol=1e-5, atol=1e-5)
    # the unmasked log-probabilities are lower wherever mass lies outside the grammar: not what was sampled
    assert (unmasked[valid] <= masked[valid] + 1e-6).all() and (unmasked[valid] < masked[valid] - 0.1).any()
    assert torch.isfinite(entropy[valid]).all() and (entropy[valid] >= 0).all()
    for row in completion.tolist():
        text = tokenizer.decode(row[: row.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in row else row)
        assert re.fullmatch(PATTERN, text)


@pytest.mark.slow
@pytest.mark.parametrize("trainer_name", ["GRPOTrainer", "ReasoningGRPOTrainer"])
def test_grpo_with_constrained_rollouts(trainer_name, tmp_path):
    import trl

    from hf_reason import trainers

    base = getattr(trl, trainer_name, None) or getattr(trainers, trainer_name)

    class ConstrainedGRPO(GrammarConstrainedGRPOMixin, base):
        pass

    tokenizer = our_tokenizer()
    seen = []

    def reward(completions, **kwargs):
        seen.extend(completions)
        return [float(len(c)) for c in completions]

    def build(grammar):
        return grpo_trainer(
            ConstrainedGRPO,
            trl.GRPOConfig,
            tiny_gpt2_without_dropout(tokenizer),  # dropout in train mode would turn the shared prefill off
            tokenizer,
            tmp_path,
            reward_funcs=reward,
            trainer_kwargs={"grammar": grammar},
            max_completion_length=10,
            max_steps=2,
            learning_rate=1e-2,
        )

    trainer = build(GrammarSpec("regex", PATTERN))
    calls = []
    original = GrammarConstrainedGRPOMixin._get_per_token_logps_and_entropies

    def counting(self, *a, **k):
        calls.append(1)
        return original(self, *a, **k)

    trainer._get_per_token_logps_and_entropies = counting.__get__(trainer)
    trainer.train()
    # every rollout constrained (through the shared-prefill generation too); the loss read the masked log-probs
    assert len(seen) == 16 and calls
    for text in seen:
        assert re.fullmatch(PATTERN, text.replace(tokenizer.eos_token, "")), text
    assert all(torch.isfinite(torch.tensor(log["loss"])) for log in trainer.state.log_history if "loss" in log)
    if trainer_name == "ReasoningGRPOTrainer":
        assert any(log.get("generation/prefill_rows_saved", 0) > 0 for log in trainer.state.log_history)
    with pytest.raises(ValueError, match="`grammar` must be a GrammarSpec"):
        build(PATTERN)
