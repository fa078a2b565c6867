"""The tool registry and the five built-in tools, on good and bad input."""

import json
import sys

import pytest

from hf_reason.evaluation.sandbox import SandboxConfig
from hf_reason.tools import (
    Tool,
    ToolCallError,
    ToolRegistry,
    calculator_tool,
    default_registry,
    format_tool_call,
    lookup_tool,
    parse_tool_call,
    python_tool,
    search_memory_tool,
    search_tool,
)
from hf_reason.workspace import EpisodicMemory


def test_calculator_is_exact_on_big_integers_and_fractions():
    registry = ToolRegistry([calculator_tool()])
    assert registry.call("calculator", {"expression": "4213 * 512"}).output == "2157056"
    assert registry.call("calculator", {"expression": "1/3 + 1/6"}).output == "1/2"
    assert registry.call("calculator", {"expression": "2**64 - 1"}).output == str(2**64 - 1)
    assert registry.call("calculator", {"expression": "0.1 + 0.2"}).output == "3/10"


@pytest.mark.parametrize(
    "expression",
    ["__import__('os').system('echo hi')", "(1).real", "().__class__", "x + 1", "9**9**9", "1/0", "[1, 2]"],
)
def test_calculator_refuses_everything_but_arithmetic(expression):
    result = ToolRegistry([calculator_tool()]).call("calculator", {"expression": expression})
    assert not result.ok
    assert "ArithmeticExpressionError" in result.error


def test_registry_reports_unknown_tools_and_schema_errors_as_results():
    registry = ToolRegistry([calculator_tool()])
    assert "unknown tool 'calc'" in registry.call("calc", {"expression": "1"}).error
    assert "`expression`" in registry.call("calculator", {"expression": 3}).error
    assert "'expression' is a required property" in registry.call("calculator", {}).error
    assert "Additional properties" in registry.call("calculator", {"expression": "1", "x": 1}).error
    assert "not JSON" in registry.call_text("calculator({expression: 1})").error
    assert registry.call_text('Tool: calculator({"expression": "6*7"})').output == "42"


def test_a_failing_tool_is_an_error_result_not_an_exception():
    def boom():
        raise RuntimeError("disk on fire")

    registry = ToolRegistry([Tool("boom", "fails", {"type": "object", "properties": {}}, boom)])
    assert registry.call("boom", {}).text == "error: RuntimeError: disk on fire"


def test_tool_names_and_schemas_are_checked_at_registration():
    with pytest.raises(ValueError, match="identifier"):
        Tool("not a name", "", {"type": "object"}, str)
    with pytest.raises(ValueError, match='"type": "object"'):
        Tool("t", "", {"type": "string"}, str)
    registry = ToolRegistry([calculator_tool()])
    with pytest.raises(ValueError, match="already registered"):
        registry.register(calculator_tool())


def test_call_text_round_trips_through_format_and_parse():
    line = format_tool_call("search", {"query": "trains meet", "k": 2})
    assert line == 'Tool: search({"query": "trains meet", "k": 2})'
    assert parse_tool_call(line) == ("search", {"query": "trains meet", "k": 2})
    with pytest.raises(ToolCallError, match="JSON object"):
        parse_tool_call("search([1])")


def test_search_ranks_a_planted_document_first():
    documents = [{"id": f"d{i}", "text": f"filler text about topic {i} and more words"} for i in range(50)]
    documents.insert(17, {"id": "planted", "text": "The quagga is an extinct subspecies of plains zebra."})
    tool = ToolRegistry([search_tool(documents)])
    hits = tool.call("search", {"query": "extinct zebra quagga", "k": 3}).output.splitlines()
    assert hits[0].startswith("[planted] The quagga")
    assert tool.call("search", {"query": "xylophone"}).output == "no match"
    assert not tool.call("search", {"query": "zebra", "k": 0}).ok


def test_default_search_covers_the_corpus_and_the_curated_tasks():
    registry = default_registry()
    out = registry.call("search", {"query": "two trains 300 km apart 70 km/h 80 km/h meet", "k": 1}).output
    assert out.startswith("[math-train-meet]")
    assert set(registry.names()) == {"calculator", "python", "search", "lookup", "search_memory"}
    assert "no episodic memory" in registry.call("search_memory", {"query": "x"}).error


def test_lookup_normalises_keys_and_reports_missing_terms(tmp_path):
    path = tmp_path / "kb.json"
    path.write_text(json.dumps({"Speed of Light": "299792458 m/s"}))
    registry = ToolRegistry([lookup_tool(path)])
    assert registry.call("lookup", {"term": "speed  of light"}).output == "299792458 m/s"
    assert "no entry for 'boiling point'" in registry.call("lookup", {"term": "boiling point"}).error
    with pytest.raises(ValueError, match="must be a string"):
        lookup_tool({"a": 1})


def test_search_memory_returns_the_closest_past_reflection(tmp_path):
    memory = EpisodicMemory(tmp_path)
    memory.add("What is 17 * 23?", "I multiplied the tens wrong; 17 * 23 = 391.")
    memory.add(
        "Where will Sally look for the marble?", "Sally did not see the move, so she believes it is in the basket."
    )
    registry = ToolRegistry([search_memory_tool(memory)])
    first = json.loads(registry.call("search_memory", {"query": "Sally marble basket", "k": 1}).output)
    assert first["prompt"] == "Where will Sally look for the marble?"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox is Linux-only")
def test_python_runs_in_the_sandbox_and_reports_failures():
    registry = ToolRegistry([python_tool(SandboxConfig(timeout=20.0))])
    assert registry.call("python", {"code": "print(sum(range(10)))"}).output == "45"
    failed = registry.call("python", {"code": "raise SystemExit(3)"})
    assert not failed.ok and failed.error.startswith("RuntimeError: error")
    assert not registry.call("python", {"code": "print(1)", "timeout": 100}).ok
