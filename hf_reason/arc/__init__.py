"""ARC-AGI solving: a typed DSL with program search, TRM inference with augmentation voting and
test-time training, and a hybrid of the two (docs/arc.md)."""

from .dsl import INPUT, PRIMITIVES, Program, list_primitives, parse_program
from .parallel import solve_tasks_with_dsl
from .search import DSLCandidate, DSLSearchConfig, DSLSearchResult, search_programs


__all__ = [
    "INPUT",
    "PRIMITIVES",
    "DSLCandidate",
    "DSLSearchConfig",
    "DSLSearchResult",
    "Program",
    "list_primitives",
    "parse_program",
    "search_programs",
    "solve_tasks_with_dsl",
]
