"""Templates, context selection, citations and sentence splitting, without a server."""

from __future__ import annotations

import pytest

from pitchcraft.core.errors import Invalid
from pitchcraft.refine.citations import clean_citations
from pitchcraft.refine.context import Passage, format_context, renumber, select_passages, trim
from pitchcraft.refine.evidence import split_sentences
from pitchcraft.refine.service import check_text, clean_backgrounds
from pitchcraft.templates.render import DEFAULT_TEMPLATE, placeholders_in, render, validate
from pitchcraft.vectors.base import Hit


def hit(doc: str, text: str, score: float, page: int | None = 1, name: str = "") -> Hit:
    return Hit(
        document_id=doc,
        filename=name or f"{doc}.pdf",
        page=page,
        section=None,
        chunk_index=0,
        text=text,
        score=score,
    )


def test_default_template_uses_every_placeholder_once() -> None:
    assert sorted(placeholders_in(DEFAULT_TEMPLATE)) == ["backgrounds", "context", "marketing_text"]
    assert validate(DEFAULT_TEMPLATE) == DEFAULT_TEMPLATE


def test_render_is_one_pass_so_values_stay_literal() -> None:
    out = render(
        "B={{backgrounds}} T={{ marketing_text }} C={{context}}",
        {"backgrounds": "{{context}}", "marketing_text": "say {{context}} {{x}}", "context": "P"},
    )
    assert out == "B={{context}} T=say {{context}} {{x}} C=P"


def test_unknown_placeholder_is_named() -> None:
    with pytest.raises(Invalid) as err:
        validate("{{marketing_text}} {{contxt}} {{ audience }}")
    assert "{{audience}}" in err.value.message and "{{contxt}}" in err.value.message
    assert err.value.code == "unknown_placeholder"


@pytest.mark.parametrize("template", ["", "   \n", "no placeholder for the text {{context}}"])
def test_template_without_the_text_is_refused(template: str) -> None:
    with pytest.raises(Invalid):
        validate(template)


def test_single_braces_and_other_text_are_not_placeholders() -> None:
    template = 'JSON like {"a": 1} and {single} stay; {{marketing_text}}'
    assert placeholders_in(template) == ["marketing_text"]
    assert render(template, {"marketing_text": "x"}) == 'JSON like {"a": 1} and {single} stay; x'


def test_citations_renumbered_in_order_of_use_and_unknown_dropped() -> None:
    text, order = clean_citations("A [3]. B [1, 3] and C [99]. D [2-3]. E [0].", count=3)
    assert order == [3, 1, 2]
    assert text == "A [1]. B [1][2] and C. D [1][3]. E."


def test_citations_without_any_valid_number() -> None:
    text, order = clean_citations("Claim [7] and [8, 9].", count=2)
    assert (text, order) == ("Claim and.", [])


def test_bracketed_words_are_not_citations() -> None:
    text, order = clean_citations("[sic] and [Note] stay [1]", count=1)
    assert text == "[sic] and [Note] stay [1]" and order == [1]


def test_selection_drops_duplicates_and_spreads_over_documents() -> None:
    same = "Acme Shield blocks ransomware in thirty seconds with behavioural detection."
    hits = [
        hit("a", same, 0.9),
        hit("b", same + " ", 0.85),  # the same page indexed from another file
        hit("a", "Acme Shield has an agent for Linux, Windows and macOS laptops.", 0.8),
        hit("a", "Acme support answers within one hour, around the clock.", 0.7),
        hit("c", "Networking appliance with 40 Gbit/s throughput and SD-WAN.", 0.6),
    ]
    chosen = select_passages(hits, max_passages=3, budget_chars=10_000)
    assert [p.n for p in chosen] == [1, 2, 3]
    assert [p.document_id for p in chosen].count("b") == 0
    assert "c" in {p.document_id for p in chosen}  # spread beats a third passage of "a"
    assert [p.score for p in chosen] == sorted((p.score for p in chosen), reverse=True)


def test_selection_respects_the_character_budget() -> None:
    hits = [hit(str(i), f"Sentence {i}. " + "word " * 150, 1 - i / 10) for i in range(5)]
    chosen = select_passages(hits, max_passages=5, budget_chars=1500)
    assert sum(len(p.text) for p in chosen) <= 1500
    assert 1 <= len(chosen) < 5


def test_trim_cuts_at_a_boundary() -> None:
    out = trim("First sentence here. Second sentence is longer than the room.", 30)
    assert out == "First sentence here. …" and len(out) <= 30


def test_labels_and_context_format() -> None:
    slide = Passage.of(hit("d", "Slide text", 0.5, page=4, name="deck.pptx"), n=1)
    page = Passage.of(hit("p", "Page text", 0.4, page=3, name="brief.pdf"), n=2)
    plain = Passage.of(hit("t", "Plain text", 0.3, page=None, name="notes.txt"), n=3)
    assert [p.label for p in (slide, page, plain)] == [
        "deck.pptx, slide 4",
        "brief.pdf, page 3",
        "notes.txt",
    ]
    assert format_context([slide, page]) == (
        "[1] deck.pptx, slide 4: Slide text\n\n[2] brief.pdf, page 3: Page text"
    )
    assert "No passages" in format_context([])
    assert [p.filename for p in renumber([slide, page, plain], [3, 1])] == [
        "notes.txt",
        "deck.pptx",
        "brief.pdf",
    ]


def test_sentences_split_on_punctuation_lines_and_bullets() -> None:
    text = "We stop ransomware. Fast! Really?\n- Bullet one\n2) Numbered item\n\nv1.2 ships now."
    assert split_sentences(text) == [
        "We stop ransomware.",
        "Fast!",
        "Really?",
        "Bullet one",
        "Numbered item",
        "v1.2 ships now.",
    ]


def test_backgrounds_are_trimmed_and_deduplicated() -> None:
    assert clean_backgrounds([" SaaS ", "saas", "", "network   security"]) == [
        "SaaS",
        "network security",
    ]
    with pytest.raises(Invalid):
        clean_backgrounds(["x" * 101])


def test_blank_marketing_text_is_refused() -> None:
    with pytest.raises(Invalid):
        check_text(" \n\t ")


def test_reasoning_is_not_part_of_the_answer() -> None:
    from pitchcraft.refine.runner import visible_answer

    assert visible_answer("<think>plan it</think>\nRefined copy [1].") == "Refined copy [1]."
    assert visible_answer("<think>still thinking") == ""
