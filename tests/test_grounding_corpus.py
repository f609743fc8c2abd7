"""The claim checker on real corpus documents, read by the app's own parsers and chunker: one
sentence of each verdict, with every quote verbatim from the passage it names."""

from __future__ import annotations

from pathlib import Path

import pytest

from pitchcraft.grounding import Claim, Passage, check_claims, corrected_draft
from pitchcraft.ingestion.chunking import chunk
from pitchcraft.ingestion.detect import detect
from pitchcraft.ingestion.parsers import parse_file

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def passages(rel: str) -> list[Passage]:
    path = CORPUS / rel
    if not path.is_file():
        pytest.skip(f"corpus document {rel} is not here")
    parsed = parse_file(path, detect(path, path.name), ocr=False, soffice=None)
    return [
        Passage(i + 1, c.text, f"{path.name}, page {c.page}" if c.page else path.name)
        for i, c in enumerate(chunk(parsed))
    ]


def checked(sentences: list[str], rel: str) -> list[Claim]:
    ps = passages(rel)
    claims = check_claims(sentences, ps)
    by_n = {p.n: p.text for p in ps}
    for claim in claims:
        for ev in claim.evidence:
            assert ev.quote in by_n[ev.n], (claim.text, ev.quote)
            assert 8 <= len(ev.quote) <= 300
    return claims


def test_table_document_each_verdict() -> None:
    claims = checked(
        [
            "Germany has about 83 million people and uses the euro.",
            "France's capital is Paris and its population is 90 million.",
            "Vatican City has a population of 12,000.",
            "Jakarta hosts the largest stock exchange in Asia.",
        ],
        "pdf/google-doc-document.pdf",
    )
    assert [c.verdict for c in claims] == ["supported", "partial", "contradicted", "unsupported"]
    assert [ch.document_value for ch in claims[2].checks if ch.kind == "number"] == ["453"]
    assert "453" in claims[2].reason
    assert any(ch.document_value == "67,413,000" for ch in claims[1].checks)


def test_memo_numbers_and_dates() -> None:
    claims = checked(
        [
            "We delivered 20000 bottles of water on January 23, 2023.",
            "We delivered 2,000 bottles of water on January 23, 2023.",
            "The supplies were delivered on January 23, 2022.",
            "Three trucks were used for 15 hours to deliver 300 laptops.",
            "Our drivers completed the route in under 10 hours.",
            "Our customers report a 3x return on investment within six months.",
        ],
        "pdf/fake-memo.pdf",
    )
    verdicts = [c.verdict for c in claims]
    assert verdicts == [
        "supported",
        "contradicted",
        "contradicted",
        "partial",
        "contradicted",
        "unsupported",
    ]
    draft = corrected_draft(claims)
    assert ("2,000", "20,000") in [(p.text, p.new) for p in draft if p.op == "replace"]
    assert claims[5].text in [p.text for p in draft if p.op == "flag"]


def test_indian_figures_with_the_rupee_as_a_backtick() -> None:
    claims = checked(
        [
            "Reliance's market capitalisation stood at ₹17,81,841 crore.",
            "Reliance reported a net profit of ₹67,845 crore.",
            "Reliance exported goods worth ₹2,45,970 crore.",
            "Reliance created 2,32,822 new jobs.",
            "RIL invites all shareholders to its 45th AGM on 29th August, 2022.",
            "Reliance is the largest private sector employer in Asia.",
        ],
        "pdf/reliance.pdf",
    )
    assert [c.verdict for c in claims] == [
        "supported",
        "supported",
        "contradicted",
        "supported",
        "supported",
        "unsupported",
    ]
    assert any(ch.document_value == "`2,54,970 crore" for ch in claims[2].checks)


def test_mojibake_and_reference_markers_in_plain_text() -> None:
    claims = checked(
        [
            "Roberts weighed 16 stone during pre-season training.",
            "Roberts amassed fifteen caps for Wales.",
            "Iwan Roberts was born in Cardiff.",
        ],
        "text/norwich-city.txt",
    )
    assert claims[0].verdict == "contradicted"
    assert claims[1].verdict == "supported"
    assert claims[2].verdict != "supported"


def test_a_negated_claim_is_not_supported_by_the_plain_statement() -> None:
    gao = "pdf/invalid-pdf-structure-pdfminer-one-page.pdf"
    claims = checked(
        [
            "In March 2023 the White House did not issue a National Cybersecurity Strategy "
            "with five pillars.",
            "The pillars do not focus on securing cyber critical infrastructure.",
            "The administration will fail to manage the nation's cybersecurity through five "
            "pillars.",
            "In March 2023 the White House issued a National Cybersecurity Strategy with five "
            "pillars.",
        ],
        gao,
    )
    assert [c.verdict for c in claims] == ["contradicted"] * 3 + ["supported"]
    assert "without the negation" in claims[0].reason
    assert claims[0].evidence
    # Negated on both sides, and a limit that is no negation ("no later than January 31").
    assert (
        checked(
            ["The Handbook's Practice Tips are not considered mandatory for standing trustees."],
            "docx/handbook-1p.docx",
        )[0].verdict
        == "supported"
    )
    assert (
        checked(
            [
                "A written report on the audit is issued to the standing trustee no later than "
                "January 31."
            ],
            "large/handbook-872p.docx",
        )[0].verdict
        == "supported"
    )


def test_an_obligation_is_not_supported_by_an_encouragement() -> None:
    claims = checked(
        [
            "Standing trustees are required to follow the Practice Tips identified in this "
            "Handbook.",
            "Standing trustees must follow the Practice Tips identified in this Handbook.",
            "Standing trustees are encouraged to follow the Practice Tips identified in this "
            "Handbook.",
        ],
        "docx/handbook-1p.docx",
    )
    assert [c.verdict for c in claims] == ["contradicted", "contradicted", "supported"]
    assert "optional" in claims[0].reason
    # The passage negates something else ("not considered mandatory"), not the encouragement.
    negated = checked(
        [
            "Standing trustees are not encouraged to follow the Practice Tips identified in "
            "this Handbook."
        ],
        "docx/handbook-1p.docx",
    )[0]
    assert negated.verdict == "contradicted"
    assert "not considered mandatory" in claims[0].evidence[0].quote


def test_what_states_an_obligation_or_an_option() -> None:
    from pitchcraft.grounding.rules import states_obligation, states_option

    assert states_obligation("Trustees must file the report.")
    assert states_obligation("The debtor has to attend the meeting.")
    assert not states_obligation("These are not considered mandatory.")
    assert not states_obligation("Trustees file the report.")
    assert states_option("These are not considered mandatory.")
    assert states_option("Trustees need not perform any duty personally.")
    assert states_option("Trustees are encouraged to follow them.")
    assert not states_option("Trustees must file the report.")


def test_which_words_a_negation_governs() -> None:
    from pitchcraft.grounding.lexicon import stem
    from pitchcraft.grounding.rules import negated_words, states_unnegated

    assert negated_words("Trustees are not encouraged to follow them.") == {stem("encouraged")}
    assert negated_words("These are not considered mandatory.") == {stem("considered")}
    assert negated_words("No later than January 31 the report is issued.") == set()
    assert states_unnegated(
        stem("encouraged"), "Trustees are encouraged to follow them, not obliged to."
    )
    assert not states_unnegated(stem("encouraged"), "Trustees are not encouraged to do it.")
    assert not states_unnegated(stem("requires"), "The portal requires no password.")


def test_a_different_year_contradicts_a_sentence_worded_a_little_differently() -> None:
    """The GAO brief: "We designated information security as a government-wide high-risk
    area in 1997". Said with other common words around the same facts, another year is
    contradicted; the same year with other facts is not."""
    claims = checked(
        [
            "GAO added information security to its government-wide high-risk areas back in 2001.",
            "GAO added cloud computing to its high-risk areas back in 2001.",
        ],
        "pdf/invalid-pdf-structure-pdfminer-one-page.pdf",
    )
    assert claims[0].verdict == "contradicted", claims[0].reason
    assert [ch.document_value for ch in claims[0].checks if ch.kind == "date"] == ["1997"]
    assert "1997" in claims[0].reason
    assert claims[1].verdict == "unsupported", claims[1].reason


def test_a_wrong_figure_beside_a_single_stated_word_is_contradicted() -> None:
    """ "partial" needs a right fact beside the wrong one; a lone word ("trucks") that sets the
    scene is not one. A right clause of its own still makes it partial."""
    memo = checked(
        ["Whenever trucks were needed, the team used them for 25 hours."], "pdf/fake-memo.pdf"
    )
    assert memo[0].verdict == "contradicted", memo[0].reason
    assert "15 hours" in memo[0].reason
    table = checked(
        ["France's capital is Paris and its population is 90 million."],
        "pdf/google-doc-document.pdf",
    )
    assert table[0].verdict == "partial", table[0].reason
