# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Built-in grammars: an arithmetic GBNF and a Python subset for code answers.

The Python grammar is generated rather than written out: Python's blocks are context-sensitive
(indentation), and a context-free grammar can only follow them to a fixed depth, so each depth
and each context (inside a function, inside a loop) gets its own rules. It is written in
llguidance's Lark dialect because identifiers must exclude Python's keywords, which its lexeme
operators (`&`, `~`) say directly.
"""

import keyword


# Integers without leading zeros, + - * / and parentheses, no spaces: exactly what
# `ast.parse(text, mode="eval")` reads as an arithmetic expression of int literals.
ARITHMETIC_GBNF = r"""
root ::= expr
expr ::= term (("+" | "-") term)*
term ::= factor (("*" | "/") factor)*
factor ::= number | "(" expr ")"
number ::= "0" | [1-9] [0-9]*
"""

_CONTEXTS = ("plain", "func", "loop", "funcloop")


def _simple(context: str) -> str:
    alternatives = ["assign", "augassign", "expr", '"pass"']
    if "func" in context:
        alternatives.append('"return" (SP expr)?')
    if "loop" in context:
        alternatives += ['"break"', '"continue"']
    return " | ".join(alternatives)


def _blocks(max_depth: int) -> list[str]:
    rules = []
    for depth in range(max_depth):
        for context in _CONTEXTS:
            name = f"{depth}_{context}"
            compound = depth + 1 < max_depth
            rules.append(f"stmt_{name}: simple_{context}" + (f" | compound_{name}" if compound else ""))
            rules.append(f"body_{name}: NL{depth} stmt_{name} (NL{depth} stmt_{name})*")
            if not compound:
                continue
            inner = depth + 1
            loop = "funcloop" if "func" in context else "loop"
            rules.append(
                f"compound_{name}: "
                f'"def" SP NAME "(" params? ")" ":" body_{inner}_func'
                f' | "if" SP expr ":" body_{inner}_{context} (NL{depth} "elif" SP expr ":" body_{inner}_{context})*'
                f' (NL{depth} "else" ":" body_{inner}_{context})?'
                f' | "for" SP NAME SP "in" SP expr ":" body_{inner}_{loop}'
                f' | "while" SP expr ":" body_{inner}_{loop}'
            )
    return rules


def python_grammar(max_depth: int = 3) -> str:
    """A Lark grammar (llguidance dialect) for a subset of Python whose every complete sentence compiles.

    The subset: assignments and augmented assignments to names, subscripts and attributes;
    expressions (arithmetic, comparisons, `and` / `or` / `not`, calls, subscripts, attributes,
    lists, tuples, int and float literals, strings without escapes, `True` / `False` / `None`);
    `pass`; `def` with positional parameters; `if` / `elif` / `else`; `for ... in`; `while`;
    `return` only inside a function; `break` / `continue` only inside a loop. Four spaces per
    indentation level, at most `max_depth` levels (the top level counts as one); single spaces
    around operators are optional, after commas optional, around keywords required; no comments,
    no blank lines.

    The one compile-time error a context-free grammar cannot exclude is a repeated parameter name
    (`def f(a, a):`); `generate(..., python=True)` compiles what it returns and raises on it.

    Args:
        max_depth (`int`, defaults to 3): indentation levels (>= 1; 1 allows no compound statement).
    """
    if isinstance(max_depth, bool) or not isinstance(max_depth, int) or not 1 <= max_depth <= 8:
        raise ValueError(f"`max_depth` must be an integer in [1, 8], got {max_depth!r}")
    keywords = " | ".join(f'"{k}"' for k in keyword.kwlist)
    lines = [
        "start: stmt_0_plain (NL0 stmt_0_plain)* NL0?",
        *(f"simple_{context}: {_simple(context)}" for context in _CONTEXTS),
        *_blocks(max_depth),
        'target: NAME ("[" expr "]" | "." NAME)*',
        'assign: target SP? "=" SP? expr',
        "augassign: target SP? AUGOP SP? expr",
        'params: NAME ("," SP? NAME)*',
        'expr: and_test (SP "or" SP and_test)*',
        'and_test: not_test (SP "and" SP not_test)*',
        'not_test: "not" SP not_test | comparison',
        "comparison: arith (comp_op arith)*",
        'comp_op: SP? CMPOP SP? | SP "in" SP | SP "not" SP "in" SP | SP "is" SP | SP "is" SP "not" SP',
        'arith: term (SP? ("+" | "-") SP? term)*',
        'term: factor (SP? ("*" | "/" | "//" | "%") SP? factor)*',
        'factor: ("+" | "-") factor | power',
        'power: primary (SP? "**" SP? factor)?',
        # No trailer after a number: `1.x` reads as the float `1.` followed by a name.
        "primary: NUMBER | atom trailer*",
        'trailer: "(" arglist? ")" | "[" expr "]" | "." NAME',
        'arglist: expr ("," SP? expr)*',
        'atom: NAME | STRING | "(" arglist? ")" | "[" arglist? "]" | "True" | "False" | "None"',
        f"NAME: /[a-zA-Z_][a-zA-Z0-9_]*/ & ~({keywords})",
        r"NUMBER: /(0|[1-9][0-9]*)(\.[0-9]+)?/",
        r"""STRING: /"[^"\\\n]*"/ | /'[^'\\\n]*'/""",
        'CMPOP: "<" | ">" | "==" | ">=" | "<=" | "!="',
        'AUGOP: "+=" | "-=" | "*=" | "/="',
        'SP: " "',
        *(f"NL{depth}: /\\n {{{4 * depth}}}/" if depth else r"NL0: /\n/" for depth in range(max_depth)),
    ]
    return "\n".join(lines) + "\n"


__all__ = ["ARITHMETIC_GBNF", "python_grammar"]
