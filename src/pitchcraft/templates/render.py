"""Prompt templates: the default, validation, and single-pass rendering.

A template is plain text with five placeholders. Rendering replaces each placeholder in
one pass over the template, so a value that itself contains `{{context}}` (a user typing it
into their marketing text) stays literal text and is never expanded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pitchcraft.core.errors import Invalid

BACKGROUNDS, MARKETING_TEXT, CONTEXT = "backgrounds", "marketing_text", "context"
CHANNEL, GLOSSARY = "channel", "glossary"
PLACEHOLDERS = (BACKGROUNDS, MARKETING_TEXT, CONTEXT, CHANNEL, GLOSSARY)
MAX_TEMPLATE_CHARS = 20_000

# `{{ name }}` with optional inner spaces; anything word-like between double braces counts,
# so a typo such as `{{contxt}}` is reported instead of reaching the model unexpanded.
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}")

DEFAULT_TEMPLATE = """\
You are a senior marketing strategist and copywriter. Refine the marketing text below for an \
audience that cares about: {{backgrounds}}.

Goals:
- Keep the author's message, product names and claims; make the copy clearer, more specific \
and more persuasive for that audience.
- Ground every concrete claim (numbers, capabilities, certifications, customer results) in \
the numbered context passages from the company's own documents, and cite them as [n] right \
after the sentence that uses them.
- Never invent facts, figures or customers. If the context does not support a claim in the \
original text, keep it modest or leave it out, and do not add a citation for it.
- Match the original's language and format.

Where it will be published:
{{channel}}

The company's glossary (its words, the words it avoids and those it never uses):
{{glossary}}

Context passages from the company's documents:
{{context}}

Marketing text to refine:
{{marketing_text}}

Answer with the refined text only, with its [n] citations."""


def placeholders_in(template: str) -> list[str]:
    return [m.group(1) for m in _PLACEHOLDER.finditer(template)]


def validate(template: str) -> str:
    """The template as it will be stored, or Invalid naming what is wrong."""
    if not template.strip():
        raise Invalid("The template is empty.", code="invalid_template")
    if len(template) > MAX_TEMPLATE_CHARS:
        raise Invalid(
            f"The template is longer than {MAX_TEMPLATE_CHARS:,} characters.",
            code="invalid_template",
        )
    unknown = sorted({name for name in placeholders_in(template) if name not in PLACEHOLDERS})
    if unknown:
        names = ", ".join("{{" + n + "}}" for n in unknown)
        known = ", ".join("{{" + n + "}}" for n in PLACEHOLDERS)
        raise Invalid(
            f"Unknown placeholder {names} in the template; the known ones are {known}.",
            code="unknown_placeholder",
        )
    if MARKETING_TEXT not in placeholders_in(template):
        raise Invalid(
            "The template must contain {{marketing_text}}, or the model never sees your text.",
            code="invalid_template",
        )
    return template


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill every known placeholder in one pass; the values are inserted verbatim."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        return values[name] if name in values else match.group(0)

    return _PLACEHOLDER.sub(fill, template)
