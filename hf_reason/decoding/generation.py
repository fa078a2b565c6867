# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""`generate(model, ..., grammar= / json_schema= / regex= / python_code= / hide_thoughts= / entropy_monitor=)`.

One function for every causal LM whose `generate` takes `logits_processor` (and, for steering,
`stopping_criteria`): transformers models (GPT-2, ...), CRSM (also `deliberation="mcts"`),
meta-attention, and the ONNX Runtime wrappers. It builds the processors, calls the model's own
`generate`, then post-processes: thoughts stripped at the token level, and in JSON-only and
Python modes every user-visible output parsed and checked before anything is returned.

CRSM and meta-attention take the same options in their own `generate`: their model folders import
this module only when one of them is given (`structured_generation` in each modeling file), so a
checkpoint still loads with `trust_remote_code` where hf-reason is not installed.
"""

import json
from collections.abc import Sequence
from typing import Optional, Union

import torch
from transformers import LogitsProcessorList, StoppingCriteriaList, StopStringCriteria

from .engines import GrammarSpec, compile_grammar
from .processor import GrammarLogitsProcessor
from .thoughts import strip_thoughts, thought_token_ids, visible_token_ids


STRUCTURED_OPTIONS = ("grammar", "json_schema", "regex", "python_code", "hide_thoughts", "entropy_monitor")
# Every argument `generate` takes beyond the model's own (the options and their settings).
STRUCTURED_ARGUMENTS = (*STRUCTURED_OPTIONS, "tokenizer", "grammar_engine", "allow_thoughts", "validate")


class StructuredOutputError(ValueError):
    """A user-visible output that is not what its mode promises (JSON-only: valid JSON that validates
    against the schema; Python: code that compiles), e.g. because the token budget ran out mid-object.

    Attributes:
        row (`int`): the batch row. text (`str`): its visible output. reason (`str`): what is wrong.
    """

    def __init__(self, row: int, text: str, reason: str):
        self.row, self.text, self.reason = row, text, reason
        super().__init__(f"Row {row}: {reason}. Output: {text!r}")


def grammar_spec(
    grammar: Union[str, GrammarSpec, None] = None,
    json_schema: Union[dict, str, None] = None,
    regex: Optional[str] = None,
    python_code: bool = False,
) -> Optional[GrammarSpec]:
    """The one constraint among the options (None without any); two at once is an error."""
    given = [
        name
        for name, value in (("grammar", grammar), ("json_schema", json_schema), ("regex", regex))
        if value is not None
    ] + (["python_code"] if python_code else [])
    if len(given) > 1:
        raise ValueError(f"Pass one constraint at a time; got {', '.join(given)}.")
    if grammar is not None:
        return grammar if isinstance(grammar, GrammarSpec) else GrammarSpec("grammar", grammar)
    if json_schema is not None:
        return GrammarSpec.json_schema(json_schema)
    if regex is not None:
        return GrammarSpec("regex", regex)
    return GrammarSpec.python() if python_code else None


def _eos_ids(model, tokenizer, kwargs: dict) -> list[int]:
    """The end-of-output ids: `generate`'s argument, else its generation config's, the model's, the tokenizer's."""
    candidates = [kwargs.get("eos_token_id")]
    for config in (kwargs.get("generation_config"), getattr(model, "generation_config", None)):
        candidates.append(getattr(config, "eos_token_id", None))
    candidates += [getattr(getattr(model, "config", None), "eos_token_id", None), tokenizer.eos_token_id]
    for eos in candidates:
        if eos is not None:
            return list(eos) if isinstance(eos, (list, tuple)) else [int(eos)]
    raise ValueError("Structured generation needs an end-of-output token: pass `eos_token_id`.")


def _vocab_size(model, tokenizer) -> int:
    config = getattr(model, "config", None)
    size = getattr(config, "vocab_size", None)
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if output is not None and getattr(output, "weight", None) is not None:
        size = output.weight.shape[0]
    return size if size is not None else len(tokenizer)


def check_output(spec: GrammarSpec, text: str, row: int, ended: bool, budget) -> None:
    """Raises [`StructuredOutputError`] unless `text` is a complete output of a JSON-schema or Python spec."""
    if not ended:
        raise StructuredOutputError(
            row, text, f"the token budget (max_new_tokens={budget}) ended before the {spec.kind} output was complete"
        )
    if spec.kind == "json_schema":
        import jsonschema

        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise StructuredOutputError(row, text, f"not valid JSON ({error})") from error
        schema = spec.schema
        validator = jsonschema.validators.validator_for(schema)(schema)
        problems = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
        if problems:
            where = "/".join(str(p) for p in problems[0].path) or "(root)"
            raise StructuredOutputError(
                row, text, f"does not validate against the schema at {where}: {problems[0].message}"
            )
    elif spec.kind == "python":
        try:
            compile(text, f"<generated row {row}>", "exec")
        except SyntaxError as error:
            raise StructuredOutputError(row, text, f"not valid Python ({error.msg}, line {error.lineno})") from error


def structured_processors(
    model,
    tokenizer,
    spec: Optional[GrammarSpec],
    eos_ids: Sequence[int],
    thought_ids: Optional[tuple[int, int]] = None,
    entropy_monitor=None,
    engine: Optional[str] = None,
) -> list:
    """The logits processors of a structured generation: the grammar's mask first, the monitor last
    (so it reads the distribution the model actually samples from)."""
    processors = []
    if spec is not None:
        compiled = compile_grammar(tokenizer, spec, vocab_size=_vocab_size(model, tokenizer), engine=engine)
        stops = (
            [entropy_monitor.clarify_token_id]
            if getattr(entropy_monitor, "clarify_token_id", None) is not None
            else []
        )
        processors.append(GrammarLogitsProcessor(compiled, eos_ids, thought_ids, stops, tokenizer=tokenizer))
    return processors


def generate(
    model,
    inputs: Optional[torch.Tensor] = None,
    *,
    tokenizer=None,
    grammar: Union[str, GrammarSpec, None] = None,
    json_schema: Union[dict, str, None] = None,
    regex: Optional[str] = None,
    python_code: bool = False,
    grammar_engine: Optional[str] = None,
    allow_thoughts: bool = False,
    hide_thoughts: Optional[bool] = None,
    entropy_monitor=None,
    validate: bool = True,
    **kwargs,
):
    """`model.generate(inputs, **kwargs)` with a grammar, hidden thoughts and entropy steering.

    Args:
        model: any model whose `generate` takes `logits_processor` (transformers causal LMs, CRSM
            with or without `deliberation="mcts"`, meta-attention, the ONNX Runtime wrappers).
        inputs (`torch.LongTensor`, *optional*): the prompts (or `input_ids=` in `kwargs`).
        tokenizer: the model's fast tokenizer (required).
        grammar (`str` or [`GrammarSpec`], *optional*): a GBNF / EBNF grammar (llguidance also reads
            Lark) the output must match.
        json_schema (`dict` or `str`, *optional*): JSON-only mode: the output is JSON that validates
            against this schema; every output is parsed and validated before returning.
        regex (`str`, *optional*): the output matches this regular expression.
        python_code (`bool`, defaults to `False`): Python mode: the output is in the Python subset of
            `python_grammar` and is compiled before returning.
        grammar_engine (`str`, *optional*): `"llguidance"` (default) or `"xgrammar"`.
        allow_thoughts (`bool`, defaults to `False`): with a constraint, let the model open
            `<thought>` spans anywhere (free inside, unseen by the grammar, removed from what is
            returned). Off, the output is the grammar's alone.
        hide_thoughts (`bool`, *optional*): remove `<thought> ... </thought>` spans from the
            returned sequences at the token level (an unclosed thought withholds the rest of its
            row). Defaults to True when the tokenizer has the thought tokens.
        entropy_monitor ([`EntropyMonitor`], *optional*): watches the next-token entropy; on a spike
            it records the position or inserts `<clarify>` and stops the row (its stopping
            criterion is added). Not with `deliberation="mcts"`.
        validate (`bool`, defaults to `True`): in JSON-only and Python modes, raise
            [`StructuredOutputError`] for an output that is incomplete (budget ran out) or does not
            parse / validate. Rows that stopped on `<clarify>` carry no answer and are not checked.
        kwargs: `generate`'s own arguments (`max_new_tokens`, `do_sample`, `logits_processor`, ...).

    Returns what `model.generate` returns (token ids, or its output object with `sequences`
    replaced when thoughts are hidden).
    """
    if tokenizer is None:
        raise ValueError("Structured generation needs the model's `tokenizer=`.")
    spec = grammar_spec(grammar, json_schema, regex, python_code)
    if entropy_monitor is not None and kwargs.get("deliberation") is not None:
        raise ValueError(
            "`entropy_monitor` cannot be combined with `deliberation`: the search is not one sampling path."
        )
    thought_ids = thought_token_ids(tokenizer)
    if hide_thoughts and thought_ids is None:
        raise ValueError("`hide_thoughts=True` needs a tokenizer with <thought> and </thought> (add_control_tokens).")
    hide_thoughts = thought_ids is not None if hide_thoughts is None else hide_thoughts
    eos_ids = _eos_ids(model, tokenizer, kwargs)
    if inputs is None:
        inputs = kwargs.pop("input_ids", None)
    if inputs is None:
        raise ValueError("Structured generation needs the prompts (`inputs` or `input_ids`).")
    if allow_thoughts and thought_ids is None:
        raise ValueError("`allow_thoughts=True` needs a tokenizer with <thought> and </thought> (add_control_tokens).")
    grammar_thoughts = thought_ids if allow_thoughts else None
    processors = structured_processors(
        model, tokenizer, spec, eos_ids, grammar_thoughts, entropy_monitor, grammar_engine
    )
    processors += list(kwargs.pop("logits_processor", None) or [])
    criteria = list(kwargs.pop("stopping_criteria", None) or [])
    if entropy_monitor is not None:
        entropy_monitor.start(eos_ids, thought_ids)
        processors.append(entropy_monitor)
        criteria.append(entropy_monitor.stopping_criteria())
    if processors:
        kwargs["logits_processor"] = LogitsProcessorList(processors)
    # As transformers builds it from `stop_strings=` and `tokenizer=`; built here, the tokenizer stays
    # out of `model.generate`'s arguments, which would send our models' `generate` back here.
    if kwargs.get("stop_strings") is not None:
        criteria.append(StopStringCriteria(tokenizer, kwargs.pop("stop_strings")))
    if criteria:
        kwargs["stopping_criteria"] = StoppingCriteriaList(criteria)
    output = model.generate(inputs, **kwargs)
    sequences = output if isinstance(output, torch.Tensor) else output.sequences
    prompt_length = inputs.shape[1]
    if validate and spec is not None and spec.kind in ("json_schema", "python"):
        clarify = getattr(entropy_monitor, "clarify_token_id", None)
        for row, generated in enumerate(sequences[:, prompt_length:].tolist()):
            if clarify is not None and clarify in generated:
                continue
            ended = any(t in eos_ids for t in generated)
            visible = visible_token_ids(generated, tokenizer, eos_ids)
            text = tokenizer.decode(visible, skip_special_tokens=True)
            check_output(spec, text, row, ended, kwargs.get("max_new_tokens"))
    if hide_thoughts:
        pad = kwargs.get("pad_token_id")
        pad = (
            pad if pad is not None else (tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0])
        )
        sequences = strip_thoughts(sequences, prompt_length, *thought_ids, pad_token_id=pad)
        if not isinstance(output, torch.Tensor):
            output.sequences = sequences
            return output
        return sequences
    return output


__all__ = [
    "STRUCTURED_ARGUMENTS",
    "STRUCTURED_OPTIONS",
    "StructuredOutputError",
    "check_output",
    "generate",
    "grammar_spec",
    "structured_processors",
]
