"""Every name a pipeline goes by, in one spelling.

A pipeline is named in MLflow (its run name), in ``results`` tables and files, by the
verdict and the report, and by a user who pastes a name back into ``labels -p``. Spelled
in several ways (parameters in file order or sorted, a tuple as ``(2, 6)`` or ``[2, 6]``,
a dataset chain joined by ``+`` or ``>``), two names of one pipeline compare unequal and
a name copied from one command is refused by another. This module is the one place a
name is produced (``component_label``, ``chain_label``, ``pipeline_label``) and the one
place any spelling of one is read back to it (``canonical``).

The canonical spelling::

    component  plugin[key=value,key=value]  its parameters sorted by key, the runner's
               settings of an encoder (``symmetry*``) after them, no space between
               parameters; a component without parameters is its plugin alone
    chain      dataset > transform > transform
    pipeline   chain / encoder / reducer / clusterer, and `` / seed=N`` for a combination

A value is written:

- a string as it is (``method=minmax``, ``path=/data/frdeep/images``), unless it would
  read as something else: empty, a space at an end, a character outside print, one of
  ``,[](){}'"``, or the spelling of a number, ``True``, ``False`` or ``None``; then in
  double quotes, with JSON's escapes (``select="1,2"``, ``tag="10"``);
- an integer as Python writes it, a float as Python's ``repr`` (``1e-05``, ``0.5``);
- ``True``, ``False`` and ``None`` as Python writes them;
- a list or a tuple as ``[a, b]`` (a space after each comma: a value, not a parameter);
- a mapping as ``{key: value, key: value}``, sorted by key.

``canonical`` reads any spelling: parameters in any order, spaces anywhere between
tokens, a tuple's parentheses, single or double quotes, JSON's ``null``, ``true`` and
``false``, transforms joined by ``+`` or ``>``. Text it cannot read (a fragment with an
unclosed bracket) comes back with its runs of spaces made one, so that a fragment can
still be looked for in canonical names.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from itertools import pairwise
from numbers import Integral, Real
from typing import Any, NamedTuple

from clustergrid.symmetry import KEYS as RUNNER_KEYS

#: between the dataset and each transform of a chain
CHAIN = " > "
#: between the parts of a pipeline
PARTS = " / "

_OPEN, _CLOSE = "[({", "])}"
#: a quote opens a string only at the start of a value (``o'brien`` is a plain string)
_QUOTE_AFTER = _OPEN + ",=:/>+"
_INTEGER = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?|[+-]?(nan|inf|infinity)",
                    re.IGNORECASE)
#: Python's and JSON's spellings of the constants (``none`` is a plain string: a plugin)
_CONSTANTS = {"None": "None", "null": "None", "True": "True", "true": "True",
              "False": "False", "false": "False"}
_SPECIAL = set(",[](){}'\"")
_SEED = re.compile(r"seed\s*=\s*([+-]?\d+)")


# Producing names ------------------------------------------------------------------------

def value_text(value: Any) -> str:
    """A parameter value in its canonical spelling (see the module's docstring)."""
    if value is None or isinstance(value, bool):
        return str(value)
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        return repr(float(value))
    if isinstance(value, str):
        return _string_text(value)
    if isinstance(value, Mapping):
        items = sorted((value_text(key), value_text(item)) for key, item in value.items())
        return "{" + ", ".join(f"{key}: {item}" for key, item in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(value_text(item) for item in value) + "]"
    if isinstance(value, set | frozenset):
        return "[" + ", ".join(sorted(value_text(item) for item in value)) + "]"
    return _string_text(str(value))


def component_label(plugin: str, params: Iterable[tuple[str, Any]]) -> str:
    """``plugin[key=value,...]``: ``params`` (the component's parameters and the runner's
    settings of it, as pairs) sorted, each value in its canonical spelling."""
    return _component(plugin, [(key, value_text(value)) for key, value in params])


def label_of_texts(plugin: str, params: Iterable[tuple[str, str]]) -> str:
    """``component_label`` of parameters whose values are text in any spelling (MLflow's
    params: ``[64, 32]``, ``('g', 'r')``, ``minmax``)."""
    return _component(plugin, [(key, _read_value(text)) for key, text in params])


def chain_label(labels: Iterable[str]) -> str:
    """A dataset chain: the dataset's label, then each transform's, in order."""
    return CHAIN.join(labels)


def pipeline_label(chain: str, encoder: str, reducer: str, clusterer: str,
                   seed: int | None = None) -> str:
    """A pipeline's name from its parts' labels; with ``seed``, a combination's."""
    name = PARTS.join((chain, encoder, reducer, clusterer))
    return name if seed is None else f"{name}{PARTS}seed={seed}"


class Pipeline(NamedTuple):
    """A pipeline's name read into its parts, each canonical."""

    #: the dataset's label, then each transform's
    chain: tuple[str, ...]
    encoder: str
    reducer: str
    clusterer: str
    seed: int | None

    @property
    def name(self) -> str:
        """The pipeline's name, without the seed."""
        return pipeline_label(chain_label(self.chain), self.encoder, self.reducer,
                              self.clusterer)


def split_pipeline(text: str) -> Pipeline | None:
    """The parts of a pipeline's (or a combination's) name in any spelling; None for
    text that is not one (a fragment, a name another tool gave a run)."""
    try:
        parts = _split(text, "/")
        seed = _SEED.fullmatch(parts[-1].strip()) if len(parts) == 5 else None
        if len(parts) != 4 and seed is None:
            return None
        chain, encoder, reducer, clusterer = (_chain(part) for part in parts[:4])
    except ValueError:
        return None
    if not all(chain) or len(encoder) != 1 or len(reducer) != 1 or len(clusterer) != 1:
        return None
    return Pipeline(tuple(chain), encoder[0], reducer[0], clusterer[0],
                    int(seed.group(1)) if seed else None)


# Reading any spelling ------------------------------------------------------------------

def canonical(text: str) -> str:
    """The canonical spelling of a pipeline's or a combination's name, a chain, a
    component, or a fragment of one made of whole components (``pca[n_components=10] /
    kmeans``), however ``text`` spells it; see the module's docstring."""
    return _canonical(str(text))


@lru_cache(maxsize=65536)  # a store's names are read again by every view of it
def _canonical(text: str) -> str:
    try:
        parts = _split(text, "/")
        out = []
        for part in parts:
            seed = _SEED.fullmatch(part.strip())
            out.append(f"seed={int(seed.group(1))}" if seed
                       else CHAIN.join(_chain(part)) if part.strip() else "")
        return PARTS.join(out).strip()
    except ValueError:
        return " ".join(text.split())


def wrap(name: str, width: int) -> list[str]:
    """``name`` in lines of at most ``width`` characters, broken between components (at
    a `` / `` or a `` > ``, which ends the line, or starts the next when a component
    fills its line), between the parameters of a component wider than a line, and
    inside a value only where a value alone is. Lines joined by a space read back
    (``canonical``) as ``name`` unless a value had to be broken."""
    width = max(width, 1)
    components, separators = _components(name)
    lines: list[str] = []
    line = ""
    for index, component in enumerate(components):
        separator = separators[index - 1] if index else ""
        if line and len(line + separator + component) <= width:
            line += separator + component
            continue
        if line:
            if len(line + separator.rstrip()) <= width:
                lines.append(line + separator.rstrip())
                line = ""
            else:
                lines.append(line)
                line = separator.lstrip()
        if len(line + component) <= width:
            line += component
            continue
        # A component wider than a line: broken between its parameters, then, a value
        # wider than a line, anywhere.
        for piece in _pieces(component, _comma_breaks(component)):
            while len(line + piece) > width:
                if line.strip() not in ("", ">", "/"):  # never a separator alone
                    lines.append(line.rstrip())
                    line = ""
                else:
                    room = width - len(line)
                    lines.append(line + piece[:room])
                    line, piece = "", piece[room:]
            line += piece
    if line or not lines:
        lines.append(line)
    return lines


# Internals -----------------------------------------------------------------------------

def _component(plugin: str, params: list[tuple[str, str]]) -> str:
    """``plugin[k=v,...]`` of values already canonical, sorted by ``_param_order``."""
    if not params:
        return plugin
    inner = ",".join(f"{key}={value}" for key, value in sorted(params, key=_param_order))
    return f"{plugin}[{inner}]"


def _param_order(param: tuple[str, str]) -> tuple[bool, str]:
    # The runner's settings (an encoder's symmetry) after the component's own parameters.
    return param[0] in RUNNER_KEYS, param[0]


def _string_text(value: str) -> str:
    plain = (value and value == value.strip() and value.isprintable()
             and not _SPECIAL & set(value) and _scalar(value) is None)
    return value if plain else json.dumps(value, ensure_ascii=False)


def _scalar(text: str) -> str | None:
    """The canonical spelling of a number, True, False or None written as ``text``;
    None when ``text`` is a plain string."""
    if _INTEGER.fullmatch(text):
        return str(int(text))
    if _FLOAT.fullmatch(text):
        return repr(float(text))
    return _CONSTANTS.get(text)


def _chain(part: str) -> list[str]:
    """The canonical labels of a chain (``+`` or ``>`` between its components)."""
    return [_read_component(component) for component in _split(part, ">+")]


def _read_component(text: str) -> str:
    text = text.strip()
    if not text:
        raise ValueError("an empty component")
    opening = text.find("[")
    if opening < 0:
        if _SPECIAL & set(text):
            raise ValueError(f"not a component: {text}")
        return text
    if not text.endswith("]") or opening == 0:
        raise ValueError(f"not a component: {text}")
    plugin, inner = text[:opening].strip(), text[opening + 1:-1]
    params = []
    for param in _split(inner, ","):
        if not param.strip():
            continue  # a trailing comma
        key, equals, value = param.partition("=")
        if not equals or not key.strip():
            raise ValueError(f"not a parameter: {param}")
        params.append((_read_key(key), _read_value(value)))
    return _component(plugin, params)


def _read_key(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return _unquote(text)
    return text


def _read_value(text: str) -> str:
    text = text.strip()
    if not text:
        return '""'
    if _enclosed(text, "[", "]") or _enclosed(text, "(", ")"):
        items = _split(text[1:-1], ",")
        if items and not items[-1].strip():
            items = items[:-1]  # (2,): a one-item tuple
        return "[" + ", ".join(_read_value(item) for item in items) + "]"
    if _enclosed(text, "{", "}"):
        pairs = []
        for item in _split(text[1:-1], ","):
            if not item.strip():
                continue
            key, colon, value = _split_first(item, ":")
            if not colon:
                raise ValueError(f"not a mapping item: {item}")
            pairs.append((_read_value(key), _read_value(value)))
        return "{" + ", ".join(f"{key}: {value}" for key, value in sorted(pairs)) + "}"
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"" and \
            _closing_quote(text, 0) == len(text) - 1:
        return _string_text(_unquote(text))
    return _scalar(text) or _string_text(text)


def _unquote(text: str) -> str:
    try:
        value = json.loads(text) if text[0] == '"' else ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text[1:-1]
    return value if isinstance(value, str) else text[1:-1]


def _enclosed(text: str, opening: str, closing: str) -> bool:
    """Whether ``text`` is one bracketed group, ``opening`` to its matching ``closing``."""
    if not (text.startswith(opening) and text.endswith(closing)):
        return False
    depth = 0
    for index, char, _ in _scan(text):
        if char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
            if depth == 0:
                return index == len(text) - 1
    return False


def _scan(text: str):
    """``(index, char, depth)`` of each character of ``text`` outside quotes, the depth
    being of brackets before it; ValueError if brackets or quotes are unbalanced."""
    opened: list[str] = []
    index, previous = 0, ""
    while index < len(text):
        char = text[index]
        if char in "'\"" and (previous == "" or previous in _QUOTE_AFTER):
            index = _closing_quote(text, index) + 1
            previous = char
            continue
        yield index, char, len(opened)
        if char in _OPEN:
            opened.append(char)
        elif char in _CLOSE and (not opened or opened.pop() != _OPEN[_CLOSE.index(char)]):
            raise ValueError(f"unbalanced {char!r}")
        if not char.isspace():
            previous = char
        index += 1
    if opened:
        raise ValueError("an unclosed bracket")


def _closing_quote(text: str, start: int) -> int:
    quote, index = text[start], start + 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == quote:
            return index
        index += 1
    raise ValueError("an unclosed quote")


def _split(text: str, separators: str) -> list[str]:
    """``text`` split at each of ``separators`` outside brackets and quotes."""
    cuts = [index for index, char, depth in _scan(text) if depth == 0 and char in separators]
    bounds = [-1, *cuts, len(text)]
    return [text[start + 1:end] for start, end in pairwise(bounds)]


def _split_first(text: str, separator: str) -> tuple[str, str, str]:
    parts = _split(text, separator)
    if len(parts) == 1:
        return text, "", ""
    return parts[0], separator, text[len(parts[0]) + 1:]


def _components(name: str) -> tuple[list[str], list[str]]:
    """The components of ``name`` and the separators (`` / ``, `` > ``) between them."""
    try:
        cuts = [index for index, char, depth in _scan(name)
                if depth == 0 and char in "/>" and name[index - 1:index + 2] == f" {char} "]
    except ValueError:
        cuts = [match.start() + 1 for match in re.finditer(r" [/>] ", name)]
    bounds = [-2, *cuts, len(name) + 2]
    components = [name[start + 2:end - 1] for start, end in pairwise(bounds)]
    return components, [f" {name[cut]} " for cut in cuts]


def _comma_breaks(text: str) -> list[int]:
    """Where a component may break between its parameters: after each comma."""
    try:
        return [index + 1 for index, char, depth in _scan(text) if depth >= 1 and char == ","]
    except ValueError:
        return [match.end() for match in re.finditer(",", text)]


def _pieces(text: str, breaks: list[int]) -> list[str]:
    bounds = [0, *breaks, len(text)]
    return [text[start:end] for start, end in pairwise(bounds) if end > start]
