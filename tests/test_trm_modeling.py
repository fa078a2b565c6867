import copy

import pytest
import torch
from conftest import tiny_trm_config
from model_tester import ModelTesterMixin
from transformers import AutoModelForTokenClassification

from hf_reason import AutoModelForPuzzleSolving, TRMConfig, TRMForPuzzleSolving, TRMModel
from hf_reason.models.trm.modeling_trm import (
    TRMBlock,
    score_cells,
    stablemax_cross_entropy,
    supervision_steps,
)


VARIANTS = {
    "attention_rope": {},
    "mlp_mixer_learned_puzzle_emb": dict(
        mixer="mlp", pos_encodings="learned", puzzle_emb_ndim=48, num_puzzle_identifiers=5
    ),
    "attention_none_q_learning": dict(pos_encodings="none", halting="q_learning", loss_type="softmax"),
    "memory_bank_lsh": dict(memory_slots=6, memory_top_k=2, memory_retrieval="lsh", memory_lsh_candidates=4),
}


def make_batch(config: TRMConfig, batch_size: int = 3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, config.vocab_size, (batch_size, config.seq_len), generator=gen)
    labels = torch.randint(1, config.vocab_size, (batch_size, config.seq_len), generator=gen)
    labels[:, -2:] = -100
    puzzle_ids = None
    if config.puzzle_emb_ndim:
        puzzle_ids = torch.randint(0, config.num_puzzle_identifiers, (batch_size,), generator=gen)
    return input_ids, labels, puzzle_ids


def make_model(seed: int = 0, **overrides) -> TRMForPuzzleSolving:
    torch.manual_seed(seed)
    return TRMForPuzzleSolving(tiny_trm_config(**overrides)).eval()


def trm_family_outputs(model, inputs):
    solved = model.solve(inputs["input_ids"], puzzle_identifiers=inputs.get("puzzle_identifiers"))
    return {"predictions": solved.predictions, "steps": solved.steps}


class TestTRMModelCommon(ModelTesterMixin):
    model_class = TRMForPuzzleSolving
    base_model_class = TRMModel
    auto_classes = (AutoModelForPuzzleSolving, AutoModelForTokenClassification)
    remote_code_files = frozenset(
        {"configuration_trm.py", "modeling_trm.py", "q_heads.py", "supervision.py", "memory_trm.py"}
    )
    remote_auto_class = "AutoModelForTokenClassification"
    config_variants = {"default": {}, **VARIANTS}
    remote_code_variant = "mlp_mixer_learned_puzzle_emb"
    family_outputs = staticmethod(trm_family_outputs)

    def get_config(self, **overrides):
        return tiny_trm_config(**overrides)

    def prepare_inputs(self, config, batch_size=3, seed=0):
        input_ids, labels, puzzle_ids = make_batch(config, batch_size, seed)
        inputs = {"input_ids": input_ids, "labels": labels}
        if puzzle_ids is not None:
            inputs["puzzle_identifiers"] = puzzle_ids
        return inputs

    def outputs_to_compare(self, output):
        return {"logits": output["logits"], "q_halt_logits": output["q_halt_logits"], "carry_y": output["carry"]["y"]}


@pytest.mark.parametrize("variant", VARIANTS)
def test_output_shapes_and_carry(variant):
    model = make_model(**VARIANTS[variant])
    config = model.config
    input_ids, labels, puzzle_ids = make_batch(config)
    out = model(input_ids, labels=labels, puzzle_identifiers=puzzle_ids)
    total_len = config.seq_len + config.puzzle_prefix_len
    assert out.logits.shape == (3, config.seq_len, config.vocab_size)
    assert out.q_halt_logits.shape == out.q_continue_logits.shape == (3,)
    assert out.carry.y.shape == out.carry.z.shape == (3, total_len, config.hidden_size)
    assert out.carry.steps.tolist() == [1, 1, 1]
    assert torch.isfinite(out.loss) and out.loss.ndim == 0
    assert out.is_correct.dtype == torch.bool
    assert out.target_q_continue is None  # eval mode: the bootstrap target is a training-only cost
    train_out = model.train()(input_ids, labels=labels, puzzle_identifiers=puzzle_ids)
    assert (train_out.target_q_continue is not None) == (config.halting == "q_learning")


@pytest.mark.parametrize("variant", VARIANTS)
def test_solve_of_a_batch_matches_solving_one_puzzle_at_a_time(variant):
    model = make_model(**VARIANTS[variant])
    input_ids, _, puzzle_ids = make_batch(model.config, batch_size=4)
    solved = model.solve(input_ids, puzzle_identifiers=puzzle_ids, use_halting=False)
    for i in range(4):
        ids = puzzle_ids[i : i + 1] if puzzle_ids is not None else None
        single = model.solve(input_ids[i : i + 1], puzzle_identifiers=ids, use_halting=False)
        assert torch.equal(single.predictions[0], solved.predictions[i])


@pytest.mark.parametrize("H_cycles,L_cycles,L_layers", [(1, 2, 1), (3, 2, 2), (2, 4, 1)])
def test_recursion_structure_and_no_grad_cycles(H_cycles, L_cycles, L_layers):
    """Only the last H-cycle is differentiable; every cycle is L_cycles z-updates then one y-update."""
    model = make_model(H_cycles=H_cycles, L_cycles=L_cycles, L_layers=L_layers).train()
    calls = []  # (grad enabled?) per block call
    for block in model.model.layers:
        block.register_forward_pre_hook(lambda module, args: calls.append(torch.is_grad_enabled()))
    input_ids, labels, _ = make_batch(model.config)
    out = model(input_ids, labels=labels)
    per_cycle = (L_cycles + 1) * L_layers
    assert len(calls) == H_cycles * per_cycle
    assert calls == [False] * (H_cycles - 1) * per_cycle + [True] * per_cycle

    # The carry is detached: nothing flows back into earlier supervision steps.
    assert not out.carry.y.requires_grad and not out.carry.z.requires_grad
    assert out.carry.y.grad_fn is None and out.carry.z.grad_fn is None


@pytest.mark.parametrize("H_cycles", [1, 2])
def test_gradient_reaches_the_input_state_only_without_no_grad_cycles(H_cycles):
    model = make_model(H_cycles=H_cycles).train()
    input_ids, labels, _ = make_batch(model.config)
    carry = model.model.initial_carry(input_ids.shape[0])
    carry.halted = torch.zeros_like(carry.halted)  # continue from the given state, no reset
    carry.y = carry.y.clone().requires_grad_(True)
    carry.z = carry.z.clone().requires_grad_(True)
    model(input_ids, labels=labels, carry=carry).loss.backward()
    if H_cycles == 1:
        assert carry.y.grad is not None and carry.y.grad.abs().sum() > 0
    else:  # the first cycle ran under no_grad, which cuts the graph from the incoming state
        assert carry.y.grad is None and carry.z.grad is None
    assert model.model.embed_tokens.weight.grad.abs().sum() > 0


def test_halted_rows_restart_from_initial_state():
    model = make_model()
    input_ids, _, _ = make_batch(model.config)
    first = model(input_ids)
    carry = first.carry
    carry.halted = torch.tensor([True, False, False])
    second = model(input_ids, carry=carry)
    fresh = model(input_ids)
    torch.testing.assert_close(second.logits[0], fresh.logits[0], rtol=1e-6, atol=1e-6)
    assert not torch.allclose(second.logits[1], fresh.logits[1])
    assert second.carry.steps.tolist() == [1, 2, 2]


@pytest.mark.parametrize("halting", ["bce", "q_learning"])
def test_full_deep_supervision_loop_in_both_halting_modes(halting):
    """A complete supervision loop: carry kept, one optimizer step per step, halted rows replaced."""
    torch.manual_seed(0)
    model = make_model(halting=halting, halt_max_steps=3, halt_exploration_prob=0.5).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    pool_inputs, pool_labels, _ = make_batch(model.config, batch_size=32, seed=1)
    batch_idx = torch.arange(4)
    next_idx = 4
    carry = None
    seen_halt = 0
    for _ in range(12):
        out = model(pool_inputs[batch_idx], labels=pool_labels[batch_idx], carry=carry)
        assert torch.isfinite(out.loss)
        if halting == "q_learning":
            assert out.target_q_continue is not None and out.q_continue_loss > 0
            assert ((out.target_q_continue >= 0) & (out.target_q_continue <= 1)).all()
        else:
            assert out.q_continue_loss == 0
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        carry = out.carry
        assert (carry.steps <= 3).all()
        assert carry.halted[carry.steps >= 3].all()  # the step limit always halts
        # replace halted examples by fresh ones, as deep supervision does
        for row in torch.nonzero(carry.halted).flatten().tolist():
            batch_idx[row] = next_idx % 32
            next_idx += 1
            seen_halt += 1
    assert seen_halt >= 4


def test_q_learning_target_is_the_bootstrapped_next_step_value():
    model = make_model(halting="q_learning", halt_max_steps=3).train()
    input_ids, labels, _ = make_batch(model.config)
    out = model(input_ids, labels=labels)
    with torch.no_grad():
        next_out = model(
            input_ids,
            carry=copy.copy(out.carry).__class__(
                y=out.carry.y, z=out.carry.z, steps=out.carry.steps, halted=torch.zeros(3, dtype=torch.bool)
            ),
        )
    expected = torch.sigmoid(torch.maximum(next_out.q_halt_logits, next_out.q_continue_logits))
    torch.testing.assert_close(out.target_q_continue, expected, rtol=1e-6, atol=1e-6)


def _continue_carry(carry):
    return type(carry)(y=carry.y, z=carry.z, steps=carry.steps, halted=torch.zeros_like(carry.halted))


def test_q_learning_target_at_the_last_step_is_the_next_halt_value_only():
    model = make_model(halting="q_learning", halt_max_steps=2).train()
    with torch.no_grad():  # continue preferred to halt, so max(halt, continue) != halt
        model.q_head.proj.bias.copy_(torch.tensor([-1.0, 2.0]))
    input_ids, labels, _ = make_batch(model.config)
    first = model(input_ids, labels=labels)
    last = model(input_ids, labels=labels, carry=_continue_carry(first.carry))
    assert last.carry.steps.tolist() == [2, 2, 2] and last.carry.halted.all()
    with torch.no_grad():
        after = model(input_ids, carry=_continue_carry(last.carry))
    # at the step limit only halting is left: the target is the next step's halt value
    torch.testing.assert_close(last.target_q_continue, torch.sigmoid(after.q_halt_logits), rtol=1e-6, atol=1e-6)
    maximum = torch.sigmoid(torch.maximum(after.q_halt_logits, after.q_continue_logits))
    assert not torch.allclose(last.target_q_continue, maximum)
    # before the limit it is the value of the best next action
    with torch.no_grad():
        second = model(input_ids, carry=_continue_carry(first.carry))
    expected = torch.sigmoid(torch.maximum(second.q_halt_logits, second.q_continue_logits))
    torch.testing.assert_close(first.target_q_continue, expected, rtol=1e-6, atol=1e-6)


def test_q_learning_target_is_not_computed_in_eval_mode():
    model = make_model(halting="q_learning", halt_max_steps=3)
    calls = []
    model.model.layers[0].register_forward_pre_hook(lambda m, a: calls.append(1))
    input_ids, labels, _ = make_batch(model.config)
    evaluated = model(input_ids, labels=labels)
    eval_calls = len(calls)
    trained = model.train()(input_ids, labels=labels)
    assert len(calls) - eval_calls == 2 * eval_calls  # training also runs the next step for its target
    assert evaluated.target_q_continue is None and evaluated.q_continue_loss == 0
    for name in ("logits", "q_halt_logits", "q_continue_logits", "lm_loss", "q_halt_loss"):
        torch.testing.assert_close(getattr(evaluated, name), getattr(trained, name), rtol=0, atol=0, msg=name)
    torch.testing.assert_close(evaluated.carry.y, trained.carry.y, rtol=0, atol=0)


@pytest.mark.parametrize("variant", ["attention_rope", "mlp_mixer_learned_puzzle_emb"])
def test_recursion_matches_a_hand_written_loop_over_the_blocks(variant):
    """z <- net(z + y + x) L_cycles times, then y <- net(y + z), H_cycles times: any other injection fails."""
    model = make_model(H_cycles=2, L_cycles=3, L_layers=2, **VARIANTS[variant])
    core = model.model
    input_ids, _, puzzle_ids = make_batch(model.config)
    out = core(input_ids, puzzle_identifiers=puzzle_ids)
    with torch.no_grad():
        x = core.embed_inputs(input_ids, puzzle_ids)
        carry = core.initial_carry(input_ids.shape[0])
        y, z = carry.y, carry.z
        rope = core.rotary_emb(x.dtype) if model.config.pos_encodings == "rope" else None

        def blocks(hidden):
            for layer in core.layers:
                hidden = layer(hidden, rope)
            return hidden

        for _ in range(model.config.H_cycles):
            for _ in range(model.config.L_cycles):
                z = blocks(z + y + x)
            y = blocks(y + z)
    # (float rounding only: the implementation adds y + x first)
    torch.testing.assert_close(out.last_hidden_state, y, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out.carry.z, z, rtol=1e-4, atol=1e-4)
    # the loop is sensitive to the injections: without x in the y-update's input it differs
    with torch.no_grad():
        swapped_y, swapped_z = carry.y, carry.z
        for _ in range(model.config.H_cycles):
            for _ in range(model.config.L_cycles):
                swapped_z = blocks(swapped_z + swapped_y)
            swapped_y = blocks(swapped_y + swapped_z + x)
    assert not torch.allclose(out.last_hidden_state, swapped_y, atol=1e-3)


@pytest.mark.parametrize("halting", ["q_learning", "bce"])
def test_halting_head_that_prefers_halting_stops_the_loop_early(halting):
    model = make_model(halting=halting, halt_max_steps=4).train()
    input_ids, labels, _ = make_batch(model.config, batch_size=4)
    # q_halt > q_continue (and q_halt > 0 for "bce"): every example halts at its first step
    with torch.no_grad():
        model.q_head.proj.bias.copy_(torch.tensor([3.0, -3.0]))
    carry, steps_seen = None, []
    for _ in range(3):
        out = model(input_ids, labels=labels, carry=carry)
        carry = out.carry
        steps_seen.append(carry.steps.tolist())
        assert carry.halted.all()
    assert steps_seen == [[1] * 4] * 3  # each step restarts the (replaced) examples
    assert model.solve(input_ids).steps.tolist() == [1] * 4
    # q_continue > q_halt: the loop runs to the step limit
    with torch.no_grad():
        model.q_head.proj.bias.copy_(torch.tensor([-3.0, 3.0]))
    carry = None
    for step in range(1, 5):
        carry = model(input_ids, labels=labels, carry=carry).carry
        assert carry.halted.all() == (step == 4) and not (carry.halted.any() and step < 4)
    assert model.solve(input_ids).steps.tolist() == [4] * 4


def test_gradient_checkpointing_recomputes_the_blocks():
    model = make_model(H_cycles=2, L_cycles=2, L_layers=1).train()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    calls = []
    model.model.layers[0].register_forward_pre_hook(lambda m, a: calls.append(1))
    input_ids, labels, _ = make_batch(model.config)
    loss = model(input_ids, labels=labels).loss
    before_backward = len(calls)
    loss.backward()
    assert len(calls) > before_backward  # blocks of the grad cycle ran again during backward


def test_initialisation_follows_the_method():
    model = TRMForPuzzleSolving(tiny_trm_config(hidden_size=64, intermediate_size=128, puzzle_emb_ndim=64))
    assert torch.all(model.q_head.proj.weight == 0)
    assert torch.all(model.q_head.proj.bias == -5)
    assert torch.all(model.model.puzzle_embedding.weight == 0)
    weight = model.model.layers[0].mlp.gate_up_proj.weight
    assert abs(weight.std().item() - 64**-0.5) < 0.1 * 64**-0.5  # LeCun normal
    assert weight.abs().max().item() <= 2 * 64**-0.5 / 0.8796 + 1e-6  # truncated at 2 sigma
    assert abs(model.model.y_init.std().item() - 1.0) < 0.35
    # a fresh model never halts at the start
    out = model.eval()(torch.randint(0, 11, (2, 16)), puzzle_identifiers=torch.zeros(2, dtype=torch.long))
    assert not out.carry.halted.any()


def test_solve_halts_early_when_the_head_says_so():
    model = make_model(halt_max_steps=5)
    input_ids, _, _ = make_batch(model.config, batch_size=4)
    full = model.solve(input_ids)
    assert full.steps.tolist() == [5, 5, 5, 5]  # bias -5: never halts before the budget
    assert full.step_predictions.shape == (5, 4, model.config.seq_len)
    with torch.no_grad():
        model.q_head.proj.bias[0] = 5.0  # always halt
    eager = model.solve(input_ids)
    assert eager.steps.tolist() == [1, 1, 1, 1]
    assert eager.step_predictions.shape[0] == 1
    assert torch.equal(eager.predictions, full.step_predictions[0])
    no_halting = model.solve(input_ids, use_halting=False, max_steps=3)
    assert no_halting.steps.tolist() == [3, 3, 3, 3]
    with pytest.raises(ValueError, match="max_steps"):
        model.solve(input_ids, max_steps=0)


def test_solve_without_halting_matches_step_by_step_forward():
    model = make_model(halt_max_steps=4)
    input_ids, _, _ = make_batch(model.config, batch_size=3)
    solved = model.solve(input_ids, use_halting=False)
    carry = None
    with torch.no_grad():
        for step in range(4):
            out = model(input_ids, carry=carry)
            carry = out.carry
            assert torch.equal(solved.step_predictions[step], out.logits.argmax(-1))
            torch.testing.assert_close(solved.q_halt_logits[step], out.q_halt_logits)


def test_supervision_steps_drop_halted_rows_and_continue_the_others_exactly():
    model = make_model(halt_max_steps=4, puzzle_emb_ndim=32, num_puzzle_identifiers=5)
    input_ids, labels, puzzle_ids = make_batch(model.config, batch_size=4)
    halt_at = torch.tensor([1, 3, 4, 2])  # a halting rule that stops row i at step halt_at[i]
    seen_steps = torch.zeros(4, dtype=torch.long)

    def halt(output):
        return output.carry.steps >= halt_at[rows]

    records, full = [], None
    with torch.no_grad():
        loop = supervision_steps(
            model, 4, halt=halt, input_ids=input_ids, labels=labels, puzzle_identifiers=puzzle_ids
        )
        rows = torch.arange(4)
        for record in loop:
            records.append(record)
            seen_steps[record.rows] += 1
            # the rows still running get exactly what running every row from the start gives
            full = model(input_ids, labels=labels, puzzle_identifiers=puzzle_ids, carry=full and full.carry)
            torch.testing.assert_close(record.output.logits, full.logits[record.rows])
            full.carry = full.carry.continued()
            rows = record.rows[~record.halted]
    assert [r.rows.tolist() for r in records] == [[0, 1, 2, 3], [1, 2, 3], [1, 2], [2]]
    assert [r.halted.tolist() for r in records] == [
        [True, False, False, False],
        [False, False, True],
        [True, False],
        [True],
    ]
    assert [r.step for r in records] == [1, 2, 3, 4] and seen_steps.tolist() == halt_at.tolist()
    with pytest.raises(ValueError, match="max_steps"):
        next(supervision_steps(model, 0, input_ids=input_ids))


def test_score_cells_leaves_out_ignored_positions():
    labels = torch.tensor([[1, 2, -100], [3, -100, -100], [-100, -100, -100]])
    scores = score_cells(torch.tensor([[1, 0, 7], [3, 9, 9], [0, 0, 0]]), labels)
    assert scores.correct.tolist() == [1, 1, 0] and scores.total.tolist() == [2, 1, 0]
    assert scores.exact.tolist() == [False, True, True]
    assert scores.accuracy.tolist() == [0.5, 1.0, 0.0]


def test_wrong_input_shape_is_a_clear_error():
    model = make_model()
    with pytest.raises(ValueError, match="seq_len=16"):
        model(torch.zeros(2, 15, dtype=torch.long))


def test_solve_takes_any_integer_dtype_and_names_a_float_one():
    model = make_model()
    input_ids, _, _ = make_batch(model.config)
    expected = model.solve(input_ids)
    for dtype in (torch.int32, torch.int16):
        solved = model.solve(input_ids.to(dtype))
        assert solved.predictions.dtype == solved.step_predictions.dtype == torch.long
        assert torch.equal(solved.predictions, expected.predictions)
        assert torch.equal(solved.steps, expected.steps)
    with pytest.raises(ValueError, match=r"^`input_ids` must hold integer ids; got dtype torch.float32\.$"):
        model.solve(input_ids.float())


@pytest.mark.parametrize("carry_rows,input_rows", [(3, 1), (1, 3), (3, 2)])
def test_a_carry_of_another_batch_size_is_refused_naming_both_sizes(carry_rows, input_rows):
    model = make_model()
    input_ids, _, _ = make_batch(model.config)
    carry = model(input_ids[:carry_rows]).carry
    message = f"The carry has {carry_rows} rows and `input_ids` {input_rows}: pass the carry the previous step"
    with pytest.raises(ValueError, match=f"^{message}"):
        model(input_ids[:input_rows], carry=carry)
    with pytest.raises(ValueError, match=f"^{message}"):
        model.model(input_ids[:input_rows], carry=carry)


def test_a_carry_whose_tensors_disagree_on_the_batch_size_is_refused_naming_each():
    model = make_model()
    input_ids, _, _ = make_batch(model.config)
    carry = model(input_ids).carry
    carry.halted = carry.halted[:1]
    with pytest.raises(
        ValueError, match="^The carry has rows {'y': 3, 'z': 3, 'steps': 3, 'halted': 1} and `input_ids` 3"
    ):
        model(input_ids, carry=carry)


def test_puzzle_identifiers_out_of_range_name_the_number_of_identifiers():
    model = make_model(puzzle_emb_ndim=32, num_puzzle_identifiers=3)
    input_ids, _, _ = make_batch(model.config)
    message = (
        r"`puzzle_identifiers` must hold ids from 0 to 2 \(num_puzzle_identifiers=3\); got 3 at position \(1,\)\."
    )
    with pytest.raises(ValueError, match=message):
        model(input_ids, puzzle_identifiers=torch.tensor([0, 3, 1]))
    with pytest.raises(ValueError, match=r"`puzzle_identifiers` must have shape \(batch_size,\) = \(3,\); got \(2,\)"):
        model(input_ids, puzzle_identifiers=torch.tensor([0, 1]))
    # Without a puzzle embedding the identifiers are not read (a dataset's column may hold any).
    plain = make_model()
    torch.testing.assert_close(
        plain(input_ids, puzzle_identifiers=torch.full((3,), 7)).logits, plain(input_ids).logits, rtol=0, atol=0
    )


def test_missing_puzzle_identifiers_mean_the_blank_puzzle():
    model = make_model(puzzle_emb_ndim=32, num_puzzle_identifiers=3)
    with torch.no_grad():
        model.model.puzzle_embedding.weight.normal_()  # make identifiers distinguishable
    input_ids, _, _ = make_batch(model.config)
    blank = model(input_ids, puzzle_identifiers=torch.zeros(3, dtype=torch.long)).logits
    torch.testing.assert_close(model(input_ids).logits, blank, rtol=0, atol=0)
    assert not torch.allclose(model(input_ids, puzzle_identifiers=torch.full((3,), 2)).logits, blank)


def test_stablemax_cross_entropy_matches_hand_computation():
    logits = torch.tensor([[[2.0, -1.0, 0.0]]])
    labels = torch.tensor([[0]])
    s = torch.tensor([3.0, 0.5, 1.0])  # x+1 for x>=0, 1/(1-x) for x<0
    expected = -torch.log(s[0] / s.sum())
    loss = stablemax_cross_entropy(logits, labels, labels != -100)
    torch.testing.assert_close(loss[0, 0].float(), expected)
    masked = stablemax_cross_entropy(logits, torch.tensor([[-100]]), torch.tensor([[False]]))
    assert masked.item() == 0.0


def test_sdpa_and_eager_attention_agree():
    torch.manual_seed(0)
    config = tiny_trm_config()
    sdpa = TRMForPuzzleSolving._from_config(copy.deepcopy(config), attn_implementation="sdpa").eval()
    eager = TRMForPuzzleSolving._from_config(copy.deepcopy(config), attn_implementation="eager").eval()
    eager.load_state_dict(sdpa.state_dict())
    assert sdpa.config._attn_implementation == "sdpa"
    input_ids, _, _ = make_batch(config)
    torch.testing.assert_close(eager(input_ids).logits, sdpa(input_ids).logits, rtol=1e-4, atol=1e-5)


def test_blocks_are_checkpointing_layers_and_no_split():
    model = make_model()
    assert all(isinstance(block, TRMBlock) for block in model.model.layers)
    assert model._no_split_modules == ["TRMBlock"]
    assert model.supports_gradient_checkpointing
    assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr()
