"""The instruction-following checks: each type on passing and failing responses, strict vs loose, accuracies."""

import copy

import pytest
import torch
from decoding_testing import our_tokenizer, tiny_gpt2

from hf_reason.evaluation.instruction_following import (
    INSTRUCTION_CHECKERS,
    check_instruction,
    describe_instruction,
    evaluate_instruction_following,
    split_sentences,
)
from hf_reason.evaluation.sentinel import (
    ChatTemplateContaminationError,
    check_sentinel_outputs,
    run_sentinel_check,
)


# (instruction id, kwargs, a response that follows it, a response that does not)
CASES = [
    ("keywords:existence", {"keywords": ["river", "stone"]}, "A Stone sat by the river.", "A stone sat by the lake."),
    ("keywords:frequency", {"keyword": "red", "frequency": 2, "relation": "at least"}, "Red, red wine.", "Red wine."),
    ("keywords:frequency", {"keyword": "red", "frequency": 2, "relation": "less than"}, "Red wine.", "red red."),
    ("keywords:forbidden_words", {"forbidden_words": ["cat"]}, "A category of dogs.", "The Cat sat."),
    ("keywords:letter_frequency", {"letter": "z", "let_frequency": 3, "let_relation": "at least"}, "Zzz.", "Zz."),
    ("length_constraints:number_words", {"num_words": 4, "relation": "less than"}, "One two three.", "a b c d"),
    ("length_constraints:number_words", {"num_words": 4, "relation": "at least"}, "It's a b c", "a b c"),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 3, "relation": "at least"},
        "Dr. Who won. It cost 3.5 dollars! Why? Fine.",
        "Dr. Who paid 3.5 dollars. Then left.",
    ),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "One.\n***\nTwo.", "One.\n***\n\n***\nTwo."),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "***\nOne.\n***\nTwo.", "One. Two."),
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"},
        'First part.\n\n"Then, the end.',
        "First part.\n\nAfter that, the end.",
    ),
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, "To [name] at [address].", "To [name]."),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hi.\n\nP.S. bye", "Hi. PS bye"),
    ("detectable_content:postscript", {"postscript_marker": "P.P.S"}, "Hi.\nP.P.S more", "Hi.\nP.S. more"),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "List:\n* one\n- two", "* one\n* two\n* three"),
    ("detectable_format:number_bullet_lists", {"num_bullets": 1}, "* one\n**bold** line", "** one\n"),
    ("detectable_format:constrained_response", {}, "Hmm. My answer is maybe.", "My answer is perhaps."),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, "*a* and **b**", "*a* and ** **"),
    (
        "detectable_format:multiple_sections",
        {"section_spliter": "Section", "num_sections": 2},
        "Section 1\nintro\nSection 2\nend",
        "Section 1\nall of it",
    ),
    ("detectable_format:json_format", {}, '```json\n{"a": 1}\n```', "{'a': 1}"),
    ("detectable_format:title", {}, "<<Sea Song>>\nwaves", "<< >>\nwaves"),
    ("combination:two_responses", {}, "Yes.\n******\nNo.", "Yes.\n******\nYes."),
    (
        "combination:repeat_prompt",
        {"prompt_to_repeat": "Describe the sea."},
        "describe the sea. It is wide.",
        "The sea is wide.",
    ),
    ("startend:end_checker", {"end_phrase": "Any other questions?"}, '"Done. any other questions?"', "Any other?"),
    ("startend:start_checker", {"start_phrase": "In short"}, "in short: yes", "Briefly, in short yes"),
    ("startend:quotation", {}, ' "quoted text" ', '"half quoted'),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": "at least"},
        "THE sea is VERY wide",
        "The Sea is Very wide",
    ),
    ("change_case:english_capital", {}, "ALL CAPS, 2 TIMES.", "ALL CAPS BUT one"),
    ("change_case:english_lowercase", {}, "all lower, 2 times.", "all lower but One"),
    ("punctuation:no_comma", {}, "No commas here.", "A comma\uff0c full-width."),
]


def test_at_least_twelve_instruction_types_are_covered_by_the_cases():
    covered = {case[0] for case in CASES}
    assert covered == set(INSTRUCTION_CHECKERS)
    assert len(covered) >= 12


@pytest.mark.parametrize("instruction_id, kwargs, passing, failing", CASES)
def test_every_checker_accepts_the_passing_and_rejects_the_failing_response(instruction_id, kwargs, passing, failing):
    assert check_instruction(passing, instruction_id, **kwargs)
    assert not check_instruction(failing, instruction_id, **kwargs)
    assert not check_instruction("   ", instruction_id, **kwargs)  # strict: an empty response follows nothing
    assert describe_instruction(instruction_id, **kwargs)


def test_sentences_keep_abbreviations_and_decimals():
    assert split_sentences("Dr. Smith paid 3.5 dollars. He left! Did he? Yes") == [
        "Dr. Smith paid 3.5 dollars.",
        "He left!",
        "Did he?",
        "Yes",
    ]


def test_bad_arguments_and_unknown_ids_name_the_instruction():
    with pytest.raises(ValueError, match="keywords:existence"):
        check_instruction("text", "keywords:existence", keyword=["a"])
    with pytest.raises(ValueError, match="unknown instruction id 'nope'"):
        check_instruction("text", "nope")
    with pytest.raises(ValueError, match="relation must be one of"):
        check_instruction("a b", "length_constraints:number_words", num_words=1, relation="exactly")


def test_loose_accuracy_forgives_a_leading_line_and_markdown_emphasis_strict_does_not():
    response = "Sure, here it is:\n<<title>>\n**my answer is yes.**"
    ids = ["startend:start_checker", "detectable_format:constrained_response"]
    kwargs = [{"start_phrase": "<<title>>"}, None]
    result = evaluate_instruction_following([response], [ids], [kwargs])
    assert result.instruction_strict == [[False, False]]
    assert result.instruction_loose == [[True, False]]  # the constrained answer is case-sensitive
    response2 = "Sure:\n<<title>>\nMy answer is *yes*."
    result2 = evaluate_instruction_following([response2], [ids], [kwargs])
    assert result2.instruction_loose == [[True, True]]
    assert result2.prompt_strict == [False] and result2.prompt_loose == [True]


def test_prompt_and_instruction_level_accuracies():
    responses = ["<<t>>\nno commas", "<<t>>\nyes, commas", "no title"]
    ids = [["detectable_format:title", "punctuation:no_comma"]] * 2 + [["detectable_format:title"]]
    kwargs = [[{}, {}], [{}, {}], [{}]]
    result = evaluate_instruction_following(responses, ids, kwargs)
    assert result.prompt_strict == [True, False, False]
    assert result.summary["prompt_strict"] == pytest.approx(1 / 3)
    assert result.summary["instruction_strict"] == pytest.approx(3 / 5)
    assert result.per_type() == {"detectable_format:title": [True, True, False], "punctuation:no_comma": [True, False]}
    with pytest.raises(ValueError, match="one instruction list and one kwargs list per response"):
        evaluate_instruction_following(responses, ids[:2], kwargs)


def test_sentinel_outputs_flag_template_markers_and_role_headers():
    report = check_sentinel_outputs(
        ["a", "b", "c"], ["The sea is calm.", "red <|im_start|>assistant", "blue\nAssistant: hi"]
    )
    assert report.findings[0] == []
    assert report.findings[1] == ["<|im_start|>"]
    assert report.findings[2] == ["role header 'Assistant:'"]
    assert report.contaminated


def _model_that_always_emits(tokenizer, token_id):
    """A tiny GPT-2 whose final hidden state is constant, so its greedy output is `token_id` at every step."""
    model = tiny_gpt2(tokenizer, vocab_size=len(tokenizer))
    with torch.no_grad():
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.fill_(1.0)
        model.transformer.wte.weight[token_id] = 1.0  # tied head: this row's logit is the largest
    return model


def test_sentinel_check_raises_on_a_contaminated_model_and_passes_a_clean_one():
    tokenizer = copy.deepcopy(our_tokenizer())
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>"]})
    marker = tokenizer.convert_tokens_to_ids("<|im_start|>")
    contaminated = _model_that_always_emits(tokenizer, marker)
    with pytest.raises(ChatTemplateContaminationError, match="<\\|im_start\\|>"):
        run_sentinel_check(contaminated, tokenizer, max_new_tokens=3)
    word = tokenizer("sea", add_special_tokens=False)["input_ids"][0]
    clean = _model_that_always_emits(tokenizer, word)
    report = run_sentinel_check(clean, tokenizer, max_new_tokens=3)
    assert not report.contaminated and all(output for output in report.outputs)
