"""The components reference of the manual: a Markdown page per kind, written from the
registry when the docs are built (``docs/hooks/components.py``), so it cannot drift
from the code.

Each component is shown as ``clustergrid plugins NAME`` shows it: where it comes from,
each parameter with its default and type (``spec.parameter_rows``), and its whole
docstring. Discovery imports no heavy library, so neither does building the pages.
"""

from __future__ import annotations

import inspect
import re

from clustergrid.components import KINDS
from clustergrid.registry import ComponentInfo, Registry
from clustergrid.spec import parameter_rows

#: the folder of the manual the pages are written to, relative to its root
FOLDER = "components"

#: what each kind's page says first
INTRODUCTIONS = {
    "dataset": "Datasets read or make the images (`datasets:` entries of an experiment file). "
               "The loaders are explained in [Your own data](../data.md).",
    "transform": "Transforms change images batch by batch, in the order listed "
                 "(`transforms:`, globally or in a dataset entry).",
    "encoder": "Encoders turn each image into a vector (`encoders:`). "
               "[Encoders in practice](encoding.md) explains the trained and pretrained "
               "ones and the `symmetry` keys every encoder entry takes.",
    "reducer": "Reducers map the encoder's output to fewer dimensions (`reducers:`; "
               "also the experiment's `map:`).",
    "clusterer": "Clusterers label each item, -1 for noise (`clusterers:`).",
    "metric": "Metrics score a clustering or an encoder's output (`metrics:`).",
}


def page_path(kind: str) -> str:
    """Where ``kind``'s page lives in the manual: ``components/datasets.md``."""
    return f"{FOLDER}/{kind}s.md"


def kind_page(registry: Registry, kind: str) -> str:
    """The Markdown reference of every component of ``kind`` that the registry holds."""
    infos = registry.all(kind)
    lines = [
        f"# {kind.capitalize()}s",
        "",
        INTRODUCTIONS[kind],
        "",
        f"This page is written from the components' own docstrings and parameters when "
        f"the manual is built; `clustergrid plugins --kind {kind}` lists the same, and "
        f"`clustergrid plugins NAME` shows one component.",
        "",
        " ".join(f"[`{info.name}`](#{_anchor(info)})" for info in infos),
        "",
    ]
    for info in infos:
        lines.extend(_component_section(info))
    return "\n".join(lines)


def pages(registry: Registry | None = None) -> dict[str, str]:
    """Every kind's page by its path in the manual."""
    registry = registry or Registry.load()
    return {page_path(kind): kind_page(registry, kind) for kind in KINDS}


def _component_section(info: ComponentInfo) -> list[str]:
    version = f", component version {info.cls.version}" if info.cls.version else ""
    lines = [
        f"## {info.name} {{#{_anchor(info)}}}",
        "",
        f"*{info.kind}, plugin `{info.plugin}` ({info.distribution}{version})*",
        "",
        _markdown(inspect.getdoc(info.cls) or "(no docstring)"),
        "",
    ]
    rows = parameter_rows(info.cls)
    if rows:
        lines.extend(["Parameters, with their defaults and types:", ""])
        lines.extend(f"- {_code(name)} = {_code(default)}" + (f": {_code(hint)}" if hint else "")
                     for name, default, hint in rows)
    else:
        lines.append("Parameters: none.")
    lines.append("")
    return lines


def _anchor(info: ComponentInfo) -> str:
    return re.sub(r"[^a-z0-9]+", "-", info.name.lower()).strip("-")


def _code(text: str) -> str:
    """``text`` as a Markdown code span, whatever backticks it holds."""
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _markdown(doc: str) -> str:
    """A docstring as Markdown: its ``literals`` stay code, and outside them the
    characters Markdown would read as markup (``*``, ``_``, ``[``, ``<``) are shown as
    written; a list gets the blank line before it that Markdown needs."""
    lines: list[str] = []
    for line in doc.splitlines():
        if _LIST_ITEM.match(line) and lines and lines[-1].strip() \
                and not (_LIST_ITEM.match(lines[-1]) or lines[-1].startswith("  ")):
            lines.append("")
        lines.append(line)
    # A literal may run over a line break, so the text is split as a whole.
    parts = re.split(r"(``.+?``|`[^`\n]+`)", "\n".join(lines), flags=re.S)
    for i in range(0, len(parts), 2):
        text = parts[i].replace("\\", "\\\\").replace("<", "&lt;")
        parts[i] = re.sub(r"([*_\[\]])", r"\\\1", text)
    text = "".join(parts)
    # A list marker at the start of a line stays one; a quote marker does not.
    text = re.sub(r"^(\s*)\\\*( )", r"\1*\2", text, flags=re.M)
    return re.sub(r"^(\s*)>", r"\1\\>", text, flags=re.M)


_LIST_ITEM = re.compile(r"\s*([-*]|\d+\.) ")
