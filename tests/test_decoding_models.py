"""Structured decoding in CRSM (also MCTS), meta-attention and the ONNX Runtime wrappers: the models'
own `generate` options, ORT and PyTorch constrained greedy agreement, and the model folders staying
loadable without hf-reason."""

import ast
import json
import re
from pathlib import Path

import pytest
import torch
from conftest import run_without_hf_reason
from decoding_testing import ForcedTokens, our_tokenizer, with_control_tokens

from hf_reason.data import CLARIFY_TOKEN, THOUGHT_END, THOUGHT_START
from hf_reason.decoding import EntropyMonitor, GrammarLogitsProcessor, GrammarSpec, compile_grammar
from hf_reason.export import ORTCRSMForCausalLM, ORTMetaAttentionForCausalLM, export_pretrained
from hf_reason.models.crsm import CRSMConfig, CRSMForCausalLM
from hf_reason.models.meta_attention import MetaAttentionConfig, MetaAttentionForCausalLM


SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 99}, "ok": {"type": "boolean"}},
    "required": ["n", "ok"],
    "additionalProperties": False,
}
REGEX = "(ab|c[0-9]){2,3}"


@pytest.fixture(scope="module")
def tokenizer():
    return with_control_tokens(our_tokenizer())[0]


def special_ids(tokenizer) -> dict:
    return dict(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id
    )


def tiny_crsm(tokenizer) -> CRSMForCausalLM:
    torch.manual_seed(0)
    config = CRSMConfig(
        vocab_size=len(tokenizer), hidden_size=32, state_size=8, num_hidden_layers=2, **special_ids(tokenizer)
    )
    return CRSMForCausalLM(config).eval()


def tiny_meta_attention(tokenizer) -> MetaAttentionForCausalLM:
    torch.manual_seed(0)
    config = MetaAttentionConfig(
        vocab_size=len(tokenizer),
        n_positions=96,
        n_embd=32,
        n_layer=2,
        n_head=2,
        meta_top_k=3,
        meta_hidden_size=16,
        meta_num_heads=2,
        **special_ids(tokenizer),
    )
    model = MetaAttentionForCausalLM(config)
    with torch.no_grad():
        model.transformer.meta.gate.fill_(0.7)
    return model.eval()


@pytest.fixture(scope="module")
def exported(tokenizer, tmp_path_factory):
    """Each family in PyTorch and exported (fp32) for ONNX Runtime."""
    models = {}
    for name, build, wrapper in (
        ("crsm", tiny_crsm, ORTCRSMForCausalLM),
        ("meta_attention", tiny_meta_attention, ORTMetaAttentionForCausalLM),
    ):
        model = build(tokenizer)
        out = tmp_path_factory.mktemp(name)
        extra = {"crsm_prefill_length": 8} if name == "crsm" else {}
        export_pretrained(model, out, precision="fp32", progress=False, **extra)
        models[name] = (model, wrapper.from_pretrained(out))
    return models


def prompts(tokenizer):
    return tokenizer(["Give me JSON:", "x"], return_tensors="pt", padding=True, padding_side="left")


@pytest.mark.parametrize("family", ["crsm", "meta_attention"])
def test_models_generate_takes_the_structured_options(tokenizer, exported, family):
    model, _ = exported[family]
    batch = prompts(tokenizer)
    out = model.generate(
        batch["input_ids"],
        attention_mask=batch["attention_mask"],
        tokenizer=tokenizer,
        json_schema=SCHEMA,
        max_new_tokens=40,
        do_sample=False,
    )
    for row in out[:, batch["input_ids"].shape[1] :]:
        value = json.loads(tokenizer.decode(row, skip_special_tokens=True))
        assert set(value) == {"n", "ok"}
    out = model.generate(
        batch["input_ids"], attention_mask=batch["attention_mask"], tokenizer=tokenizer, regex=REGEX, max_new_tokens=10
    )
    for row in out[:, batch["input_ids"].shape[1] :]:
        assert re.fullmatch(REGEX, tokenizer.decode(row, skip_special_tokens=True))


@pytest.mark.parametrize("family", ["crsm", "meta_attention"])
@pytest.mark.parametrize("constraint", [{"json_schema": SCHEMA}, {"regex": REGEX}], ids=["json", "regex"])
def test_ort_and_pytorch_constrained_greedy_agree(tokenizer, exported, family, constraint):
    model, ort_model = exported[family]
    batch = prompts(tokenizer)
    kwargs = dict(
        attention_mask=batch["attention_mask"],
        tokenizer=tokenizer,
        max_new_tokens=24,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
        **constraint,
    )
    expected = model.generate(batch["input_ids"], **kwargs)
    actual = ort_model.generate(batch["input_ids"], **kwargs)
    assert torch.equal(actual, expected)
    # the unconstrained greedy outputs differ: the constraint changed what both decoded
    plain = ort_model.generate(batch["input_ids"], attention_mask=batch["attention_mask"], max_new_tokens=24)
    assert not torch.equal(plain[:, : expected.shape[1]], expected)


@pytest.mark.parametrize("family", ["crsm", "meta_attention"])
def test_a_tokenizer_with_thought_tags_withholds_thoughts_in_pytorch_and_ort(tokenizer, exported, family):
    model, ort_model = exported[family]
    start, end = tokenizer.convert_tokens_to_ids([THOUGHT_START, THOUGHT_END])
    a, b, c = tokenizer.convert_tokens_to_ids(["a", "b", "c"])
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    batch = prompts(tokenizer)
    prompt = batch["input_ids"].shape[1]
    script = [[start, a, b, end, c, eos], [c, start, a, b, a, b]]  # row 1's thought never closes
    kwargs = dict(attention_mask=batch["attention_mask"], max_new_tokens=6, pad_token_id=pad)
    for generator in (model, ort_model):
        raw = generator.generate(batch["input_ids"], logits_processor=[ForcedTokens(script)], **kwargs)
        assert raw[:, prompt:].tolist() == script  # no tokenizer: the model's own ids
        out = generator.generate(
            batch["input_ids"], tokenizer=tokenizer, logits_processor=[ForcedTokens(script)], **kwargs
        )
        assert out[:, prompt:].tolist() == [[c, eos], [c, pad]], type(generator).__name__
        # `stop_strings` (which needs the tokenizer) stop both rows on "c"; the thought before it is withheld
        stopped = generator.generate(
            batch["input_ids"],
            tokenizer=tokenizer,
            stop_strings=["c"],
            logits_processor=[ForcedTokens(script)],
            **kwargs,
        )
        visible = [[t for t in row if t != pad] for row in stopped[:, prompt:].tolist()]
        assert visible == [[c], [c]], type(generator).__name__


def test_ort_wrappers_run_the_entropy_monitor_and_its_stop(tokenizer, exported):
    _, ort_model = exported["meta_attention"]
    clarify = tokenizer.convert_tokens_to_ids(CLARIFY_TOKEN)
    monitor = EntropyMonitor(action="clarify", clarify_token_id=clarify, threshold=0.5, delta=0.0)
    batch = prompts(tokenizer)
    out = ort_model.generate(
        batch["input_ids"],
        attention_mask=batch["attention_mask"],
        tokenizer=tokenizer,
        entropy_monitor=monitor,
        max_new_tokens=5,
        pad_token_id=tokenizer.pad_token_id,
    )
    prompt = batch["input_ids"].shape[1]
    assert out[:, prompt].tolist() == [clarify, clarify] and monitor.clarified == [True, True]
    with pytest.raises(TypeError, match="unexpected keyword argument 'grammer'"):
        ort_model.generate(batch["input_ids"], grammer="root ::= x", tokenizer=tokenizer)


def test_mcts_priors_are_masked_by_the_grammar(tokenizer, exported):
    model, ort_model = exported["crsm"]
    ids = tokenizer(["abc", "q"], return_tensors="pt", padding=True, padding_side="left")
    kwargs = dict(
        attention_mask=ids["attention_mask"],
        tokenizer=tokenizer,
        regex=REGEX,
        deliberation="mcts",
        max_new_tokens=8,
        num_simulations=6,
        top_k_expansion=4,
        leaf_batch_size=3,
        return_dict_in_generate=True,
    )
    out = model.generate(ids["input_ids"], **kwargs)
    compiled = compile_grammar(tokenizer, GrammarSpec("regex", REGEX), vocab_size=len(tokenizer))
    prompt = ids["input_ids"].shape[1]
    for b, row in enumerate(out.sequences[:, prompt:].tolist()):
        text = tokenizer.decode(row, skip_special_tokens=True)
        assert re.fullmatch(REGEX, text), text
        # every candidate the search expanded at each committed step was allowed by the grammar there
        processor = GrammarLogitsProcessor(compiled, tokenizer.eos_token_id)
        for t, stats in enumerate(out.search_stats[b]):
            prefix = torch.tensor([[0] + row[:t]])
            processor.reset()
            processor(prefix[:, :1], torch.zeros(1, len(tokenizer)))  # the prompt
            allowed = torch.isfinite(processor(prefix, torch.zeros(1, len(tokenizer))))[0]
            assert all(allowed[child[0]] for child in stats["children"]), (t, stats["children"])
    # on ONNX Runtime, the same search and the same tokens
    actual = ort_model.generate(ids["input_ids"], **kwargs)
    assert torch.equal(actual.sequences, out.sequences)
    with pytest.raises(ValueError, match="cannot be combined with `deliberation`"):
        model.generate(
            ids["input_ids"], tokenizer=tokenizer, deliberation="mcts", entropy_monitor=EntropyMonitor(action="record")
        )


def test_model_folders_import_hf_reason_only_inside_generate():
    """The grammar options reach hf_reason.decoding through an import inside `generate`; nothing at module level."""
    root = Path(__file__).resolve().parents[1] / "hf_reason" / "models"
    for path in list(root.glob("crsm/*.py")) + list(root.glob("meta_attention/*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not any(n.startswith("hf_reason") for n in names), (path.name, names)


def test_a_remote_code_checkpoint_without_hf_reason_explains_the_grammar_options(tokenizer, tmp_path):
    model = tiny_crsm(tokenizer)
    model.save_pretrained(tmp_path / "checkpoint")
    run_without_hf_reason(
        f"""
        import torch, transformers
        model = transformers.AutoModelForCausalLM.from_pretrained({str(tmp_path / "checkpoint")!r}, trust_remote_code=True)
        ids = torch.tensor([[5, 6, 7]])
        assert model.generate(ids, max_new_tokens=2).shape == (1, 5)  # plain generation needs nothing more
        try:
            model.generate(ids, max_new_tokens=2, regex="[0-9]+", tokenizer=None)
        except ImportError as error:
            assert "needs hf-reason: `pip install hf-reason`" in str(error), error
        else:
            raise AssertionError("expected an ImportError")
        """,
        cwd=tmp_path,
    )
