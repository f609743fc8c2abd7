"""Word-level differences from one text to another.

Texts are cut into words, runs of spaces and single punctuation marks, so the operations
join back exactly: the `equal` and `delete` texts rebuild the first text, the `equal` and
`insert` texts the second. Neighbouring operations of one kind are merged, and a space
caught between two changes joins them, so "fast and safe" → "quick and secure" reads as one
change rather than three.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from typing import Any

EQUAL, INSERT, DELETE = "equal", "insert", "delete"
_TOKEN = re.compile(r"\w+|\s+|[^\w\s]", re.UNICODE)


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def word_diff(before: str, after: str) -> list[dict[str, Any]]:
    """[{"op": "equal"|"insert"|"delete", "text"}] from `before` to `after`."""
    a, b = tokens(before), tokens(after)
    ops: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            ops.append((EQUAL, "".join(a[i1:i2])))
            continue
        if tag in ("delete", "replace"):
            ops.append((DELETE, "".join(a[i1:i2])))
        if tag in ("insert", "replace"):
            ops.append((INSERT, "".join(b[j1:j2])))
    return [{"op": op, "text": text} for op, text in _tidy(ops)]


def _tidy(ops: list[tuple[str, str]]) -> list[tuple[str, str]]:
    # An unchanged run of spaces between two changes is folded into them.
    folded: list[tuple[str, str]] = []
    for i, (op, text) in enumerate(ops):
        between = 0 < i < len(ops) - 1 and ops[i - 1][0] != EQUAL and ops[i + 1][0] != EQUAL
        if op == EQUAL and between and not text.strip():
            folded.append((DELETE, text))
            folded.append((INSERT, text))
        else:
            folded.append((op, text))
    # Deletions before insertions within each changed stretch, neighbours merged.
    out: list[tuple[str, str]] = []
    stretch: dict[str, list[str]] = {DELETE: [], INSERT: []}

    def flush() -> None:
        for op in (DELETE, INSERT):
            if stretch[op]:
                out.append((op, "".join(stretch[op])))
                stretch[op] = []

    for op, text in folded:
        if not text:
            continue
        if op == EQUAL:
            flush()
            if out and out[-1][0] == EQUAL:
                out[-1] = (EQUAL, out[-1][1] + text)
            else:
                out.append((EQUAL, text))
        else:
            stretch[op].append(text)
    flush()
    return out


def rebuild(ops: list[dict[str, Any]], side: str) -> str:
    """The text before (`side="before"`) or after the change."""
    keep = DELETE if side == "before" else INSERT
    return "".join(o["text"] for o in ops if o["op"] in (EQUAL, keep))
