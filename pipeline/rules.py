"""Playbook rules as native Python: the typed subset of CEL the playbooks use, compiled.

A CEL program reads its variables as CEL values, and converting the rule context to
them cost about 30 µs per decision (a microsecond per value), ten times what running
the eleven default rules costs. So each rule is also translated, once, into a tree of
Python closures over the plain context dict (no source text is generated or
evaluated), and a decision converts the context only when some rule could not be
translated or its translation raised.

The translation is checked against the context's types (``schema``: every variable and
field the rule context always has, with its CEL type) and accepts only operations whose
Python meaning is CEL's meaning for those types: ``&&``, ``||``, ``!``, ``?:`` on bools;
``+ - * /`` on doubles, ``+`` on strings; ``== != < <= > >=`` on two numbers (int or
double, as CEL compares them), two strings or two bools; ``in`` a list literal or a
map; ``has()``, ``size()``, ``double()``, ``startsWith``, ``endsWith``, ``contains``.
Anything else (int arithmetic, which CEL checks for overflow; ``%``; comprehensions;
values of maps whose fields are not known, like ``consent`` or ``attributes``) is left
to CEL: ``compile_native`` returns None. A translated rule that raises (a feature
absent from ``f``, a division by zero) is run again by CEL, whose result (or error)
stands, so CEL's rules for errors (``false && error`` is false) hold too. A test
compares both on every shipped rule and on generated contexts.

    >>> ctx = {"cart": {"items": 2.0, "idle_min": 45.0}, "params": {"wait": 30.0}}
    >>> rule = compile_native("cart.items > 0.0 && cart.idle_min >= params.wait", schema(ctx, {}))
    >>> rule(ctx) if rule else None
    True
    >>> compile_native("cart.items % 2.0 == 0.0", schema(ctx, {})) is None
    True
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any, Final

from pipeline.cel_syntax import Parser, Unsupported, tokens

__all__ = ["Native", "compile_native", "schema"]

Native = Callable[[Mapping[str, Any]], Any]
# a CEL type: "double", "int", "string", "bool", "dyn", ("list", elem) or a map: a dict of
# its always-present fields (None: fields not known, values dyn)
Type = Any
DYN: Final = "dyn"


def schema(sample: Mapping[str, Any], always: Mapping[str, Mapping[str, Type]]) -> dict[str, Type]:
    """The CEL types of a context like ``sample``; ``always`` overrides the fields of a
    map whose sample holds only some of them (``f``: any feature may be absent).

    >>> schema({"cart": {"items": 1.0}, "trigger": "event", "consent": {}}, {})
    {'cart': {'items': 'double'}, 'trigger': 'string', 'consent': None}
    """
    return {k: dict(always[k]) if k in always else _type_of(v) for k, v in sample.items()}


def _type_of(v: Any) -> Type:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "double"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dict):
        return {k: _type_of(x) for k, x in v.items()} if v else None
    return DYN


def compile_native(expr: str, types: Mapping[str, Type]) -> Native | None:
    """A Python function of the context computing ``expr`` as CEL does, or None when the
    expression is outside the subset (see the module docstring)."""
    try:
        parser = Parser(tokens(expr))
        node = parser.expr()
        parser.expect(None)
        fn, _ = _Emitter(types).emit(node)
    except Unsupported:
        return None
    return fn


def _raise_nan() -> bool:
    raise ValueError("CEL does not order NaN")


def _nan(a: float, b: float) -> bool:
    return (a != a or b != b) and _raise_nan()


# CEL orders numbers as Python does, except that ordering NaN is an error
_ORDER: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "<": lambda a, b: a < b or _nan(a, b),
    "<=": lambda a, b: a <= b or _nan(a, b),
    ">": lambda a, b: a > b or _nan(a, b),
    ">=": lambda a, b: a >= b or _nan(a, b),
}
_COMPARE: Final = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_ARITHMETIC: Final = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}


# -- type and emit ----------------------------------------------------------------------------
_NUM: Final = ("int", "double")
_ORDERED: Final = {"int": "num", "double": "num", "string": "string", "bool": "bool"}


def _kind(t: Type) -> str | None:
    """What a value of type ``t`` compares with: numbers with numbers (int or double,
    as CEL does), strings with strings, bools with bools; None: not compared here."""
    return _ORDERED.get(t) if isinstance(t, str) else None


class _Emitter:
    """A closure (context -> value) and the CEL type of each node; raises Unsupported
    outside the subset. Closures, not generated source: no ``eval`` of rule text."""

    def __init__(self, types: Mapping[str, Type]) -> None:
        self.types = types

    def emit(self, node: tuple[Any, ...]) -> tuple[Native, Type]:
        method = getattr(self, f"_{node[0]}", None)
        if method is None:
            raise Unsupported(node[0])
        fn, typ = method(*node[1:])
        return fn, typ

    def _lit(self, value: Any) -> tuple[Native, Type]:
        return (lambda c: value), _type_of(value)

    def _var(self, name: str) -> tuple[Native, Type]:
        if name not in self.types:
            raise Unsupported(name)
        return (lambda c: c[name]), self.types[name]

    def _sel(self, target: tuple[Any, ...], field: str) -> tuple[Native, Type]:
        fn, typ = self.emit(target)
        if not isinstance(typ, dict) or field not in typ:
            raise Unsupported(field)  # a map of unknown fields: its values are dyn
        if target[0] == "var":  # the common ``cart.items``: one call, not two
            name = target[1]
            return (lambda c: c[name][field]), typ[field]
        return (lambda c: fn(c)[field]), typ[field]

    def _un(self, op: str, operand: tuple[Any, ...]) -> tuple[Native, Type]:
        fn, typ = self.emit(operand)
        if op == "!" and typ == "bool":
            return (lambda c: not fn(c)), "bool"
        if op == "-" and typ == "double":
            return (lambda c: -fn(c)), "double"
        raise Unsupported(op)

    def _bin(self, op: str, left: tuple[Any, ...], right: tuple[Any, ...]) -> tuple[Native, Type]:
        (lf, lt), (rf, rt) = self.emit(left), self.emit(right)
        if op == "&&" and lt == rt == "bool":
            return (lambda c: lf(c) and rf(c)), "bool"
        if op == "||" and lt == rt == "bool":
            return (lambda c: lf(c) or rf(c)), "bool"
        if op in _COMPARE and _kind(lt) == _kind(rt) is not None:
            direct = _read_vs_literal(op, left, right, _kind(lt) == "num")
            if direct is not None:
                return direct, "bool"
            cmp = _ORDER[op] if op in _ORDER and _kind(lt) == "num" else _COMPARE[op]
            return _pair(cmp, left, lf, right, rf), "bool"
        if op in _ARITHMETIC and lt == rt == "double":
            return _pair(_ARITHMETIC[op], left, lf, right, rf), "double"
        if op == "+" and lt == rt == "string":
            return _pair(operator.add, left, lf, right, rf), "string"
        if op == "in" and self._in(lt, rt):
            return _pair(lambda a, b: a in b, left, lf, right, rf), "bool"
        raise Unsupported(op)

    @staticmethod
    def _in(lt: Type, rt: Type) -> bool:
        if isinstance(rt, tuple):  # a list literal of comparable values
            return _kind(rt[1]) == _kind(lt) is not None
        return (isinstance(rt, dict) or rt is None) and lt == "string"  # a map's keys

    def _list(self, items: list[tuple[Any, ...]]) -> tuple[Native, Type]:
        emitted = [self.emit(i) for i in items]
        kinds = {_kind(t) for _, t in emitted}  # [1, 2.0] is a list of numbers
        if len(kinds) != 1 or None in kinds:
            raise Unsupported("list")
        fns = [f for f, _ in emitted]
        return (lambda c: tuple(f(c) for f in fns)), ("list", emitted[0][1])

    def _cond(
        self, c: tuple[Any, ...], a: tuple[Any, ...], b: tuple[Any, ...]
    ) -> tuple[Native, Type]:
        (cf, ct), (af, at), (bf, bt) = self.emit(c), self.emit(a), self.emit(b)
        if ct != "bool" or at != bt or not isinstance(at, str) or at == DYN:
            raise Unsupported("?:")
        return (lambda x: af(x) if cf(x) else bf(x)), at

    def _call(self, name: str, target: Any, args: list[tuple[Any, ...]]) -> tuple[Native, Type]:
        if name == "has" and target is None and len(args) == 1 and args[0][0] == "sel":
            mf, mt = self.emit(args[0][1])
            key = args[0][2]
            if isinstance(mt, dict) or mt is None:
                return (lambda c: key in mf(c)), "bool"
        if name in ("size", "double") and target is not None and not args:
            target, args = None, [target]
        if name == "size" and target is None and len(args) == 1:
            f, typ = self.emit(args[0])
            if typ == "string":
                return (lambda c: len(f(c))), "int"
        if name == "double" and target is None and len(args) == 1:
            f, typ = self.emit(args[0])
            if typ in _NUM:
                return (lambda c: float(f(c))), "double"
        if name in _STRING_METHODS and target is not None and len(args) == 1:
            (tf, tt), (af, at) = self.emit(target), self.emit(args[0])
            if tt == at == "string":
                method = _STRING_METHODS[name]
                return (lambda c: method(tf(c), af(c))), "bool"
        raise Unsupported(name)


_STRING_METHODS: Final[dict[str, Callable[[str, str], bool]]] = {
    "startsWith": str.startswith,
    "endsWith": str.endswith,
    "contains": lambda s, sub: sub in s,
}


# ``x OP v`` for a value read from the context and a literal ``v``, as one closure (the
# rules' commonest shape: ``cart.items > 0.0``) instead of three calls. Numbers: when
# the comparison is false, a NaN read raises, as in ``_ORDER``. Keyed by (operator,
# ordered numbers); each maker takes the variable's name, the field (or None) and ``v``.
_Maker = Callable[[str, Any, Any], Native]
_READ_VS_LITERAL: Final[dict[tuple[str, bool], tuple[_Maker, _Maker]]] = {
    ("==", False): (
        lambda n, f, v: lambda c: c[n] == v,
        lambda n, f, v: lambda c: c[n][f] == v,
    ),
    ("!=", False): (
        lambda n, f, v: lambda c: c[n] != v,
        lambda n, f, v: lambda c: c[n][f] != v,
    ),
    ("<", False): (
        lambda n, f, v: lambda c: c[n] < v,
        lambda n, f, v: lambda c: c[n][f] < v,
    ),
    ("<=", False): (
        lambda n, f, v: lambda c: c[n] <= v,
        lambda n, f, v: lambda c: c[n][f] <= v,
    ),
    (">", False): (
        lambda n, f, v: lambda c: c[n] > v,
        lambda n, f, v: lambda c: c[n][f] > v,
    ),
    (">=", False): (
        lambda n, f, v: lambda c: c[n] >= v,
        lambda n, f, v: lambda c: c[n][f] >= v,
    ),
    ("<", True): (
        lambda n, f, v: lambda c: (x := c[n]) < v or (x != x and _raise_nan()),
        lambda n, f, v: lambda c: (x := c[n][f]) < v or (x != x and _raise_nan()),
    ),
    ("<=", True): (
        lambda n, f, v: lambda c: (x := c[n]) <= v or (x != x and _raise_nan()),
        lambda n, f, v: lambda c: (x := c[n][f]) <= v or (x != x and _raise_nan()),
    ),
    (">", True): (
        lambda n, f, v: lambda c: (x := c[n]) > v or (x != x and _raise_nan()),
        lambda n, f, v: lambda c: (x := c[n][f]) > v or (x != x and _raise_nan()),
    ),
    (">=", True): (
        lambda n, f, v: lambda c: (x := c[n]) >= v or (x != x and _raise_nan()),
        lambda n, f, v: lambda c: (x := c[n][f]) >= v or (x != x and _raise_nan()),
    ),
}


def _read_vs_literal(
    op: str, left: tuple[Any, ...], right: tuple[Any, ...], numeric: bool
) -> Native | None:
    """The one-closure form of ``var OP lit`` or ``var.field OP lit``, if it is one."""
    if right[0] != "lit" or right[1] != right[1]:  # (a NaN literal keeps the general form)
        return None
    plain, field = _READ_VS_LITERAL[op, numeric and op in _ORDER]
    if left[0] == "var":
        return plain(left[1], None, right[1])
    if left[0] == "sel" and left[1][0] == "var":
        return field(left[1][1], left[2], right[1])
    return None


def _pair(
    op: Callable[[Any, Any], Any],
    left: tuple[Any, ...],
    lf: Native,
    right: tuple[Any, ...],
    rf: Native,
) -> Native:
    """``op(left, right)``, with a literal side taken as a constant (one call fewer)."""
    if right[0] == "lit":
        value = right[1]
        return lambda c: op(lf(c), value)
    if left[0] == "lit":
        value = left[1]
        return lambda c: op(value, rf(c))
    return lambda c: op(lf(c), rf(c))
