# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""The graph-of-thought workspace: typed nodes and edges, controller actions, graph rewards, export.

Nodes are ``Plan``, ``Step``, ``Monitor``, ``Diagnosis``, ``Reflection`` and ``Hypothesis``; edges are
typed and only join the kinds their type allows (`EDGE_TYPES`): ``plans`` (Plan -> Step), ``next``
(Step -> Step), ``checks`` (Step -> Monitor), ``diagnoses`` (Monitor -> Diagnosis), ``relates``
(Hypothesis <-> Hypothesis), ``supports`` (Hypothesis -> Step / Diagnosis) and ``reflects_on``
(Reflection -> any). A graph is built from a report (`ThoughtGraph.from_report`) or driven live by
controller actions the model writes, one per line (`ThoughtGraph.execute`):

    Action: expand_node({"node": "step1", "kind": "Monitor", "text": "units check out"})
    Action: merge({"nodes": ["h1", "h2"], "text": "the key is in the box or the drawer"})
    Action: summarize({"nodes": ["step1", "step2"]})
    Action: request_tool({"node": "step2", "call": "calculator({\\"expression\\": \\"300/150\\"})"})

Every operation is appended to ``progress.jsonl`` when the graph has a log path. The graph is a
`networkx.DiGraph` (BSD-3, already required by torch); `to_json` / `save_json` / `save_png` export it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import networkx as nx

from ..evaluation.reports import parse_report
from ..file_io import append_jsonl, atomic_write_json, save_figure_atomic


__all__ = [
    "ACTIONS",
    "EDGE_TYPES",
    "NODE_KINDS",
    "GraphActionError",
    "GraphReward",
    "ThoughtGraph",
    "graph_reward",
    "grounded_fraction",
    "structure_penalty",
]

NODE_KINDS = ("Plan", "Step", "Monitor", "Diagnosis", "Reflection", "Hypothesis")
_ANY = frozenset(NODE_KINDS)
# edge type -> (allowed source kinds, allowed target kinds)
EDGE_TYPES: dict[str, tuple[frozenset, frozenset]] = {
    "plans": (frozenset({"Plan"}), frozenset({"Step"})),
    "next": (frozenset({"Step"}), frozenset({"Step"})),
    "checks": (frozenset({"Step"}), frozenset({"Monitor"})),
    "diagnoses": (frozenset({"Monitor"}), frozenset({"Diagnosis"})),
    "relates": (frozenset({"Hypothesis"}), frozenset({"Hypothesis"})),
    "supports": (frozenset({"Hypothesis"}), frozenset({"Step", "Diagnosis"})),
    "reflects_on": (frozenset({"Reflection"}), _ANY),
}
# the edge `expand_node` draws from a parent of one kind to a new child of another
_CHILD_EDGE = {
    ("Plan", "Step"): "plans",
    ("Step", "Step"): "next",
    ("Step", "Monitor"): "checks",
    ("Monitor", "Diagnosis"): "diagnoses",
    ("Hypothesis", "Hypothesis"): "relates",
    ("Hypothesis", "Step"): "supports",
    ("Hypothesis", "Diagnosis"): "supports",
}
ACTIONS = ("expand_node", "merge", "summarize", "request_tool")
_ACTION_RE = re.compile(r"^[ \t]*Action:[ \t]*(.*)$", re.MULTILINE)
_WORD_RE = re.compile(r"[a-z0-9]+")


class GraphActionError(ValueError):
    """An action or edit the graph cannot carry out: names the action and what was wrong."""


class ThoughtGraph:
    """A graph of thoughts.

    Args:
        log_path (`str` or `os.PathLike`, *optional*): ``progress.jsonl`` every operation is appended to.
        tool_registry ([`~hf_reason.tools.ToolRegistry`], *optional*): what ``request_tool`` runs.
    """

    def __init__(self, log_path=None, tool_registry=None):
        self.graph = nx.DiGraph()
        self.log_path = Path(log_path) if log_path is not None else None
        self.tool_registry = tool_registry
        self._counter = 0

    def _log(self, op: str, **details) -> None:
        if self.log_path is not None:
            append_jsonl(self.log_path, {"event": "graph", "op": op, **details})

    def _new_id(self, kind: str) -> str:
        self._counter += 1
        return f"{kind.lower()}{self._counter}"

    def add_node(self, kind: str, text: str, node_id: Optional[str] = None) -> str:
        """Adds a node; returns its id."""
        if kind not in NODE_KINDS:
            raise GraphActionError(f"node kind must be one of {list(NODE_KINDS)}, got {kind!r}")
        node_id = node_id or self._new_id(kind)
        if node_id in self.graph:
            raise GraphActionError(f"a node {node_id!r} already exists")
        self.graph.add_node(node_id, kind=kind, text=text)
        self._log("add_node", node=node_id, kind=kind, text=text)
        return node_id

    def add_edge(self, source: str, target: str, edge_type: str) -> None:
        """Adds a typed edge; the kinds of both ends must be ones the type allows."""
        if edge_type not in EDGE_TYPES:
            raise GraphActionError(f"edge type must be one of {sorted(EDGE_TYPES)}, got {edge_type!r}")
        for node in (source, target):
            if node not in self.graph:
                raise GraphActionError(f"no node {node!r}")
        sources, targets = EDGE_TYPES[edge_type]
        kinds = (self.kind(source), self.kind(target))
        if kinds[0] not in sources or kinds[1] not in targets:
            raise GraphActionError(f"a {edge_type!r} edge cannot join a {kinds[0]} to a {kinds[1]}")
        self.graph.add_edge(source, target, type=edge_type)
        self._log("add_edge", source=source, target=target, type=edge_type)

    def kind(self, node: str) -> str:
        return self.graph.nodes[node]["kind"]

    def text(self, node: str) -> str:
        return self.graph.nodes[node]["text"]

    def nodes(self, kind: Optional[str] = None) -> list[str]:
        return [n for n, data in self.graph.nodes(data=True) if kind is None or data["kind"] == kind]

    # ------------------------------------------------------------------ building from a report

    @classmethod
    def from_report(cls, report: str, log_path=None, tool_registry=None) -> ThoughtGraph:
        """The graph of a report's sections: Plan -> Steps (in order), the last Step -> Monitor ->
        Diagnosis, and each Reflection -> the sections it names (``Step 2``), or the Diagnosis / last
        node when it names none. ``Action:`` lines in the report are then executed in order."""
        self = cls(log_path, tool_registry)
        plan, last_step, monitor, last = None, None, None, None
        ids: dict[str, str] = {}
        for name, body in parse_report(report).sections:
            if name == "Answer":
                continue
            kind = "Step" if name.startswith("Step") else name
            body = _ACTION_RE.sub("", body).strip()
            node = self.add_node(kind, body, node_id=re.sub(r"\s+", "", name).lower() if name not in ids else None)
            ids.setdefault(name, node)
            if kind == "Plan":
                plan = node
            elif kind == "Step":
                if plan is not None:
                    self.add_edge(plan, node, "plans")
                if last_step is not None:
                    self.add_edge(last_step, node, "next")
                last_step = node
            elif kind == "Monitor":
                if last_step is not None:
                    self.add_edge(last_step, node, "checks")
                monitor = node
            elif kind == "Diagnosis":
                if monitor is not None:
                    self.add_edge(monitor, node, "diagnoses")
            elif kind == "Reflection":
                named = [ids[n] for n in ids if n != name and re.search(rf"\b{re.escape(n)}\b", body)]
                targets = named or [n for n in (self._last_of("Diagnosis"), last) if n is not None][:1]
                for target in targets:
                    self.add_edge(node, target, "reflects_on")
            last = node
        for match in _ACTION_RE.finditer(report):
            self.execute(match.group(1))
        return self

    def _last_of(self, kind: str) -> Optional[str]:
        found = self.nodes(kind)
        return found[-1] if found else None

    # ------------------------------------------------------------------ controller actions

    def execute(self, action: str) -> str:
        """Runs one controller action ``name({json})`` (an ``Action:`` prefix is allowed).

        Returns the action's result text; a malformed or impossible action returns ``error: ...`` (and
        is logged), so a model driving the graph gets feedback instead of an exception.
        """
        from ..tools.registry import ToolCallError, parse_tool_call

        try:
            name, args = parse_tool_call(action.strip().removeprefix("Action:"))
            if name not in ACTIONS:
                raise GraphActionError(f"unknown action {name!r}; known: {list(ACTIONS)}")
            result = getattr(self, f"_{name}")(**args)
        except (ToolCallError, GraphActionError, TypeError) as exc:
            self._log("error", action=action.strip(), error=str(exc))
            return f"error: {exc}"
        self._log("action", action=name, arguments=args, result=result)
        return result

    def _expand_node(self, node: str, kind: str, text: str) -> str:
        if node not in self.graph:
            raise GraphActionError(f"expand_node: no node {node!r}")
        parent = self.kind(node)
        if kind == "Reflection":
            child = self.add_node(kind, text)
            self.add_edge(child, node, "reflects_on")
            return child
        edge = _CHILD_EDGE.get((parent, kind))
        if edge is None:
            raise GraphActionError(f"expand_node: a {parent} cannot have a {kind} child")
        child = self.add_node(kind, text)
        self.add_edge(node, child, edge)
        return child

    def _merge(self, nodes: Sequence[str], text: Optional[str] = None) -> str:
        if len(nodes) < 2 or any(n not in self.graph for n in nodes):
            raise GraphActionError(f"merge: needs two or more existing nodes, got {list(nodes)}")
        kinds = {self.kind(n) for n in nodes}
        if len(kinds) != 1:
            raise GraphActionError(f"merge: nodes must share a kind, got {sorted(kinds)}")
        kind = kinds.pop()
        merged = self.add_node(kind, text or " / ".join(self.text(n) for n in nodes))
        gone = set(nodes)
        for n in nodes:
            for source, _, data in list(self.graph.in_edges(n, data=True)):
                if source not in gone and not self.graph.has_edge(source, merged):
                    self.add_edge(source, merged, data["type"])
            for _, target, data in list(self.graph.out_edges(n, data=True)):
                if target not in gone and not self.graph.has_edge(merged, target):
                    self.add_edge(merged, target, data["type"])
        self.graph.remove_nodes_from(nodes)
        self._log("remove_nodes", nodes=list(nodes), merged_into=merged)
        return merged

    def _summarize(self, nodes: Sequence[str], text: Optional[str] = None) -> str:
        if not nodes or any(n not in self.graph for n in nodes):
            raise GraphActionError(f"summarize: needs existing nodes, got {list(nodes)}")
        summary = self.add_node("Reflection", text or " ".join(self.text(n) for n in nodes)[:500])
        for n in nodes:
            self.add_edge(summary, n, "reflects_on")
        return summary

    def _request_tool(self, node: str, call: str) -> str:
        if node not in self.graph:
            raise GraphActionError(f"request_tool: no node {node!r}")
        if self.tool_registry is None:
            raise GraphActionError("request_tool: this graph has no tool registry")
        if self.kind(node) != "Step":
            raise GraphActionError(f"request_tool: tool results check a Step, got a {self.kind(node)}")
        result = self.tool_registry.call_text(call)
        monitor = self.add_node("Monitor", f"Tool: {call} -> {result.text}")
        self.add_edge(node, monitor, "checks")
        return result.text

    def as_tools(self):
        """The controller actions as a [`~hf_reason.tools.ToolRegistry`], so a model drives the graph live
        during generation (`generate_with_tools`): ``Tool: expand_node({...})`` runs the action and the
        result (the new node's id, or ``error: ...``) is spliced back."""
        from ..tools.registry import Tool, ToolRegistry

        ids = {"type": "array", "items": {"type": "string"}, "minItems": 1}
        schemas = {
            "expand_node": (
                {"node": {"type": "string"}, "kind": {"enum": list(NODE_KINDS)}, "text": {"type": "string"}},
                ["node", "kind", "text"],
            ),
            "merge": ({"nodes": ids, "text": {"type": "string"}}, ["nodes"]),
            "summarize": ({"nodes": ids, "text": {"type": "string"}}, ["nodes"]),
            "request_tool": ({"node": {"type": "string"}, "call": {"type": "string"}}, ["node", "call"]),
        }

        def runner(name):
            def run(**arguments):
                result = self.execute(f"{name}({json.dumps(arguments)})")
                if result.startswith("error: "):
                    raise GraphActionError(result[len("error: ") :])
                return result

            return run

        return ToolRegistry(
            Tool(
                name,
                f"graph action {name}",
                {"type": "object", "properties": props, "required": required, "additionalProperties": False},
                runner(name),
            )
            for name, (props, required) in schemas.items()
        )

    # ------------------------------------------------------------------ export

    def to_json(self) -> dict[str, Any]:
        """``{"nodes": [{"id", "kind", "text"}], "edges": [{"source", "target", "type"}]}``."""
        return {
            "nodes": [{"id": n, "kind": d["kind"], "text": d["text"]} for n, d in self.graph.nodes(data=True)],
            "edges": [{"source": s, "target": t, "type": d["type"]} for s, t, d in self.graph.edges(data=True)],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], log_path=None, tool_registry=None) -> ThoughtGraph:
        self = cls(None, tool_registry)
        for node in data["nodes"]:
            self.add_node(node["kind"], node["text"], node_id=node["id"])
        for edge in data["edges"]:
            self.add_edge(edge["source"], edge["target"], edge["type"])
        self._counter = len(self.graph)
        self.log_path = Path(log_path) if log_path is not None else None
        return self

    def save_json(self, path) -> Path:
        return atomic_write_json(path, self.to_json(), indent=1)

    def save_png(self, path, dpi: int = 110) -> Path:
        """Draws the graph (layered by kind, edges labelled by type) to a PNG, atomically."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        layer = {kind: i for i, kind in enumerate(NODE_KINDS)}
        for n in self.graph:
            self.graph.nodes[n]["layer"] = layer[self.kind(n)]
        positions = nx.multipartite_layout(self.graph, subset_key="layer", align="horizontal")
        figure, axis = plt.subplots(figsize=(max(6, len(self.graph) * 1.2), 5))
        colors = [plt.cm.tab10(layer[self.kind(n)]) for n in self.graph]
        labels = {n: f"{self.kind(n)}\n{self.text(n)[:24]}" for n in self.graph}
        nx.draw_networkx(self.graph, positions, ax=axis, node_color=colors, labels=labels, font_size=7, node_size=900)
        edge_labels = {(s, t): d["type"] for s, t, d in self.graph.edges(data=True)}
        nx.draw_networkx_edge_labels(self.graph, positions, edge_labels=edge_labels, ax=axis, font_size=6)
        axis.set_axis_off()
        return save_figure_atomic(figure, path, dpi=dpi)


# ---------------------------------------------------------------------- rewards


def _words(text: str) -> set[str]:
    return set(_WORD_RE.findall(text.lower()))


def grounded_fraction(graph: ThoughtGraph, attended: Sequence[str] = (), evidence: Sequence[str] = ()) -> float:
    """Share of nodes whose text contains an attended token or a word of the validator's evidence."""
    anchors = {w for term in [*attended, *evidence] for w in _words(term) if len(w) > 1}
    nodes = graph.nodes()
    if not nodes or not anchors:
        return 0.0
    return sum(bool(_words(graph.text(n)) & anchors) for n in nodes) / len(nodes)


def structure_penalty(graph: ThoughtGraph) -> float:
    """Share of nodes that are dangling or on a cycle that never resolves.

    Dangling: a node with no edge at all in a graph of two or more nodes, or a Step that nothing plans
    or precedes. Unresolved cycle: a cycle (e.g. hypotheses relating to each other in a loop) none of
    whose nodes is reflected on or supports a Step or Diagnosis.
    """
    g, nodes = graph.graph, graph.nodes()
    if len(nodes) < 2:
        return 0.0
    bad = set()
    for n in nodes:
        if g.degree(n) == 0 or (graph.kind(n) == "Step" and g.in_degree(n) == 0 and graph.nodes("Plan")):
            bad.add(n)
    for cycle in nx.simple_cycles(g):
        reflected = any(graph.kind(p) == "Reflection" for c in cycle for p in g.predecessors(c))
        supports = any(d["type"] == "supports" for c in cycle for _, _, d in g.out_edges(c, data=True))
        if not (reflected or supports):
            bad.update(cycle)
    return len(bad) / len(nodes)


def graph_reward(report: str, attended: Sequence[str] = (), evidence: Sequence[str] = ()) -> float:
    """`grounded_fraction` minus `structure_penalty` of the report's graph, in [-1, 1]."""
    graph = ThoughtGraph.from_report(report)
    return grounded_fraction(graph, attended, evidence) - structure_penalty(graph)


class GraphReward:
    """A TRL reward function: `graph_reward` of each completion.

    Reads the dataset columns ``attended`` (tokens the model attended to, a list or JSON string) and
    ``evidence`` (validator evidence strings) when present.
    """

    __name__ = "graph_reward"

    def __call__(self, prompts, completions, attended=None, evidence=None, **kwargs) -> list[float]:
        def column(values, i):
            value = values[i] if values is not None else []
            return json.loads(value) if isinstance(value, str) else list(value or [])

        return [
            graph_reward(completion, column(attended, i), column(evidence, i))
            for i, completion in enumerate(completions)
        ]
