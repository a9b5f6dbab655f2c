"""Compile-time bounds on a user's CEL expression, checked before the CEL library sees it.

Evaluation cost grows with the product of the comprehensions nested in one another (each `map`,
`filter`, `all`, `exists`, `exists_one` runs its body once per element), so nesting, their number,
literal sizes, AST depth and size are bounded here, from a small parser of the CEL grammar. The
parser recurses only where the expression nests, and stops at the depth limit, so a hostile
expression costs it microseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Macros and extension functions that run a body once per element of their target.
COMPREHENSIONS = frozenset(
    {
        "all",
        "exists",
        "exists_one",
        "existsOne",
        "map",
        "filter",
        "sortBy",
        "transformList",
        "transformMap",
        "transformMapEntry",
    }
)

_RELATIONS = ("<", "<=", ">", ">=", "==", "!=", "in")
_TOKEN = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*)
    |(?P<string>(?:[rR][bB]?|[bB][rR]?)?(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''
        |"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'))
    |(?P<number>0[xX][0-9a-fA-F]+[uU]?|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?[uU]?)
    |(?P<ident>[_a-zA-Z][_a-zA-Z0-9]*)
    |(?P<op>==|!=|<=|>=|&&|\|\||[<>+\-*/%!?:.,()\[\]{}])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Limits:
    """The bounds every expression must stay within."""

    max_chars: int = 1000
    max_depth: int = 32
    max_nodes: int = 300
    max_comprehensions: int = 4
    max_comprehension_nesting: int = 2
    max_literal_items: int = 64


LIMITS = Limits()


@dataclass(frozen=True)
class Shape:
    """What the checker measured: the figures the limits apply to."""

    depth: int
    nodes: int
    comprehensions: int
    comprehension_nesting: int
    largest_literal: int


class LimitExceeded(ValueError):
    """The expression is well formed but over a limit; the message names the limit."""


class GrammarError(ValueError):
    """The checker could not parse the expression (the CEL compiler says why)."""


def _tokens(source: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(source):
        match = _TOKEN.match(source, position)
        if match is None:
            raise GrammarError(f"unexpected character at {position + 1}")
        position = match.end()
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append((kind, match.group()))
    tokens.append(("end", ""))
    return tokens


# A sub-tree's figures: (AST depth, comprehension nesting).
_Sub = tuple[int, int]


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], limits: Limits) -> None:
        self.tokens = tokens
        self.index = 0
        self.limits = limits
        self.nesting = 0
        self.nodes = 0
        self.comprehensions = 0
        self.largest_literal = 0

    def peek(self) -> str:
        kind, text = self.tokens[self.index]
        return text if kind in ("op", "ident") else kind

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.index]
        if token[0] != "end":
            self.index += 1
        return token

    def expect(self, text: str) -> None:
        if self.take()[1] != text:
            raise GrammarError(f"expected {text!r}")

    def node(self, depth: int, nesting: int, count: int = 1) -> _Sub:
        self.nodes += count
        if self.nodes > self.limits.max_nodes:
            raise LimitExceeded(
                f"the expression has more than {self.limits.max_nodes} parts (the size limit)"
            )
        if depth > self.limits.max_depth:
            raise LimitExceeded(f"the expression nests deeper than {self.limits.max_depth} levels")
        return depth, nesting

    def expr(self) -> _Sub:
        self.nesting += 1
        if self.nesting > self.limits.max_depth:
            raise LimitExceeded(f"the expression nests deeper than {self.limits.max_depth} levels")
        condition = self.binary(0)
        if self.peek() == "?":
            self.take()
            then = self.binary(0)
            self.expect(":")
            otherwise = self.expr()
            parts = (condition, then, otherwise)
            condition = self.node(1 + max(p[0] for p in parts), max(p[1] for p in parts))
        self.nesting -= 1
        return condition

    _LEVELS: tuple[tuple[str, ...], ...] = (
        ("||",),
        ("&&",),
        _RELATIONS,
        ("+", "-"),
        ("*", "/", "%"),
    )

    def binary(self, level: int) -> _Sub:
        if level == len(self._LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek() in self._LEVELS[level]:
            self.take()
            right = self.binary(level + 1)
            left = self.node(1 + max(left[0], right[0]), max(left[1], right[1]))
        return left

    def unary(self) -> _Sub:
        operators = 0
        while self.peek() in ("!", "-"):
            self.take()
            operators += 1
        depth, nesting = self.member()
        if operators:
            return self.node(depth + operators, nesting, operators)
        return depth, nesting

    def arguments(self, close: str) -> list[_Sub]:
        items: list[_Sub] = []
        while self.peek() != close:
            items.append(self.expr())
            if self.peek() != ",":
                break
            self.take()
        self.expect(close)
        return items

    def member(self) -> _Sub:
        depth, nesting = self.primary()
        while True:
            token = self.peek()
            if token == ".":
                self.take()
                if self.peek() == "?":
                    self.take()
                kind, name = self.take()
                if kind != "ident":
                    raise GrammarError("expected a field or method name after '.'")
                if self.peek() != "(":
                    depth, nesting = self.node(depth + 1, nesting)
                    continue
                self.take()
                args = self.arguments(")")
                inner = max((a[1] for a in args), default=0)
                depth = 1 + max([depth, *(a[0] for a in args)])
                if name in COMPREHENSIONS:
                    nesting = max(nesting, inner + 1)
                    self.comprehension(nesting)
                else:
                    nesting = max(nesting, inner)
                depth, nesting = self.node(depth, nesting)
            elif token == "[":
                self.take()
                if self.peek() == "?":
                    self.take()
                index = self.expr()
                self.expect("]")
                depth, nesting = self.node(1 + max(depth, index[0]), max(nesting, index[1]))
            elif token == "{" and self.tokens[self.index - 1][0] == "ident":
                self.take()  # a message literal: Type{field: value, ...}
                fields = self.entries("}", keyed_by_name=True)
                depth, nesting = self.node(
                    1 + max([depth, *(f[0] for f in fields)]),
                    max([nesting, *(f[1] for f in fields)]),
                )
            else:
                return depth, nesting

    def comprehension(self, nesting: int) -> None:
        self.comprehensions += 1
        if nesting > self.limits.max_comprehension_nesting:
            raise LimitExceeded(
                "comprehensions (map, filter, all, exists, exists_one) may nest at most "
                f"{self.limits.max_comprehension_nesting} deep inside one another"
            )
        if self.comprehensions > self.limits.max_comprehensions:
            raise LimitExceeded(
                f"the expression may hold at most {self.limits.max_comprehensions} "
                "comprehensions (map, filter, all, exists, exists_one)"
            )

    def entries(self, close: str, *, keyed_by_name: bool = False) -> list[_Sub]:
        values: list[_Sub] = []
        while self.peek() != close:
            if keyed_by_name:
                if self.take()[0] != "ident":
                    raise GrammarError("expected a field name")
            else:
                values.append(self.expr())
            self.expect(":")
            values.append(self.expr())
            if self.peek() != ",":
                break
            self.take()
        self.expect(close)
        self.literal(len(values) // (1 if keyed_by_name else 2))
        return values

    def literal(self, items: int) -> None:
        self.largest_literal = max(self.largest_literal, items)
        if items > self.limits.max_literal_items:
            raise LimitExceeded(
                f"a list or map literal may hold at most {self.limits.max_literal_items} items"
            )

    def primary(self) -> _Sub:
        kind, text = self.take()
        if text == "." and kind == "op":
            kind, text = self.take()
            if kind != "ident":
                raise GrammarError("expected a name after a leading '.'")
        if kind == "ident":
            if self.peek() == "(":
                self.take()
                args = self.arguments(")")
                return self.node(
                    1 + max((a[0] for a in args), default=0), max((a[1] for a in args), default=0)
                )
            return self.node(1, 0)
        if kind in ("number", "string"):
            return self.node(1, 0)
        if text == "(":
            inner = self.expr()
            self.expect(")")
            return inner
        if text == "[":
            items = self.arguments("]")
            self.literal(len(items))
            return self.node(
                1 + max((i[0] for i in items), default=0), max((i[1] for i in items), default=0)
            )
        if text == "{":
            values = self.entries("}")
            return self.node(
                1 + max((v[0] for v in values), default=0), max((v[1] for v in values), default=0)
            )
        raise GrammarError(f"unexpected {text or 'end of expression'!r}")


def check_limits(source: str, limits: Limits = LIMITS) -> Shape:
    """Measure `source` and raise LimitExceeded (naming the limit) when it is over one, or
    GrammarError when it is not CEL the checker can read."""
    if len(source) > limits.max_chars:
        raise LimitExceeded(f"the expression may be at most {limits.max_chars} characters long")
    parser = _Parser(_tokens(source), limits)
    depth, nesting = parser.expr()
    if parser.peek() != "end":
        raise GrammarError(f"unexpected {parser.take()[1]!r}")
    return Shape(
        depth=depth,
        nodes=parser.nodes,
        comprehensions=parser.comprehensions,
        comprehension_nesting=nesting,
        largest_literal=parser.largest_literal,
    )
