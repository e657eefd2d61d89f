"""The playbook: actions, rules and contact policy, from YAML to compiled rules.

A playbook is a YAML (or JSON) document checked against ``schemas/playbook.v1.json``;
every eligibility rule and value expression is a CEL expression (Common Expression
Language, through the ``common-expression-language`` package: no Python ``eval``),
compiled once per playbook version and tried once against ``pipeline.context.SAMPLE``,
so unknown variables, syntax errors and non-boolean rules are refused up front.
``load`` raises ``PlaybookError`` carrying every problem as (file, line, field, reason).

    >>> pb = load('''
    ... version: "1"
    ... actions:
    ...   - {id: hello, journey: welcome, channels: [email], content: t/hi,
    ...      eligible: "customer.events <= 1.0"}
    ... ''')
    >>> rule = pb.actions[0].eligible
    >>> (pb.version[:2], pb.actions[0].id, rule.execute({"customer": {"events": 1.0}}))
    ('1+', 'hello', True)
    >>> load('version: "1"\\nactions: []\\n', source="p.yaml")
    Traceback (most recent call last):
    ...
    pipeline.playbook.PlaybookError: p.yaml:2: actions: [] has less than 1 item
"""

from __future__ import annotations

import hashlib
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Final

import cel
import jsonschema_rs
import orjson
import yaml

import schemas
from pipeline.context import CONTEXT, SAMPLE, rule_types
from pipeline.rules import Native, compile_native

__all__ = [
    "DEFAULT_PATH",
    "ActionSpec",
    "Caps",
    "Playbook",
    "PlaybookError",
    "Problem",
    "QuietHours",
    "load",
    "load_file",
]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a playbook, located as precisely as the document allows."""

    source: str
    line: int | None
    field: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.field}: {self.reason}"


class PlaybookError(ValueError):
    """The playbook was refused; ``problems`` lists every reason (the old one stays)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True, slots=True)
class Caps:
    """Sends allowed in any rolling day and week (None: no cap)."""

    day: int | None = None
    week: int | None = None


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Local clock times between which the listed channels stay silent."""

    start: int  # minutes after midnight
    end: int
    default_timezone: str = "UTC"
    channels: frozenset[str] = frozenset({"email", "sms", "push"})

    def quiet(self, hour: int, minute: int) -> bool:
        t = hour * 60 + minute
        return (
            self.start <= t < self.end if self.start <= self.end else not self.end <= t < self.start
        )


@dataclass(frozen=True, slots=True)
class ActionSpec:
    id: str
    journey: str
    channels: tuple[str, ...]
    content: str
    eligible: Any  # cel.Program
    rule: str
    value: float
    value_expr: Any | None
    weight: float
    intent: str
    prior: float
    caps: Caps
    cooldown_s: float
    ttl_s: float
    suppress_after_conversion_s: float
    hourly_limit: int | None
    payload: tuple[str, ...]
    # the rules as native Python where they translate (pipeline.rules), else None
    native_eligible: Native | None = None
    native_value: Native | None = None


@dataclass(frozen=True, slots=True)
class Playbook:
    """A compiled playbook. ``version`` is the author's version plus a content hash."""

    version: str
    actions: tuple[ActionSpec, ...]
    channel_caps: Mapping[str, Caps] = field(default_factory=dict)
    dismiss_cooldown_s: float = 7 * 86400.0
    quiet_hours: QuietHours | None = None
    require_consent: frozenset[str] = frozenset({"sms", "push", "app"})
    exploration_rate: float = 0.0
    near_best: float = 0.8
    min_responses: int = 50
    control_share: float = 0.0
    control_salt: str = "baton"
    recheck_after_idle_s: tuple[float, ...] = ()
    parameters: Mapping[str, float] = field(default_factory=dict)
    # what the rules read: variable -> its fields (None: the whole variable). Only these
    # are converted to CEL values for a decision, most of whose cost that conversion is.
    reads: Mapping[str, frozenset[str] | None] = field(default_factory=dict)
    document: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def action(self, action_id: str) -> ActionSpec | None:
        """The action with this id, None if the playbook has none."""
        return next((a for a in self.actions if a.id == action_id), None)

    def to_json(self) -> bytes:
        """The document as published on the playbook topic."""
        return orjson.dumps(self.document, option=orjson.OPT_SORT_KEYS)


@cache
def _validator() -> Any:
    return jsonschema_rs.validator_for(schemas.load("playbook.v1"))


DEFAULT_PATH: Final = Path(__file__).with_name("default_playbook.yaml")


def load_file(path: str | Path, params: Mapping[str, float] | None = None) -> Playbook:
    """Read and compile a playbook file (YAML or JSON)."""
    return load(Path(path).read_text(encoding="utf-8"), source=str(path), params=params)


def load(
    text: str | bytes, source: str = "<playbook>", params: Mapping[str, float] | None = None
) -> Playbook:
    """Parse, validate and compile a playbook; ``PlaybookError`` lists what is wrong.

    ``params`` override the playbook's ``parameters`` (a worker's BATON_PLAYBOOK_PARAMS).
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise PlaybookError(
            [Problem(source, line, "(document)", str(exc).splitlines()[0])]
        ) from exc
    if not isinstance(doc, dict):
        raise PlaybookError([Problem(source, 1, "(document)", "a playbook is a mapping")])
    problems = [
        Problem(source, _line(node, e.instance_path), _field(e.instance_path), e.message)
        for e in _validator().iter_errors(doc)
    ]
    if problems:
        raise PlaybookError(problems)
    # numbers in rules are doubles: parameters too (a YAML 30 is an int)
    doc["parameters"] = {
        k: float(v) for k, v in {**doc.get("parameters", {}), **(params or {})}.items()
    }
    sample = {**SAMPLE, "params": doc.get("parameters", {})}
    c = _Compiler(node, source, problems, sample)
    actions = [_action(a, doc, c, i) for i, a in enumerate(doc["actions"])]
    recheck = [_recheck(x, c, i) for i, x in enumerate(doc.get("recheck_after_idle_s", ()))]
    _unique(doc, c)
    _zones(doc, c)
    if problems:
        raise PlaybookError(problems)
    return _playbook(doc, tuple(a for a in actions if a is not None), recheck)


def _field(path: Sequence[str | int]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(document)"


def _line(node: Any, path: Sequence[str | int]) -> int | None:
    """The line of the value at ``path`` in the composed YAML tree (1-based)."""
    for p in path:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == p), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(p, int) and p < len(node.value):
            node = node.value[p]
        else:
            node = None
        if node is None:
            return None
    return int(node.start_mark.line) + 1 if node is not None else None


@dataclass
class _Compiler:
    node: Any
    source: str
    problems: list[Problem]
    sample: Mapping[str, Any]

    @cached_property
    def types(self) -> dict[str, Any]:
        """The rule variables' CEL types, once per playbook (pipeline.rules)."""
        return rule_types(self.sample["params"])

    def native(self, expr: str, program: Any) -> Native | None:
        """The rule as native Python (``pipeline.rules``), if it translates and agrees
        with CEL on the sample customer."""
        fn = compile_native(expr, self.types)
        try:
            agrees = fn is not None and fn(self.sample) == program.execute(dict(self.sample))
        except Exception:  # the translation fails where CEL did not: CEL alone
            agrees = False
        return fn if agrees else None

    def bad(self, path: list[str | int], reason: str) -> None:
        self.problems.append(Problem(self.source, _line(self.node, path), _field(path), reason))

    def compile(self, expr: str, want: type, path: list[str | int]) -> Any | None:
        """A compiled CEL program, or None after recording why it is refused."""
        try:
            program = cel.compile(expr)
        except ValueError as exc:
            self.bad(path, f"not a valid CEL expression: {str(exc).splitlines()[0]}")
            return None
        unknown = sorted(set(program.variables()) - set(CONTEXT) - _bound(expr))
        if unknown:
            self.bad(path, f"unknown variable(s) {', '.join(unknown)}; known: {', '.join(CONTEXT)}")
            return None
        try:
            result = program.execute(dict(self.sample))
        except Exception as exc:  # the CEL runtime raises several types; report any
            self.bad(path, f"fails on a sample customer: {exc}")
            return None
        if not (isinstance(result, bool) if want is bool else _number(result)):
            self.bad(path, f"must yield a {'bool' if want is bool else 'number'}, got {result!r}")
            return None
        return program


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _bound(expr: str) -> set[str]:
    """Names bound by comprehension macros (``x`` in ``l.exists(x, ...)``), not variables."""
    return set(re.findall(r"\.(?:all|exists|exists_one|map|filter)\(\s*([A-Za-z_]\w*)\s*,", expr))


def _recheck(x: float | str, c: _Compiler, i: int) -> float:
    if not isinstance(x, str):
        return float(x)
    program = c.compile(x, float, ["recheck_after_idle_s", i])
    value = float(program.execute({"params": c.sample["params"]})) if program else 0.0
    if program is not None and value <= 0:
        c.bad(["recheck_after_idle_s", i], f"must be positive, got {value}")
    return value


def _action(
    a: Mapping[str, Any], doc: Mapping[str, Any], c: _Compiler, i: int
) -> ActionSpec | None:
    d = doc.get("defaults") or {}
    at: list[str | int] = ["actions", i]
    rule = c.compile(a["eligible"], bool, [*at, "eligible"])
    vexpr = None
    if "value_expr" in a:
        vexpr = c.compile(a["value_expr"], float, [*at, "value_expr"])
    if rule is None or ("value_expr" in a and vexpr is None):
        return None
    caps = a.get("caps", d.get("caps", {}))
    return ActionSpec(
        id=a["id"],
        journey=a["journey"],
        channels=tuple(a["channels"]),
        content=a["content"],
        eligible=rule,
        rule=a["eligible"],
        value=float(a.get("value", d.get("value", 1.0))),
        value_expr=vexpr,
        weight=float(a.get("weight", d.get("weight", 1.0))),
        intent=a.get("intent", "none"),
        prior=float(a.get("prior", d.get("prior", 0.05))),
        caps=Caps(caps.get("day"), caps.get("week")),
        cooldown_s=float(a.get("cooldown_s", d.get("cooldown_s", 86400.0))),
        ttl_s=float(a.get("ttl_s", d.get("ttl_s", 86400.0))),
        suppress_after_conversion_s=float(
            a.get("suppress_after_conversion_s", d.get("suppress_after_conversion_s", 86400.0))
        ),
        hourly_limit=a.get("hourly_limit"),
        payload=tuple(a.get("payload", ())),
        native_eligible=c.native(a["eligible"], rule),
        native_value=c.native(a["value_expr"], vexpr) if vexpr is not None else None,
    )


def _unique(doc: Mapping[str, Any], c: _Compiler) -> None:
    seen: set[str] = set()
    for i, a in enumerate(doc["actions"]):
        if a["id"] in seen:
            c.bad(["actions", i, "id"], "duplicate action id")
        seen.add(a["id"])


def _zones(doc: Mapping[str, Any], c: _Compiler) -> None:
    zone = doc.get("contact_policy", {}).get("quiet_hours", {}).get("default_timezone")
    if zone is not None and zone not in zoneinfo.available_timezones():
        c.bad(["contact_policy", "quiet_hours", "default_timezone"], f"unknown time zone {zone!r}")


def _reads(actions: Sequence[ActionSpec]) -> dict[str, frozenset[str] | None]:
    """Variables and fields the rules read, from the compiled programs and their text.

    >>> pb = load('{version: "1", actions: [{id: a, journey: j, channels: [web], content: c,'
    ...           ' eligible: "cart.value > 1.0 && has(f.nps) && size(consent) > 0"}]}')
    >>> sorted((k, sorted(v) if v is not None else None) for k, v in pb.reads.items())
    [('cart', ['value']), ('consent', None), ('f', ['nps'])]
    """
    out: dict[str, frozenset[str] | None] = {}
    for a in actions:
        for prog in (a.eligible, a.value_expr):
            if prog is None:
                continue
            for var in set(prog.variables()) & set(CONTEXT):
                fields = re.findall(rf"\b{var}\.(\w+)", prog.source)
                whole = len(re.findall(rf"\b{var}\b(?!\.\w)", prog.source)) > 0
                if whole or not fields:
                    out[var] = None
                elif var not in out or out[var] is not None:
                    out[var] = frozenset(out.get(var) or ()) | frozenset(fields)
    return out


def _clock(text: str) -> int:
    h, m = text.split(":")
    return int(h) * 60 + int(m)


def _playbook(
    doc: Mapping[str, Any], actions: tuple[ActionSpec, ...], recheck: list[float]
) -> Playbook:
    cp, arb, ctl = (
        doc.get("contact_policy", {}),
        doc.get("arbitration", {}),
        doc.get("control_group", {}),
    )
    qh = cp.get("quiet_hours")
    quiet = None
    if qh:
        quiet = QuietHours(
            _clock(qh["start"]),
            _clock(qh["end"]),
            qh.get("default_timezone", "UTC"),
            frozenset(qh.get("channels", ("email", "sms", "push"))),
        )
    digest = hashlib.blake2b(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS), digest_size=4)
    return Playbook(
        version=f"{doc['version']}+{digest.hexdigest()}",
        actions=actions,
        channel_caps={
            ch: Caps(c.get("day"), c.get("week")) for ch, c in cp.get("channel_caps", {}).items()
        },
        dismiss_cooldown_s=float(cp.get("dismiss_cooldown_s", 7 * 86400.0)),
        quiet_hours=quiet,
        require_consent=frozenset(cp.get("require_consent", ("sms", "push", "app"))),
        exploration_rate=float(arb.get("exploration_rate", 0.0)),
        near_best=float(arb.get("near_best", 0.8)),
        min_responses=int(arb.get("min_responses", 50)),
        control_share=float(ctl.get("share", 0.0)),
        control_salt=str(ctl.get("salt", "baton")),
        recheck_after_idle_s=tuple(sorted(set(recheck))),
        parameters=dict(doc.get("parameters", {})),
        reads=_reads(actions),
        document=doc,
    )
