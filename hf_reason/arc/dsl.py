"""A typed DSL of pure grid primitives for ARC, and its programs.

A program is ``input`` or a primitive applied to a program, with constant parameters; it prints as
Python-like text and parses back (:func:`parse_program`), so a program found by the search can be
saved, read and run again::

    >>> program = parse_program("flip_lr(crop(pick(objects(input, connectivity=8, multicolour=False), which='largest'), content='object'))")
    >>> program(grid)                       # the output grid
    >>> program.size                        # 4 primitives

The primitives live in :mod:`hf_reason.arc.primitives` (geometry, colour, objects, patterns); each
is a pure function of typed values (:mod:`hf_reason.arc.registry`) and returns None where it does
not apply. :func:`list_primitives` prints the whole vocabulary.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from . import primitives as _primitives  # noqa: F401  (registers every primitive)
from .registry import ARC_TYPES, COLOUR, GRID, INT, OBJECT, OBJECTS, PRIMITIVES, Param, Primitive, primitive


__all__ = [
    "ARC_TYPES",
    "COLOUR",
    "GRID",
    "INPUT",
    "INT",
    "OBJECT",
    "OBJECTS",
    "PRIMITIVES",
    "Param",
    "Primitive",
    "Program",
    "list_primitives",
    "parse_program",
    "primitive",
]


def _freeze(value: Any) -> Any:
    """Parameter values as hashable constants (a colour map's dict becomes sorted pairs)."""
    if isinstance(value, dict):
        return tuple(sorted((int(k), int(v)) for k, v in value.items()))
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    return value


def _show(name: str, value: Any) -> str:
    if name == "mapping":
        return "{" + ", ".join(f"{k}: {v}" for k, v in value) + "}"
    return repr(value)


@dataclass(frozen=True)
class Program:
    """
    A DSL expression.

    Args:
        primitive (`str` or `None`): the primitive's name; `None` for the program's input grid.
        args (`tuple[Program, ...]`): the programs whose values the primitive takes.
        params (`tuple[tuple[str, Any], ...]`): the constant parameters, as (name, value) pairs.
    """

    primitive: Optional[str] = None
    args: tuple = ()
    params: tuple = ()

    @classmethod
    def call(cls, name: str, *args: Program, **params) -> Program:
        """`Program.call("rot90", INPUT)`: a primitive applied to programs (checked against the registry)."""
        if name not in PRIMITIVES:
            raise ValueError(f"unknown primitive {name!r}; list_primitives() shows them all")
        spec = PRIMITIVES[name]
        if len(args) != len(spec.arg_types):
            raise ValueError(
                f"{name} takes {len(spec.arg_types)} argument(s) of type {spec.arg_types}, got {len(args)}"
            )
        for arg, expected in zip(args, spec.arg_types):
            if arg.type != expected:
                raise ValueError(f"{name} takes a {expected}, got {arg} of type {arg.type}")
        names = [p.name for p in spec.params]
        if sorted(params) != sorted(names):
            raise ValueError(f"{name} takes the parameters {names}, got {sorted(params)}")
        return cls(name, tuple(args), tuple((n, _freeze(params[n])) for n in names))

    @property
    def type(self) -> str:
        return GRID if self.primitive is None else PRIMITIVES[self.primitive].return_type

    @property
    def size(self) -> int:
        """The number of primitives (what the search enumerates by)."""
        if self.primitive is None:
            return 0
        return PRIMITIVES[self.primitive].cost + sum(a.size for a in self.args)

    @property
    def num_constants(self) -> int:
        """Task-specific constants (colours and fitted colour-map entries): fewer is more general."""
        own = 0
        if self.primitive is not None:
            for param, (name, value) in zip(PRIMITIVES[self.primitive].params, self.params):
                if name == "mapping":
                    own += len(value)
                elif isinstance(param.domain, str):
                    own += 1
        return own + sum(a.num_constants for a in self.args)

    def __str__(self) -> str:
        if self.primitive is None:
            return "input"
        parts = [str(a) for a in self.args] + [f"{name}={_show(name, value)}" for name, value in self.params]
        return f"{self.primitive}({', '.join(parts)})"

    def evaluate(self, grid: np.ndarray) -> Any:
        """The program's value on an input grid (None where a primitive does not apply)."""
        if self.primitive is None:
            return grid
        values = [a.evaluate(grid) for a in self.args]
        if any(v is None for v in values):
            return None
        return PRIMITIVES[self.primitive].fn(*values, **dict(self.params))

    def __call__(self, grid: Any) -> Optional[np.ndarray]:
        """Runs the program on a grid (any integer array-like); returns the output grid or None."""
        value = self.evaluate(np.ascontiguousarray(grid, dtype=np.int8))
        return None if value is None else np.asarray(value)


INPUT = Program()


def _literal(node: ast.AST, text: str) -> Any:
    try:
        return _freeze(ast.literal_eval(node))
    except ValueError:
        raise ValueError(f"program {text!r}: parameter value {ast.unparse(node)!r} is not a constant") from None


def _build(node: ast.AST, text: str) -> Program:
    if isinstance(node, ast.Name) and node.id == "input":
        return INPUT
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise ValueError(f"program {text!r}: expected `input` or primitive(...), got {ast.unparse(node)!r}")
    args = [_build(arg, text) for arg in node.args]
    params = {kw.arg: _literal(kw.value, text) for kw in node.keywords}
    return Program.call(node.func.id, *args, **params)


def parse_program(text: str) -> Program:
    """Parses the text a program prints (`str(program)`) back into the program."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise ValueError(f"program {text!r} does not parse: {error.msg}") from None
    return _build(tree.body, text)


def list_primitives() -> str:
    """One line per primitive: its signature, parameters with their domains, and what it does."""
    lines = []
    for spec in PRIMITIVES.values():
        params = ", ".join(f"{p.name} in {p.domain if p.domain is not None else 'fitted'}" for p in spec.params)
        signature = f"{spec.name}({', '.join(spec.arg_types)}) -> {spec.return_type}"
        lines.append(f"{signature}{'  [' + params + ']' if params else ''}: {spec.doc}")
    return "\n".join(lines)
