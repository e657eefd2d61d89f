"""The syntax of the CEL subset that ``pipeline.rules`` translates: tokens and a parser.

``Parser(tokens(expr)).expr()`` gives a tree of tuples (``("lit", v)``, ``("var", n)``,
``("sel", node, field)``, ``("bin", op, a, b)``, ...); anything outside the subset raises
``Unsupported``, and the rule is left to CEL itself.

    >>> Parser(tokens("cart.items > 0.0")).expr()
    ('bin', '>', ('sel', ('var', 'cart'), 'items'), ('lit', 0.0))
"""

from __future__ import annotations

import re
from typing import Any, Final

__all__ = ["Parser", "Unsupported", "tokens"]


class Unsupported(Exception):
    """The expression is outside the translated subset: CEL runs it."""


# -- tokens -----------------------------------------------------------------------------------
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<num>\d+\.\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\d+(?![\w.]))
     |(?P<str>'[^'\\\n]*'|"[^"\\\n]*")
     |(?P<name>[A-Za-z_]\w*)
     |(?P<op>&&|\|\||==|!=|<=|>=|[<>!+\-*/%?:.,()\[\]])
    )""",
    re.VERBOSE,
)


def tokens(expr: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos, end = 0, len(expr.rstrip())
    while pos < end:
        m = _TOKEN.match(expr, pos)
        if m is None or m.end() == pos:
            raise Unsupported(expr[pos:])
        kind, text = m.lastgroup, m.group(m.lastgroup or "")
        if kind == "num":
            out.append(("lit", float(text)) if re.search(r"[.eE]", text) else ("lit", int(text)))
        elif kind == "str":
            out.append(("lit", text[1:-1]))
        elif kind == "name" and text in ("true", "false"):
            out.append(("lit", text == "true"))
        elif kind == "name":
            out.append(("in", None) if text == "in" else ("name", text))
        else:
            out.append(("op", text))
        pos = m.end()
    return out


# -- parse ------------------------------------------------------------------------------------
_BINARY: Final = {"||": 1, "&&": 2, "+": 4, "-": 4, "*": 5, "/": 5, "%": 5} | {
    op: 3 for op in ("==", "!=", "<", "<=", ">", ">=", "in")
}


class Parser:
    """CEL's grammar (precedence climbing) for the tokens ``tokens`` knows."""

    def __init__(self, tokens: list[tuple[str, Any]]) -> None:
        self.toks, self.i = tokens, 0

    def peek(self) -> tuple[str, Any] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, Any]:
        tok = self.peek()
        if tok is None:
            raise Unsupported("unexpected end")
        self.i += 1
        return tok

    def expect(self, op: str | None) -> None:
        tok = self.peek()
        if (op is None and tok is not None) or (op is not None and tok != ("op", op)):
            raise Unsupported(f"expected {op!r}")
        if op is not None:
            self.i += 1

    def expr(self) -> tuple[Any, ...]:
        cond = self.binary(1)
        if self.peek() != ("op", "?"):
            return cond
        self.i += 1
        yes = self.expr()
        self.expect(":")
        return ("cond", cond, yes, self.expr())

    def binary(self, level: int) -> tuple[Any, ...]:
        left = self.unary()
        while True:
            tok = self.peek()
            op = "in" if tok == ("in", None) else (tok[1] if tok and tok[0] == "op" else None)
            prec = _BINARY.get(op) if op is not None else None
            if prec is None or prec < level:
                return left
            self.i += 1
            left = ("bin", op, left, self.binary(prec + 1))

    def unary(self) -> tuple[Any, ...]:
        if self.peek() in (("op", "!"), ("op", "-")):
            return ("un", self.take()[1], self.unary())
        return self.postfix(self.primary())

    def primary(self) -> tuple[Any, ...]:
        kind, value = self.take()
        if kind == "lit":
            return ("lit", value)
        if kind == "name" and self.peek() == ("op", "("):
            self.i += 1
            return ("call", value, None, self.args(")"))
        if kind == "name":
            return ("var", value)
        if (kind, value) == ("op", "("):
            inner = self.expr()
            self.expect(")")
            return inner
        if (kind, value) == ("op", "["):
            return ("list", self.args("]"))
        raise Unsupported(str(value))

    def args(self, close: str) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        while self.peek() != ("op", close):
            out.append(self.expr())
            if self.peek() != ("op", close):
                self.expect(",")
        self.i += 1
        return out

    def postfix(self, node: tuple[Any, ...]) -> tuple[Any, ...]:
        while True:
            if self.peek() == ("op", "."):
                self.i += 1
                kind, name = self.take()
                if kind != "name":
                    raise Unsupported("field")
                if self.peek() == ("op", "("):
                    self.i += 1
                    node = ("call", name, node, self.args(")"))
                else:
                    node = ("sel", node, name)
            elif self.peek() == ("op", "["):
                self.i += 1
                key = self.expr()
                self.expect("]")
                node = (
                    ("sel", node, key[1])
                    if key[0] == "lit" and isinstance(key[1], str)
                    else ("idx",)
                )
            else:
                return node
