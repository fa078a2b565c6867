"""Small planning puzzles with exact checkers: blocks-world moves and precedence scheduling.

Blocks world: a state is a list of stacks, bottom first (``[["A", "B"], ["C"]]`` = B on A, C
alone). A plan is a sequence of moves ``move X onto Y`` / ``move X onto table`` separated by
``;`` or newlines; only a clear (top) block moves. The shortest plan is found by breadth-first
search (a few blocks only), so the gold answer is optimal and `check_plan` can require it.

Scheduling: tasks with prerequisites; an answer is an order of all tasks (``"A, C, B"``) in
which every task comes after its prerequisites. Any such order is accepted (the checker
simulates it); the gold answer is the lexicographically smallest topological order.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections import deque
from typing import Optional

import datasets


__all__ = ["PlanVerdict", "check_plan", "generate_planning", "parse_moves", "solve_blocks", "solve_schedule"]

_MOVE_RE = re.compile(r"move\s+([A-Za-z])\s+(?:onto|on|to)\s+(table|[A-Za-z])\b", re.IGNORECASE)


@dataclasses.dataclass
class PlanVerdict:
    valid: bool
    reason: str = ""


def _key(stacks) -> tuple:
    return tuple(sorted(tuple(s) for s in stacks if s))


def _apply_move(stacks: list[list[str]], block: str, target: str) -> Optional[list[list[str]]]:
    stacks = [list(s) for s in stacks if s]
    source = next((s for s in stacks if s[-1] == block), None)
    if source is None:
        return None  # block missing or not clear
    if target == "table":
        if len(source) == 1:
            return None  # already on the table: a wasted move is not a legal step here
        source.pop()
        stacks.append([block])
        return stacks
    destination = next((s for s in stacks if s[-1] == target), None)
    if destination is None or destination is source:
        return None
    source.pop()
    destination.append(block)
    return [s for s in stacks if s]


def parse_moves(text: str) -> list[tuple[str, str]]:
    """``"move C onto table; move B onto C"`` -> ``[("C", "table"), ("B", "C")]``."""
    return [(b.upper(), t.lower() if t.lower() == "table" else t.upper()) for b, t in _MOVE_RE.findall(text)]


def solve_blocks(initial: list[list[str]], goal: list[list[str]]) -> list[tuple[str, str]]:
    """A shortest move sequence from `initial` to `goal` (breadth-first search)."""
    start, target = _key(initial), _key(goal)
    queue, parent = deque([start]), {start: None}
    while queue:
        state = queue.popleft()
        if state == target:
            moves = []
            while parent[state] is not None:
                state, move = parent[state]
                moves.append(move)
            return moves[::-1]
        stacks = [list(s) for s in state]
        tops = [s[-1] for s in stacks]
        for block in tops:
            for dest in ["table"] + [t for t in tops if t != block]:
                nxt = _apply_move(stacks, block, dest)
                if nxt is not None and _key(nxt) not in parent:
                    parent[_key(nxt)] = (state, (block, dest))
                    queue.append(_key(nxt))
    raise ValueError("goal unreachable (the two states must hold the same blocks)")


def solve_schedule(tasks: dict[str, list[str]]) -> list[str]:
    """The lexicographically smallest order that respects every prerequisite."""
    done, order = set(), []
    while len(order) < len(tasks):
        ready = sorted(t for t, pre in tasks.items() if t not in done and set(pre) <= done)
        if not ready:
            raise ValueError("the prerequisites contain a cycle")
        order.append(ready[0])
        done.add(ready[0])
    return order


def check_plan(puzzle: dict, answer: str, require_optimal: bool = False) -> PlanVerdict:
    """Simulates `answer` on `puzzle` (``{"type": "blocks"|"schedule", ...}``): legal and reaches the goal?"""
    kind = puzzle.get("type")
    if kind == "blocks":
        moves = parse_moves(answer)
        if not moves:
            return PlanVerdict(False, "no moves of the form `move X onto Y|table`")
        stacks = [list(s) for s in puzzle["initial"]]
        for i, (block, target) in enumerate(moves, 1):
            stacks = _apply_move(stacks, block, target)
            if stacks is None:
                return PlanVerdict(False, f"move {i} (move {block} onto {target}) is illegal")
        if _key(stacks) != _key(puzzle["goal"]):
            return PlanVerdict(False, "the moves do not reach the goal")
        optimal = len(solve_blocks(puzzle["initial"], puzzle["goal"]))
        if require_optimal and len(moves) > optimal:
            return PlanVerdict(False, f"{len(moves)} moves, the optimum is {optimal}")
        return PlanVerdict(True)
    if kind == "schedule":
        tasks = puzzle["tasks"]
        order = [t.strip().upper() for t in re.split(r"[,;\s]+(?:then\s+)?", answer) if t.strip()]
        order = [t for t in order if t in tasks]
        if sorted(order) != sorted(tasks):
            return PlanVerdict(False, f"the order must list each of {sorted(tasks)} exactly once")
        seen = set()
        for task in order:
            missing = set(tasks[task]) - seen
            if missing:
                return PlanVerdict(False, f"{task} is scheduled before its prerequisite(s) {sorted(missing)}")
            seen.add(task)
        return PlanVerdict(True)
    raise ValueError(f"puzzle['type'] must be 'blocks' or 'schedule', got {kind!r}")


def _describe(stacks) -> str:
    parts = []
    for stack in stacks:
        parts.append(f"{stack[0]} is on the table" + "".join(f", {b} is on {a}" for a, b in zip(stack, stack[1:])))
    return "; ".join(parts)


def _random_stacks(blocks: list[str], rng: random.Random) -> list[list[str]]:
    blocks = blocks[:]
    rng.shuffle(blocks)
    stacks: list[list[str]] = []
    for block in blocks:
        if stacks and rng.random() < 0.6:
            rng.choice(stacks).append(block)
        else:
            stacks.append([block])
    return stacks


def generate_planning(num_examples: int, kind: str = "blocks", num_items: int = 3, seed: int = 0) -> datasets.Dataset:
    """Planning puzzles with their optimal (blocks) or canonical (schedule) solution.

    Args:
        num_examples (`int`): number of rows (>= 1).
        kind (`str`, defaults to `"blocks"`): ``"blocks"`` or ``"schedule"``.
        num_items (`int`, defaults to 3): blocks (2..5) or tasks (2..8).
        seed (`int`, defaults to 0): the same seed gives the same puzzles.

    Returns:
        `datasets.Dataset` with columns `prompt`, `answer` (the solution as text), `puzzle`
        (JSON string for `check_plan`), `steps` (the solution as a list of strings).
    """
    if not isinstance(num_examples, int) or num_examples < 1:
        raise ValueError(f"`num_examples` must be an int >= 1, got {num_examples!r}")
    if kind not in ("blocks", "schedule"):
        raise ValueError(f"`kind` must be 'blocks' or 'schedule', got {kind!r}")
    limits = (2, 5) if kind == "blocks" else (2, 8)
    if not isinstance(num_items, int) or not limits[0] <= num_items <= limits[1]:
        raise ValueError(
            f"`num_items` must be an int in {limits[0]}..{limits[1]} for kind {kind!r}, got {num_items!r}"
        )
    import json

    rng = random.Random(seed)
    names = [chr(ord("A") + i) for i in range(num_items)]
    rows = {"prompt": [], "answer": [], "puzzle": [], "steps": []}
    while len(rows["prompt"]) < num_examples:
        if kind == "blocks":
            initial, goal = _random_stacks(names, rng), _random_stacks(names, rng)
            if _key(initial) == _key(goal):
                continue
            moves = solve_blocks(initial, goal)
            steps = [f"move {b} onto {t}" for b, t in moves]
            puzzle = {"type": "blocks", "initial": initial, "goal": goal}
            prompt = (
                f"Blocks world. Now: {_describe(initial)}. Goal: {_describe(goal)}. Only a block with "
                "nothing on it can move, one at a time. Give the shortest list of moves."
            )
        else:
            tasks = {n: sorted(p for p in names[:i] if rng.random() < 0.4) for i, n in enumerate(names)}
            shuffled = names[:]
            rng.shuffle(shuffled)
            tasks = {n: tasks[n] for n in shuffled}
            steps = solve_schedule(tasks)
            puzzle = {"type": "schedule", "tasks": tasks}
            rules = (
                "; ".join(f"{t} needs {', '.join(p)} first" for t, p in tasks.items() if p) or "no task needs another"
            )
            prompt = (
                f"Schedule tasks {', '.join(sorted(tasks))} one at a time. Rules: {rules}. "
                "Give an order; when several tasks are ready, take the alphabetically first."
            )
        rows["prompt"].append(prompt)
        rows["answer"].append("; ".join(steps) if kind == "blocks" else ", ".join(steps))
        rows["puzzle"].append(json.dumps(puzzle))
        rows["steps"].append(steps)
    return datasets.Dataset.from_dict(rows)
