"""Lay out generated Python source exactly as ``ruff format`` would, so formatting never causes drift.

Line length is measured as ruff measures it: East Asian wide characters (Hangul) count twice.
"""

from __future__ import annotations

import unicodedata

LINE_WIDTH = 110
INDENT = "    "


def from_import(module: str, names: set[str]) -> str:
    """``from module import ...`` with names in ruff's isort order: CONSTANTS, Classes, then functions."""
    ordered = sorted(names, key=lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n))
    return f"from {module} import {', '.join(ordered)}"


def tuple_assignment(target: str, names: list[str]) -> str:
    """``target = (a, b)``, exploded one name per line when it does not fit."""
    one_line = f"{target} = ({', '.join(names)}{',' if len(names) == 1 else ''})"
    if display_width(one_line) <= LINE_WIDTH:
        return one_line
    return "\n".join([f"{target} = (", *(f"{INDENT}{name}," for name in names), ")"])


def field_lines(name: str, annotation: str, arguments: list[str], doc: str) -> list[str]:
    """A model field ``name: annotation = Field(..., description=doc)`` laid out as ruff formats it.

    One line when it fits; else one argument per line, kept so by the trailing comma, with a description
    too long for its line split into an implicit concatenation in parentheses.
    """
    head = f"{INDENT}{name}: {annotation} = Field("
    description = string_literal(doc)
    one_line = f"{head}{', '.join([*arguments, f'description={description}'])})"
    if display_width(one_line) <= LINE_WIDTH:
        return [one_line]
    inner = INDENT * 2
    lines = [head, *(f"{inner}{argument}," for argument in arguments)]
    if display_width(f"{inner}description={description},") <= LINE_WIDTH:
        lines.append(f"{inner}description={description},")
    else:
        lines.append(f"{inner}description=(")
        lines.extend(
            f"{inner}{INDENT}{string_literal(chunk)}" for chunk in wrap(doc, LINE_WIDTH - len(inner) - 6)
        )
        lines.append(f"{inner}),")
    lines.append(f"{INDENT})")
    return lines


def docstring_lines(text: str, indent: str) -> list[str]:
    """A docstring holding ``text`` (whitespace collapsed), wrapped to the line width."""
    text = " ".join(text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"').split())
    if text.endswith('"'):
        text += " "
    one_line = f'{indent}"""{text}"""'
    if display_width(one_line) <= LINE_WIDTH:
        return [one_line]
    # Narrower than the one-line limit so that the text always takes two lines: ruff would join a
    # single line with its closing quotes.
    chunks = [chunk.rstrip() for chunk in wrap(text, LINE_WIDTH - len(indent) - 6)]
    return [f'{indent}"""{chunks[0]}', *(f"{indent}{chunk}" for chunk in chunks[1:]), f'{indent}"""']


def wrap(text: str, width: int) -> list[str]:
    """Greedy word wrap by display width; every chunk but the last keeps its trailing space."""
    chunks: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if current and display_width(candidate) + 1 > width:
            chunks.append(f"{current} ")
            current = word
        else:
            current = candidate
    chunks.append(current)
    return chunks


def display_width(text: str) -> int:
    """Display width as ruff measures line length: East Asian wide characters count twice."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def string_literal(text: str) -> str:
    """A string literal in ruff's preferred quotes."""
    escaped = text.replace("\\", "\\\\").replace("\n", "\\n")
    if '"' in text and "'" not in text:
        return f"'{escaped}'"
    return '"' + escaped.replace('"', '\\"') + '"'
