"""The graph-of-thought workspace: construction from reports, typed edges, actions, rewards, export."""

import json

import pytest

from hf_reason.tools import ToolRegistry, calculator_tool
from hf_reason.workspace import GraphActionError, GraphReward, ThoughtGraph, grounded_fraction, structure_penalty


REPORT = """Plan: Add the speeds, then divide the distance.
Step 1: The closing speed is 70 + 80 = 150 km/h.
Step 2: Time = 300 / 150 = 2 hours.
Monitor: Units: km divided by km/h gives hours.
Diagnosis: Subtracting the speeds would be wrong: the trains approach.
Reflection: Step 1 rests on the word toward; Step 2 is exact.
Answer: 2"""


def test_a_report_becomes_typed_nodes_and_edges():
    graph = ThoughtGraph.from_report(REPORT)
    data = graph.to_json()
    assert [(n["id"], n["kind"]) for n in data["nodes"]] == [
        ("plan", "Plan"),
        ("step1", "Step"),
        ("step2", "Step"),
        ("monitor", "Monitor"),
        ("diagnosis", "Diagnosis"),
        ("reflection", "Reflection"),
    ]
    assert {(e["source"], e["target"], e["type"]) for e in data["edges"]} == {
        ("plan", "step1", "plans"),
        ("plan", "step2", "plans"),
        ("step1", "step2", "next"),
        ("step2", "monitor", "checks"),
        ("monitor", "diagnosis", "diagnoses"),
        ("reflection", "step1", "reflects_on"),
        ("reflection", "step2", "reflects_on"),
    }
    assert structure_penalty(graph) == 0.0


def test_edges_only_join_the_kinds_their_type_allows():
    graph = ThoughtGraph()
    plan, monitor = graph.add_node("Plan", "p"), graph.add_node("Monitor", "m")
    with pytest.raises(GraphActionError, match="a 'plans' edge cannot join a Plan to a Monitor"):
        graph.add_edge(plan, monitor, "plans")
    with pytest.raises(GraphActionError, match="node kind must be one of"):
        graph.add_node("Idea", "x")


def test_controller_actions_run_and_are_logged(tmp_path):
    log = tmp_path / "progress.jsonl"
    graph = ThoughtGraph.from_report(REPORT, log_path=log, tool_registry=ToolRegistry([calculator_tool()]))
    monitor2 = graph.execute('Action: expand_node({"node": "step1", "kind": "Monitor", "text": "70 + 80 checked"})')
    assert graph.kind(monitor2) == "Monitor" and graph.graph.edges["step1", monitor2]["type"] == "checks"
    assert (
        graph.execute('request_tool({"node": "step2", "call": "calculator({\\"expression\\": \\"300/150\\"})"})')
        == "2"
    )
    h1 = graph.add_node("Hypothesis", "the trains meet at 2 h")
    h2 = graph.add_node("Hypothesis", "they meet after 2 hours")
    merged = graph.execute(json.dumps({"nodes": [h1, h2]}).join(["merge(", ")"]))
    assert h1 not in graph.graph and graph.text(merged) == "the trains meet at 2 h / they meet after 2 hours"
    summary = graph.execute('summarize({"nodes": ["step1", "step2"], "text": "both steps hold"})')
    assert graph.kind(summary) == "Reflection" and graph.graph.out_degree(summary) == 2
    assert graph.execute('expand_node({"node": "plan", "kind": "Diagnosis", "text": "x"})').startswith(
        "error: expand_node: a Plan cannot have a Diagnosis child"
    )
    assert graph.execute("teleport({})").startswith("error: unknown action 'teleport'")
    assert (
        graph.execute('merge({"nodes": ["plan", "step1"]})')
        == "error: merge: nodes must share a kind, got ['Plan', 'Step']"
    )
    ops = [json.loads(line) for line in log.read_text().splitlines()]
    assert all(op["event"] == "graph" for op in ops)
    assert [op["action"] for op in ops if op["op"] == "action"] == [
        "expand_node",
        "request_tool",
        "merge",
        "summarize",
    ]
    assert sum(op["op"] == "error" for op in ops) == 3


def test_rewards_favour_grounded_nodes_and_penalise_dangling_nodes_and_unresolved_cycles():
    graph = ThoughtGraph.from_report(REPORT)
    assert grounded_fraction(graph, attended=["toward", "300"]) == pytest.approx(2 / 6)
    assert grounded_fraction(graph, attended=[], evidence=["hours"]) == pytest.approx(2 / 6)
    loop = ThoughtGraph()
    a, b = loop.add_node("Hypothesis", "a"), loop.add_node("Hypothesis", "b")
    loop.add_edge(a, b, "relates")
    loop.add_edge(b, a, "relates")
    loop.add_node("Plan", "lonely")
    assert structure_penalty(loop) == 1.0  # the cycle never resolves and the plan dangles
    loop.execute(f'summarize({{"nodes": ["{a}"]}})')
    assert structure_penalty(loop) == pytest.approx(1 / 4)  # reflected on: only the plan dangles
    reward = GraphReward()(["p", "p"], [REPORT, "Plan: x\nStep 1: y"], attended=['["toward"]', "[]"])
    assert reward == [pytest.approx(1 / 6), 0.0]


def test_json_round_trip_and_png(tmp_path):
    graph = ThoughtGraph.from_report(REPORT)
    graph.save_json(tmp_path / "graph.json")
    again = ThoughtGraph.from_json(json.loads((tmp_path / "graph.json").read_text()))
    assert again.to_json() == graph.to_json()
    png = graph.save_png(tmp_path / "graph.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_model_drives_the_graph_live_through_tool_calls():
    from grpo_testing import tiny_meta_attention
    from test_tools_generation import ScriptedCaller

    from hf_reason.data import build_tokenizer
    from hf_reason.tools import generate_with_tools

    tokenizer = build_tokenizer(vocab_size=320)
    model = tiny_meta_attention(tokenizer)
    graph = ThoughtGraph()
    graph.add_node("Plan", "multiply", node_id="plan")
    script = ['Tool: expand_node({"node": "plan", "kind": "Step", "text": "12*3"})']
    (out,) = generate_with_tools(
        model,
        tokenizer,
        ["Q: 12*3?\n"],
        graph.as_tools(),
        logits_processor=[ScriptedCaller(tokenizer, script)],
        max_new_tokens=100,
        do_sample=False,
    )
    assert out.text == script[0] + "\nResult: step1\nAnswer: step1"
    assert graph.kind("step1") == "Step" and graph.graph.edges["plan", "step1"]["type"] == "plans"
    bad = graph.as_tools().call("expand_node", {"node": "nowhere", "kind": "Step", "text": "x"})
    assert bad.error == "GraphActionError: expand_node: no node 'nowhere'"
