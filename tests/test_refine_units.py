"""Templates, context selection, citations and sentence splitting, without a server."""

from __future__ import annotations

import pytest

from pitchcraft.core.errors import Invalid
from pitchcraft.grounding import split_sentences
from pitchcraft.refine import evidence
from pitchcraft.refine.citations import citations_in, clean_citations
from pitchcraft.refine.context import Passage, format_context, select_for_claims, trim
from pitchcraft.refine.service import check_text, clean_backgrounds
from pitchcraft.templates.render import DEFAULT_TEMPLATE, placeholders_in, render, validate
from pitchcraft.vectors.base import Hit


def hit(
    doc: str, text: str, score: float, page: int | None = 1, name: str = "", chunk: int = 0
) -> Hit:
    return Hit(
        document_id=doc,
        filename=name or f"{doc}.pdf",
        page=page,
        section=None,
        chunk_index=chunk,
        text=text,
        score=score,
    )


def test_default_template_uses_every_placeholder_once() -> None:
    assert sorted(placeholders_in(DEFAULT_TEMPLATE)) == [
        "backgrounds",
        "channel",
        "context",
        "glossary",
        "marketing_text",
    ]
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


def test_citations_keep_the_prompt_numbers_and_unknown_are_dropped() -> None:
    text, order = clean_citations("A [3]. B [1, 3] and C [99]. D [2-3]. E [0].", count=3)
    assert order == [3, 1, 2]
    assert text == "A [3]. B [1][3] and C. D [2][3]. E."


def test_citations_without_any_valid_number() -> None:
    text, order = clean_citations("Claim [7] and [8, 9].", count=2)
    assert (text, order) == ("Claim and.", [])


def test_bracketed_words_are_not_citations() -> None:
    text, order = clean_citations("[sic] and [Note] stay [1]", count=1)
    assert text == "[sic] and [Note] stay [1]" and order == [1]


def test_a_sentence_s_citations_are_read_off_it() -> None:
    assert citations_in("Sales grew 20% [2][4].") == ("Sales grew 20%.", [2, 4])
    assert citations_in("No citation here.") == ("No citation here.", [])


SAME = "Acme Shield blocks ransomware in thirty seconds with behavioural detection."


def test_every_sentence_keeps_its_best_passages_in_the_context() -> None:
    first = [hit("a", SAME, 0.9, chunk=1), hit("a", "Agents for Linux and macOS.", 0.8, chunk=2)]
    second = [hit("b", "Support answers within one hour.", 0.7, chunk=1)]
    whole = [
        hit("c", f"Networking appliance number {i} with SD-WAN.", 0.95, chunk=i) for i in range(20)
    ]
    chosen = select_for_claims([first, second], whole, max_passages=3, budget_chars=10_000)
    # Two sentences: room for 3 + 2 passages; the sentences' best come first, in turns.
    assert len(chosen) == 5
    assert [(p.document_id, p.chunk_index) for p in chosen[:3]] == [("a", 1), ("b", 1), ("a", 2)]
    assert [p.n for p in chosen] == [1, 2, 3, 4, 5]
    assert {p.document_id for p in chosen[3:]} == {"c"}


def test_selection_drops_duplicates_and_repeats() -> None:
    sentence = [hit("a", SAME, 0.9, chunk=1)]
    whole = [
        hit("a", SAME, 0.9, chunk=1),  # the same chunk found again
        hit("b", SAME + " ", 0.85),  # the same page indexed from another file
        hit("c", "Networking appliance with 40 Gbit/s throughput and SD-WAN.", 0.6),
    ]
    chosen = select_for_claims([sentence], whole, max_passages=4, budget_chars=10_000)
    assert [p.document_id for p in chosen] == ["a", "c"]


def test_selection_respects_the_scaled_character_budget() -> None:
    hits = [hit(str(i), f"Sentence {i}. " + "word " * 150, 1 - i / 10) for i in range(8)]
    chosen = select_for_claims([], hits, max_passages=5, budget_chars=1500)
    assert sum(len(p.text) for p in chosen) <= 1500
    assert 1 <= len(chosen) < 5
    one_sentence = select_for_claims([hits[:1]], hits, max_passages=5, budget_chars=1500)
    assert sum(len(p.text) for p in one_sentence) <= 1500 * 6 // 5


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
    # Each passage fenced, so a document cannot pass itself off as instructions.
    assert format_context([slide, page]) == (
        "⟪source 1⟫\n[1] deck.pptx, slide 4: Slide text\n⟪/source 1⟫\n\n"
        "⟪source 2⟫\n[2] brief.pdf, page 3: Page text\n⟪/source 2⟫"
    )
    assert "No passages" in format_context([])


def test_claim_counts_and_summary() -> None:
    claims = [{"verdict": v} for v in ("supported", "supported", "contradicted", "unsupported")]
    by_verdict = evidence.counts(claims)
    assert by_verdict == {"supported": 2, "partial": 0, "contradicted": 1, "unsupported": 1}
    assert evidence.summary(by_verdict) == "4 claims: 2 supported, 1 contradicted, 1 unsupported"
    assert evidence.summary(evidence.counts([])) == "No claims to check."


def test_draft_text_applies_replacements_and_marks_flags() -> None:
    pieces = [
        {"op": "equal", "text": "We ship "},
        {"op": "replace", "text": "50,000", "new": "20,000"},
        {"op": "equal", "text": " bottles. "},
        {"op": "flag", "text": "Everyone loves us."},
    ]
    out = evidence.draft_text(pieces)
    assert out.startswith("We ship 20,000 bottles. Everyone loves us.")
    assert "50,000" not in out and "[check:" in out


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
