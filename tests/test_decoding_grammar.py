"""Grammar-constrained decoding: outputs always parse, the mask never blocks everything, JSON-only and
Python modes check what they return, the compiled-grammar cache, both engines, our tokenizers and GPT-2's layout."""

import json
import re
import string

import jsonschema
import numpy as np
import pytest
import torch
from decoding_testing import ForcedTokens, gpt2_style_tokenizer, our_tokenizer, tiny_gpt2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import LogitsProcessorList

from hf_reason.decoding import (
    ARITHMETIC_GBNF,
    GrammarDeadEndError,
    GrammarLogitsProcessor,
    GrammarSpec,
    StructuredOutputError,
    check_output,
    compile_grammar,
    generate,
)
from hf_reason.decoding.engines import _CACHE


PROPERTY = settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


# --- a small family of regular grammars, each rendered as GBNF (what is enforced) and as a Python
# regex (the independent check), with the longest sentence's length (the token budget it needs) ----
def _literal():
    return st.text(alphabet="abcxyz019+-", min_size=1, max_size=3).map(lambda s: ('"' + s + '"', re.escape(s), len(s)))


_CLASSES = st.sampled_from([("[a-c]", "[a-c]", 1), ("[0-9]", "[0-9]", 1), ("[xyz]", "[xyz]", 1)])


def _combine(children):
    seq = st.lists(children, min_size=1, max_size=3).map(
        lambda parts: (
            "(" + " ".join(p[0] for p in parts) + ")",
            "(?:" + "".join(p[1] for p in parts) + ")",
            sum(p[2] for p in parts),
        )
    )
    alt = st.lists(children, min_size=2, max_size=3).map(
        lambda parts: (
            "(" + " | ".join(p[0] for p in parts) + ")",
            "(?:" + "|".join(p[1] for p in parts) + ")",
            max(p[2] for p in parts),
        )
    )

    def repeat(part, low, high):
        gbnf = "(" + " ".join([part[0]] * low + [f"({part[0]})?"] * (high - low)) + ")" if high else '""'
        return gbnf, f"(?:{part[1]}){{{low},{high}}}", part[2] * high

    rep = st.tuples(children, st.integers(0, 2), st.integers(0, 2)).map(
        lambda t: repeat(t[0], min(t[1], t[2]), max(t[1], t[2]))
    )
    return st.one_of(seq, alt, rep)


GRAMMARS = st.recursive(st.one_of(_literal(), _CLASSES), _combine, max_leaves=6).filter(lambda g: g[0] != '""')
PROMPTS = st.text(alphabet=string.ascii_lowercase + " ", min_size=1, max_size=12)


@pytest.fixture(scope="module")
def tokenizer():
    return our_tokenizer()


@pytest.fixture(scope="module")
def model(tokenizer):
    return tiny_gpt2(tokenizer)


@PROPERTY
@given(grammar=GRAMMARS, prompts=st.lists(PROMPTS, min_size=1, max_size=3), seed=st.integers(0, 2**16))
def test_constrained_outputs_always_parse(tokenizer, model, grammar, prompts, seed):
    gbnf, pattern, longest = grammar
    batch = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left")
    torch.manual_seed(seed)
    out = generate(
        model,
        batch["input_ids"],
        attention_mask=batch["attention_mask"],
        tokenizer=tokenizer,
        grammar=f"root ::= {gbnf}",
        max_new_tokens=longest + 1,  # a token is at least one byte; + the end of output
        do_sample=True,
        pad_token_id=tokenizer.pad_token_id,
    )
    for row in out[:, batch["input_ids"].shape[1] :].tolist():
        assert tokenizer.eos_token_id in row, "the budget covers the longest sentence: every row must end"
        text = tokenizer.decode(row[: row.index(tokenizer.eos_token_id)])
        assert re.fullmatch(pattern, text), (gbnf, text)


JSON_FIELDS = st.sampled_from(
    [
        {"type": "integer", "minimum": 0, "maximum": 999},
        {"type": "boolean"},
        {"type": "string", "maxLength": 4},
        {"enum": ["red", "green", "blue"]},
        {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 9}, "maxItems": 3},
    ]
)


@PROPERTY
@given(
    fields=st.dictionaries(st.sampled_from(["a", "bb", "ccc", "d"]), JSON_FIELDS, min_size=1, max_size=3),
    required=st.booleans(),
    prompt=PROMPTS,
    seed=st.integers(0, 2**16),
)
def test_json_schema_outputs_always_validate(tokenizer, model, fields, required, prompt, seed):
    schema = {"type": "object", "properties": fields, "additionalProperties": False}
    if required:
        schema["required"] = sorted(fields)
    ids = tokenizer([prompt], return_tensors="pt")["input_ids"]
    torch.manual_seed(seed)
    # JSON-only mode parses and validates before returning: reaching the checks below means it passed.
    out = generate(model, ids, tokenizer=tokenizer, json_schema=schema, max_new_tokens=120, do_sample=True)
    text = tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    jsonschema.validate(json.loads(text), schema)


@PROPERTY
@given(grammar=GRAMMARS, walk_seed=st.integers(0, 2**16))
def test_the_mask_never_blocks_every_token(tokenizer, grammar, walk_seed):
    """A random walk through the grammar: at every step some token (or the end of output) is allowed."""
    gbnf, pattern, longest = grammar
    compiled = compile_grammar(tokenizer, GrammarSpec("grammar", f"root ::= {gbnf}"))
    processor = GrammarLogitsProcessor(compiled, tokenizer.eos_token_id)
    rng = np.random.default_rng(walk_seed)
    ids = torch.tensor([[tokenizer.bos_token_id]])
    for _ in range(longest + 1):
        scores = processor(ids, torch.zeros(1, compiled.vocab_size))
        allowed = torch.isfinite(scores[0]).nonzero().flatten().tolist()
        assert allowed
        token = int(rng.choice(allowed))
        if token == tokenizer.eos_token_id:
            text = tokenizer.decode(ids[0, 1:])
            assert re.fullmatch(pattern, text), (gbnf, text)
            return
        ids = torch.cat([ids, torch.tensor([[token]])], 1)
    pytest.fail("a walk of the longest sentence's length must have reached the end of output")


def test_a_grammar_that_cannot_go_on_raises_a_clear_error(tokenizer, model):
    compiled = compile_grammar(tokenizer, GrammarSpec("regex", "[0-9]+"))
    letter = tokenizer.convert_tokens_to_ids("a")
    ids = tokenizer(["x"], return_tensors="pt")["input_ids"]
    # a later processor forces a token the grammar refuses: the next call names the row and the token
    processors = LogitsProcessorList(
        [GrammarLogitsProcessor(compiled, tokenizer.eos_token_id, tokenizer=tokenizer), ForcedTokens([[letter]])]
    )
    with pytest.raises(GrammarDeadEndError, match=f"Row 0: the grammar \\(regex\\) does not allow token {letter}"):
        model.generate(ids, logits_processor=processors, max_new_tokens=3, pad_token_id=tokenizer.pad_token_id)
    # a grammar whose language is empty: no token can start it, and the first step says so
    empty = GrammarLogitsProcessor(
        compile_grammar(tokenizer, GrammarSpec("regex", r"[^\s\S]")), tokenizer.eos_token_id
    )
    with pytest.raises(
        GrammarDeadEndError, match=r"Row 0: no token can continue the regex grammar after token ids \[\]"
    ):
        empty(ids, torch.zeros(1, len(tokenizer)))
    # a broken grammar is refused when it is compiled, with the engine's reason
    with pytest.raises(ValueError, match="does not compile .*undefined_rule"):
        compile_grammar(tokenizer, GrammarSpec("grammar", "root ::= undefined_rule"))


def test_json_only_mode_raises_when_the_budget_ends_mid_object(tokenizer, model):
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer", "minimum": 0, "maximum": 999}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    ids = tokenizer(["what is it?"], return_tensors="pt")["input_ids"]
    with pytest.raises(StructuredOutputError, match=r"budget \(max_new_tokens=3\) ended before the json_schema"):
        generate(model, ids, tokenizer=tokenizer, json_schema=schema, max_new_tokens=3)
    # with room, the same call returns an object that validates
    out = generate(model, ids, tokenizer=tokenizer, json_schema=schema, max_new_tokens=40)
    value = json.loads(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))
    assert isinstance(value["answer"], int)


def test_json_only_and_python_checks_name_what_is_wrong():
    spec = GrammarSpec.json_schema({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]})
    check_output(spec, '{"n":3}', 0, ended=True, budget=8)
    with pytest.raises(StructuredOutputError, match="Row 2: does not validate against the schema at n"):
        check_output(spec, '{"n":"x"}', 2, ended=True, budget=8)
    with pytest.raises(StructuredOutputError, match="not valid JSON"):
        check_output(spec, '{"n":', 0, ended=True, budget=8)
    python = GrammarSpec.python()
    check_output(python, "def f(a, b):\n    return a + b", 0, ended=True, budget=8)
    # the one compile error a context-free grammar cannot exclude is still caught before returning
    with pytest.raises(StructuredOutputError, match="not valid Python"):
        check_output(python, "def f(a, a):\n    return a", 0, ended=True, budget=8)


def test_python_mode_emits_code_that_compiles(tokenizer, model):
    ids = tokenizer(["def", "x = "], return_tensors="pt", padding=True, padding_side="left")
    torch.manual_seed(3)
    out = generate(
        model,
        ids["input_ids"],
        attention_mask=ids["attention_mask"],
        tokenizer=tokenizer,
        python_code=True,
        max_new_tokens=200,
        do_sample=True,
        # an untrained model writes one endless expression; a bias towards ending (wherever the
        # grammar allows it: a masked token stays masked) keeps the programs short
        sequence_bias={(tokenizer.eos_token_id,): 6.0},
    )
    for row in out[:, ids["input_ids"].shape[1] :]:
        compile(tokenizer.decode(row, skip_special_tokens=True), "<test>", "exec")
    # the grammar's own sentences: blocks, nested loops, returns only inside functions
    compiled = compile_grammar(tokenizer, GrammarSpec.python(max_depth=4))
    deep = "def f(x):\n    for i in x:\n        if i:\n            break\n    return x"
    assert not _accepts(compile_grammar(tokenizer, GrammarSpec.python(max_depth=3)), tokenizer, deep)
    for good, bad in [
        ("def f(x):\n    for i in x:\n        if i:\n            break\n    return x", "return 1"),
        ("while x:\n    x -= 1\nelse_ = 2", "for i in x:\n    def g():\n        break"),
        ("y = [1, 2.5, 'a']\nprint(y[0])", "if = 1"),
    ]:
        assert _accepts(compiled, tokenizer, good), good
        assert not _accepts(compiled, tokenizer, bad), bad


def _accepts(compiled, tokenizer, text: str) -> bool:
    matcher = compiled.matcher()
    return all(matcher.consume(t) for t in tokenizer(text)["input_ids"]) and matcher.is_accepting()


def test_arithmetic_gbnf_and_the_processor_work_with_a_gpt2_style_tokenizer():
    tokenizer = gpt2_style_tokenizer()
    assert tokenizer.pad_token_id is None and tokenizer.eos_token_id == len(tokenizer) - 1
    # the model's vocabulary may be larger than the tokenizer's (padded embeddings): those ids are never allowed
    model = tiny_gpt2(tokenizer, vocab_size=len(tokenizer) + 8)
    ids = tokenizer(["1+1="], return_tensors="pt")["input_ids"]
    torch.manual_seed(0)
    out = generate(model, ids, tokenizer=tokenizer, grammar=ARITHMETIC_GBNF, max_new_tokens=30, do_sample=True)
    text = tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    assert re.fullmatch(r"[0-9+\-*/()]*", text), text
    compiled = compile_grammar(tokenizer, GrammarSpec("grammar", ARITHMETIC_GBNF), vocab_size=len(tokenizer) + 8)
    assert not compiled.allowed(compiled.matcher())[len(tokenizer) :].any()


def test_compiled_grammars_are_cached_per_tokenizer_and_grammar(tokenizer):
    spec = GrammarSpec.json_schema('{"type": "integer"}')
    first = compile_grammar(tokenizer, spec)
    assert compile_grammar(tokenizer, GrammarSpec.json_schema({"type": "integer"})) is first  # same schema
    assert compile_grammar(tokenizer, spec, vocab_size=len(tokenizer) + 4) is not first
    assert compile_grammar(gpt2_style_tokenizer(), spec) is not first
    assert compile_grammar(tokenizer, GrammarSpec("regex", "[0-9]+")) is not first
    # a tokenizer that gained tokens is another tokenizer
    import copy

    grown = copy.deepcopy(tokenizer)
    grown.add_special_tokens({"additional_special_tokens": ["<extra>"]})
    assert compile_grammar(grown, spec) is not compile_grammar(tokenizer, spec)
    assert any(key[3] == spec for key in _CACHE)


def test_one_constraint_at_a_time_and_a_tokenizer_is_required(tokenizer, model):
    ids = torch.tensor([[5, 6]])
    with pytest.raises(ValueError, match="one constraint at a time; got grammar, regex"):
        generate(model, ids, tokenizer=tokenizer, grammar=ARITHMETIC_GBNF, regex="a")
    with pytest.raises(ValueError, match="tokenizer"):
        generate(model, ids, regex="a")
    with pytest.raises(ValueError, match="compiled for vocab_size"):
        compiled = compile_grammar(tokenizer, GrammarSpec("regex", "a"), vocab_size=len(tokenizer) + 1)
        GrammarLogitsProcessor(compiled, tokenizer.eos_token_id)(ids, torch.zeros(1, len(tokenizer)))


def _is_arithmetic(text: str) -> bool:
    """Python's own parser as the oracle: int literals, + - * /, parentheses, and no spaces."""
    import ast

    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return False
    allowed = (ast.Expression, ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Constant)
    nodes = list(ast.walk(tree))
    return (
        " " not in text
        and all(isinstance(n, allowed) for n in nodes)
        and all(type(n.value) is int for n in nodes if isinstance(n, ast.Constant))
    )


def _valid_json(text: str, schema: dict) -> bool:
    try:
        jsonschema.validate(json.loads(text), schema)
    except (ValueError, jsonschema.ValidationError):
        return False
    return True


ENGINE_CASES = {
    "regex": (GrammarSpec("regex", "(ab|c[0-9]){1,3}"), lambda t: re.fullmatch("(ab|c[0-9]){1,3}", t)),
    "gbnf": (
        GrammarSpec("grammar", ARITHMETIC_GBNF),
        _is_arithmetic,
    ),
    "json": (
        GrammarSpec.json_schema(
            {"type": "object", "properties": {"k": {"type": "integer", "minimum": 0}, "b": {"type": "boolean"}}}
        ),
        lambda t: _valid_json(
            t, {"type": "object", "properties": {"k": {"type": "integer"}, "b": {"type": "boolean"}}}
        ),
    ),
}


@pytest.mark.parametrize("engine", ["llguidance", "xgrammar"])
@pytest.mark.parametrize("case", sorted(ENGINE_CASES))
def test_both_engines_enforce_the_grammar(tokenizer, engine, case):
    """Random walks through each engine's masks end in sentences of the language (checked independently).

    The masks themselves may differ: llguidance allows only the canonical tokens of forced text
    (after `f` in a JSON `false`, `al` but not `a`), xgrammar any tokens that spell it."""
    if engine == "xgrammar":
        pytest.importorskip("xgrammar")
    spec, in_language = ENGINE_CASES[case]
    processor = GrammarLogitsProcessor(compile_grammar(tokenizer, spec, engine=engine), tokenizer.eos_token_id)
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(8):
        ids = torch.tensor([[tokenizer.bos_token_id]])
        for _ in range(24):
            allowed = torch.isfinite(processor(ids, torch.zeros(1, len(tokenizer))))[0].nonzero().flatten()
            # lean towards ending where the grammar allows it, so that walks finish
            token = tokenizer.eos_token_id if tokenizer.eos_token_id in allowed and rng.random() < 0.3 else None
            token = int(rng.choice(allowed.numpy())) if token is None else token
            if token == tokenizer.eos_token_id:
                text = tokenizer.decode(ids[0, 1:])
                assert in_language(text), (engine, text)
                ended += 1
                break
            ids = torch.cat([ids, torch.tensor([[token]])], 1)
    assert ended >= 4


def test_beam_search_reorders_rows_and_the_processor_follows(tokenizer, model):
    """Beam search moves rows between beams: each row's matcher rolls back and replays; outputs still parse."""
    ids = tokenizer(["abc"], return_tensors="pt")["input_ids"]
    out = generate(
        model,
        ids,
        tokenizer=tokenizer,
        regex="(ab|cd|x[0-9]){2,4}",
        max_new_tokens=12,
        num_beams=3,
        num_return_sequences=3,
        do_sample=False,
    )
    for row in out[:, ids.shape[1] :]:
        assert re.fullmatch("(ab|cd|x[0-9]){2,4}", tokenizer.decode(row, skip_special_tokens=True))


def test_every_score_dtype_gets_the_same_mask_and_keeps_its_dtype(tokenizer):
    """float32 / float64 CPU scores take the numpy path, bfloat16 and scores with gradients torch's."""
    compiled = compile_grammar(tokenizer, GrammarSpec("grammar", ARITHMETIC_GBNF))
    ids = torch.tensor([[tokenizer.bos_token_id]] * 2)
    scores = torch.randn(2, len(tokenizer), generator=torch.Generator().manual_seed(0))
    masks = {}
    for name, batch in {
        "float32": scores,
        "float64": scores.double(),
        "bfloat16": scores.bfloat16(),
        "requires_grad": scores.clone().requires_grad_(),
    }.items():
        out = GrammarLogitsProcessor(compiled, tokenizer.eos_token_id)(ids, batch)
        assert out.dtype == batch.dtype and out.shape == batch.shape, name
        masks[name] = torch.isfinite(out.detach().float())
        kept = masks[name]
        torch.testing.assert_close(out.detach()[kept], batch.detach()[kept], rtol=0, atol=0)
    assert 0 < masks["float32"].sum() < masks["float32"].numel()
    for name, mask in masks.items():
        assert torch.equal(mask, masks["float32"]), name
