"""A generated constraint-puzzle family checked by z3: find digits that satisfy a set of relations.

    Variables: A B C (each 0-9)
    A + B = 11
    B - C = 2
    A > C
    Answer as A=.., B=.., C=..

The generator keeps adding random relations true of a hidden assignment until z3 proves that
assignment is the only one; the verifier checks an answer with z3 against the constraints as
written (read with `ast` from an allow-list: variables, integers, ``+ - *``, comparisons).
"""

from __future__ import annotations

import ast
import random
import re
import string
from typing import Optional

import datasets


__all__ = ["check_constraint_answer", "generate_constraint_puzzles", "parse_constraint_puzzle"]

_ASSIGNMENT_RE = re.compile(r"\b([A-Z])\s*=\s*(-?\d+)\b")
_COMPARE = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


def _z3_term(node: ast.AST, variables: dict):
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.Name) and node.id in variables:
        return variables[node.id]
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
        left, right = _z3_term(node.left, variables), _z3_term(node.right, variables)
        return (
            left + right
            if isinstance(node.op, ast.Add)
            else left - right
            if isinstance(node.op, ast.Sub)
            else left * right
        )
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_z3_term(node.operand, variables)
    raise ValueError(
        f"only the variables {sorted(variables)}, integers and + - * are allowed, got {ast.dump(node)[:60]}"
    )


def _z3_constraint(text: str, variables: dict):
    source = text.strip()
    # "=" as written in the puzzle is equality; comparisons with two characters stay as they are.
    source = re.sub(r"(?<![<>!=])=(?!=)", "==", source)
    try:
        tree = ast.parse(source, mode="eval").body
    except SyntaxError as exc:
        raise ValueError(f"constraint {text!r} is not readable ({exc.msg})") from None
    if not (isinstance(tree, ast.Compare) and len(tree.ops) == 1 and type(tree.ops[0]) in _COMPARE):
        raise ValueError(f"constraint {text!r} must be one comparison (=, !=, <, <=, >, >=)")
    left, right = _z3_term(tree.left, variables), _z3_term(tree.comparators[0], variables)
    op = _COMPARE[type(tree.ops[0])]
    return {
        "==": left == right,
        "!=": left != right,
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[op]


def _solver(names: list[str], constraints: list[str], low: int, high: int):
    import z3

    variables = {n: z3.Int(n) for n in names}
    solver = z3.Solver()
    for v in variables.values():
        solver.add(v >= low, v <= high)
    for c in constraints:
        solver.add(_z3_constraint(c, variables))
    return solver, variables


def parse_constraint_puzzle(prompt: str) -> tuple[list[str], list[str], int, int]:
    """The variable names, constraint lines and value range of a prompt written by `generate_constraint_puzzles`."""
    match = re.search(r"Variables:\s*([A-Z ]+?)\s*\(each (-?\d+)-(-?\d+)\)\n(.*?)\nAnswer as", prompt, re.DOTALL)
    if match is None:
        raise ValueError(f"not a constraint puzzle prompt: {prompt[:80]!r}")
    names = match.group(1).split()
    constraints = [line.strip() for line in match.group(4).split("\n") if line.strip()]
    return names, constraints, int(match.group(2)), int(match.group(3))


def check_constraint_answer(prompt: str, completion: str) -> bool:
    """Whether the completion's assignment (``A=5, B=6, C=4``; the last value per variable counts) gives every
    variable a value in range and z3 finds the constraints satisfied by it."""
    import z3

    names, constraints, low, high = parse_constraint_puzzle(prompt)
    assignment = {}
    for name, value in _ASSIGNMENT_RE.findall(completion):
        assignment[name] = int(value)
    if set(assignment) != set(names):
        return False
    solver, variables = _solver(names, constraints, low, high)
    solver.add(*[variables[n] == v for n, v in assignment.items()])
    return solver.check() == z3.sat


def _relation(rng: random.Random, names: list[str], values: dict) -> str:
    a, b = rng.sample(names, 2)
    kind = rng.choice(["sum", "difference", "order", "product", "scaled"])
    if kind == "sum":
        return f"{a} + {b} = {values[a] + values[b]}"
    if kind == "difference":
        return f"{a} - {b} = {values[a] - values[b]}"
    if kind == "product":
        return f"{a} * {b} = {values[a] * values[b]}"
    if kind == "scaled":
        k = rng.randint(2, 3)
        return f"{k} * {a} + {b} = {k * values[a] + values[b]}"
    if values[a] == values[b]:
        return f"{a} = {b}"
    return f"{a} > {b}" if values[a] > values[b] else f"{a} < {b}"


def generate_constraint_puzzles(
    num_problems: int, num_variables: int = 3, low: int = 0, high: int = 9, seed: int = 0, max_constraints: int = 8
) -> datasets.Dataset:
    """Constraint puzzles with a unique solution, proved unique by z3.

    Args:
        num_problems (`int`): rows (>= 1).
        num_variables (`int`, defaults to 3): variables A, B, ... (2-8).
        low (`int`, defaults to 0) / high (`int`, defaults to 9): the range of every variable.
        seed (`int`, defaults to 0): the same seed gives the same puzzles.
        max_constraints (`int`, defaults to 8): puzzles that need more relations for uniqueness are redrawn.

    Returns:
        `datasets.Dataset` with `prompt`, `completion` (``"A=5, B=6, C=4"``), `answer` (the same) and
        `constraints` (the lines).
    """
    import z3

    if not isinstance(num_problems, int) or num_problems < 1:
        raise ValueError(f"`num_problems` must be an int >= 1, got {num_problems!r}")
    if not isinstance(num_variables, int) or not 2 <= num_variables <= 8:
        raise ValueError(f"`num_variables` must be an int in 2..8, got {num_variables!r}")
    if not low < high:
        raise ValueError(f"need `low` < `high`, got {low}, {high}")
    rng = random.Random(seed)
    names = list(string.ascii_uppercase[:num_variables])
    rows = {"prompt": [], "completion": [], "answer": [], "constraints": []}
    while len(rows["prompt"]) < num_problems:
        values = {n: rng.randint(low, high) for n in names}
        constraints: list[str] = []
        unique: Optional[bool] = False
        while len(constraints) < max_constraints:
            relation = _relation(rng, names, values)
            if relation in constraints:
                continue
            constraints.append(relation)
            solver, variables = _solver(names, constraints, low, high)
            solver.add(z3.Or([variables[n] != values[n] for n in names]))
            if solver.check() == z3.unsat:
                unique = True
                break
        if not unique:
            continue
        answer = ", ".join(f"{n}={values[n]}" for n in names)
        lines = "\n".join(constraints)
        rows["prompt"].append(
            f"Variables: {' '.join(names)} (each {low}-{high})\n{lines}\nAnswer as {', '.join(n + '=..' for n in names)}\n"
        )
        rows["completion"].append(answer)
        rows["answer"].append(answer)
        rows["constraints"].append(constraints)
    return datasets.Dataset.from_dict(rows)
