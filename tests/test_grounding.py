"""The claim checker on small, hand-made passages: number and date shapes, sentence splitting,
quotes, each verdict, the known traps and the corrected draft (speed is measured in
bench.claims, not asserted here)."""

from __future__ import annotations

import pytest

from pitchcraft.grounding import (
    Claim,
    Passage,
    check_claims,
    corrected_draft,
    split_sentences,
)
from pitchcraft.grounding.dates import find_dates
from pitchcraft.grounding.numbers import find_numbers, matches, strip_markers


def values(text: str) -> list[float]:
    return [n.value for n in find_numbers(strip_markers(text))]


def one(sentence: str, *texts: str, label: str = "memo.pdf, page 1") -> Claim:
    passages = [Passage(i + 1, t, label) for i, t in enumerate(texts)]
    claim = check_claims([sentence], passages)[0]
    for ev in claim.evidence:
        # Every quote is verbatim from the passage it names, and of a readable length.
        assert ev.quote in passages[ev.n - 1].text
        assert 8 <= len(ev.quote) <= 300
    return claim


# Numbers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20,000 bottles", 20000),
        ("20000 bottles", 20000),
        ("20 000 bottles", 20000),
        ("2,32,822 new jobs", 232822),
        ("83,190,5562", 83190556),  # footnote 2 glued to the number
        ("273.879.7501", 273879750),  # dots as thousands separators, footnote 1
        ("`67,845 crore", 67845e7),  # the rupee sign extracted as a backtick
        ("17,81,841 crore", 1781841e7),
        ("₹20 lakh crore", 20e5 * 1e7),
        ("fifteen caps", 15),
        ("twenty-five goals", 25),
        ("3.5 million", 3.5e6),
    ],
)
def test_number_values(text: str, expected: float) -> None:
    assert values(text)[0] == pytest.approx(expected)


def test_percent_forms_are_one_value_and_differ_from_counts() -> None:
    a, b, c = (find_numbers(t)[0] for t in ("15%", "15 percent", "15 people"))
    assert matches(a, b)
    assert not matches(a, c)


def test_reference_markers_are_not_numbers() -> None:
    assert values("the Executive Office of the President.2 The Senate") == []
    assert values("it must have taken its toll.[84] He said") == []
    assert values("Zejiang Shen1 and COVID-19") == []


def test_hedges_and_bounds() -> None:
    about = find_numbers("about 83 million people")[0]
    assert about.hedge == "approx"
    assert matches(about, find_numbers("83,190,5562")[0])
    assert not matches(about, find_numbers("67,413,000")[0])
    under = find_numbers("under 10 hours")[0]
    assert not matches(under, find_numbers("15 hours")[0])
    assert matches(under, find_numbers("8 hours")[0])
    over = find_numbers("crossed 20 lakh crore")[0]
    assert not matches(over, find_numbers("17,81,841 crore")[0])


def test_rates_are_not_counts() -> None:
    rate = find_numbers("10,000 pages per second")[0]
    assert rate.unit.endswith("/t")
    assert not matches(rate, find_numbers("10,000 pages")[0])


def test_scores_and_heights() -> None:
    assert matches(find_numbers("won 2\u20131 against")[0], find_numbers("beat them 2-1")[0])
    assert not matches(
        find_numbers("lost 4\u20133 on aggregate")[0], find_numbers("lost 3-2 on aggregate")[0]
    )
    assert find_numbers("6 ft 3 in (1.91 m)")[0].value == 75


# Dates --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "year", "month", "day"),
    [
        ("to be held on 29th August, 2022.", 2022, 8, 29),
        ("delivered on January 23, 2023.", 2023, 1, 23),
        ("confirmed in June 2021 to serve", 2021, 6, None),
        ("born 26 June 1968", 1968, 6, 26),
        ("since 1997 the office", 1997, None, None),
    ],
)
def test_dates(text: str, year: int, month: int | None, day: int | None) -> None:
    d = find_dates(text)[0]
    assert (d.year, d.month, d.day) == (year, month, day)


def test_fiscal_year_range() -> None:
    d = find_dates("Integrated Annual Report 2021-22")[0]
    assert (d.year, d.until) == (2021, 2022)


# Sentences ----------------------------------------------------------------------------------


def test_split_sentences_shapes() -> None:
    text = (
        "We sold 3.5 million units in the U.S. last year. Dr. Smith agrees!\n"
        "- Fast setup\n"
        "* Works offline\n"
        "\u2705 Free support\n"
        "A sentence wrapped\nover two lines."
    )
    assert split_sentences(text) == [
        "We sold 3.5 million units in the U.S. last year.",
        "Dr. Smith agrees!",
        "Fast setup",
        "Works offline",
        "Free support",
        "A sentence wrapped over two lines.",
    ]


# Verdicts -----------------------------------------------------------------------------------

MEMO = (
    "May 5, 2023\nTo Whom it May Concern:\nThere were 20,000 bottles of water, 10,000 "
    "blankets, and 200 laptops delivered on January 23, 2023. A total of 3 trucks were used "
    "for 15 hours.\nBest Regards,\nMallori"
)


def test_supported_with_another_number_form() -> None:
    c = one("We delivered 20000 bottles of water on January 23, 2023.", MEMO)
    assert c.verdict == "supported"
    assert c.evidence and "20,000 bottles" in c.evidence[0].quote
    found = {ch.kind: ch.found for ch in c.checks}
    assert found["number"] and found["date"]


def test_contradicted_names_the_document_value() -> None:
    c = one("We delivered 50,000 bottles of water.", MEMO)
    assert c.verdict == "contradicted"
    wrong = next(ch for ch in c.checks if ch.kind == "number")
    assert not wrong.found and wrong.document_value == "20,000"
    assert "20,000" in c.reason and "50,000" in c.reason


def test_wrong_fact_beside_a_right_one_is_partial() -> None:
    c = one("Three trucks were used for 15 hours to deliver 300 laptops.", MEMO)
    assert c.verdict == "partial"
    assert any(ch.document_value == "200" for ch in c.checks)


def test_bound_that_the_document_breaks() -> None:
    assert one("The trucks were in use for under 10 hours.", MEMO).verdict == "contradicted"


def test_topic_match_alone_is_unsupported() -> None:
    c = one("Our water deliveries reach 9 out of 10 disaster zones within a day.", MEMO)
    assert c.verdict == "unsupported"
    assert c.reason.startswith("Nothing in your documents states")
    assert c.evidence == []


def test_name_found_elsewhere_is_not_support() -> None:
    bio = (
        "Iwan Wyn Roberts was born in Bangor, Gwynedd, on 26 June 1968, and grew up in Barmouth.\n"
        "Norwich reached the Division One play-off final at the Millennium Stadium in Cardiff."
    )
    c = one("Roberts was born in Cardiff.", bio)
    assert c.verdict != "supported"
    assert one("Roberts was born in Bangor.", bio).verdict == "supported"


def test_quantifier_all_is_not_four_of_five() -> None:
    text = "The agencies have fully addressed four of the five pillars of the strategy."
    c = one("The agencies have fully addressed all five pillars of the strategy.", text)
    assert c.verdict != "supported"


def test_missing_hard_word_caps_at_partial() -> None:
    text = "The club scored 34 goals in the 1991-92 season."
    assert one("The club scored 34 goals in the 1991-92 season.", text).verdict == "supported"
    c = one("The club scored a record 34 goals in the 1991-92 season.", text)
    assert c.verdict in ("partial", "unsupported")


def test_negation_in_the_passage_is_not_support() -> None:
    text = "Norwich just missed out on promotion to the Premiership in 2003."
    c = one("Norwich won promotion to the Premiership in 2003.", text)
    assert c.verdict != "supported"
    text = "The team failed to qualify for the play-offs."
    assert one("The team qualified for the play-offs.", text).verdict != "supported"


def test_opposite_word_contradicts() -> None:
    text = "Thankfully, abominations are rare."
    assert one("Abominations are common.", text).verdict == "contradicted"


def test_name_in_one_passage_figure_in_another() -> None:
    intro = "Reliance Industries Limited (RIL) is the largest private sector corporation in India."
    table = "India's largest company\nBY NET PROFIT `67,845 crore\nEXPORTS `2,54,970 crore"
    c = check_claims(
        ["Reliance's net profit was ₹67,845 crore.", "Reliance's net profit was ₹76,845 crore."],
        [Passage(1, intro), Passage(2, table)],
    )
    assert c[0].verdict == "supported"
    assert c[0].evidence[0].n == 2
    assert c[1].verdict == "contradicted"


def test_flattened_table_columns() -> None:
    table = (
        "Indonesia 🇮🇩 Germany 🇩🇪 Austria 🇦🇹 France | Vatican 🇻🇦\n"
        "Capital | Jakarta | Berlin | Vienna | Paris | Vatican City\n"
        "Population 273.879.7501 83,190,5562 8,935,1123 67,413,000 | 453"
    )
    assert one("Germany has about 83 million people.", table).verdict == "supported"
    assert one("Berlin is the capital of Germany.", table).verdict == "supported"
    assert one("Berlin is the capital of France.", table).verdict != "supported"
    c = one("Vatican City has a population of 12,000.", table)
    assert c.verdict == "contradicted"
    assert [ch.document_value for ch in c.checks if ch.kind == "number"] == ["453"]


def test_hyphenated_line_break_and_mojibake() -> None:
    text = (
        "The new engine is more ef-\nficient than the old one.\nIt ran from 1990â1993 at Â£275,000."
    )
    assert one("The new engine is more efficient than the old one.", text).verdict == "supported"
    c = one("It cost £275,000 to run.", text)
    assert c.verdict in ("supported", "partial")
    assert any(ch.found for ch in c.checks if ch.kind == "number")


def test_abbreviation_defined_in_the_document() -> None:
    text = (
        "Recent advances in document image analysis (DIA) have been driven by Deep Learning "
        "(DL).\nThis paper introduces LayoutParser, an open-source library for streamlining "
        "the usage of DL in DIA research."
    )
    c = one(
        "LayoutParser is an open-source library for deep learning in document image analysis.", text
    )
    assert c.verdict == "supported"


def test_cited_passages_are_tried_first() -> None:
    a = Passage(1, "There were 20,000 bottles of water delivered.", "a.pdf")
    b = Passage(2, "There were 20,000 bottles of water delivered by truck.", "b.pdf")
    c = check_claims(["We delivered 20,000 bottles of water."], [a, b], cited=[[2]])[0]
    assert c.verdict == "supported" and c.evidence[0].n == 2


def test_as_dict_shape() -> None:
    d = one("We delivered 50,000 bottles of water.", MEMO).as_dict()
    assert set(d) == {"text", "verdict", "reason", "evidence", "checks"}
    assert set(d["evidence"][0]) == {"n", "quote"}
    assert {c["kind"] for c in d["checks"]} <= {"number", "date", "name", "term"}
    assert set(d["checks"][0]) == {"kind", "text", "found", "document_value"}


# Corrected draft ----------------------------------------------------------------------------


def test_corrected_draft_replaces_and_flags() -> None:
    claims = check_claims(
        [
            "We delivered 20,000 bottles of water.",
            "We delivered 50,000 blankets.",
            "Our trucks run on solar power.",
        ],
        [Passage(1, MEMO)],
    )
    pieces = corrected_draft(claims)
    replaced = [p for p in pieces if p.op == "replace"]
    assert [(p.text, p.new) for p in replaced] == [("50,000", "10,000")]
    flagged = [p for p in pieces if p.op == "flag"]
    assert [p.text for p in flagged] == ["Our trucks run on solar power."]
    assert all(p.reason for p in replaced + flagged)
    rebuilt = "".join(p.new if p.op == "replace" and p.new else p.text for p in pieces)
    assert rebuilt == (
        "We delivered 20,000 bottles of water. We delivered 10,000 blankets. "
        "Our trucks run on solar power."
    )


def test_a_name_in_another_names_slot_is_contradicted() -> None:
    bio = (
        "Iwan Wyn Roberts was born in Bangor, Gwynedd, on 26 June 1968, and grew up in "
        "Barmouth, on the west coast of Wales."
    )
    c = one("Roberts was born in Barmouth.", bio)
    assert c.verdict == "contradicted"
    assert [ch.document_value for ch in c.checks if ch.kind == "name" and not ch.found] == [
        "Bangor"
    ]
    assert one("Roberts grew up in Barmouth.", bio).verdict == "supported"
    # A list is not a slot taken by someone else.
    career = "He played for Watford, Huddersfield Town and Norwich City."
    assert one("Roberts played for Norwich City.", career).verdict != "contradicted"
    pieces = corrected_draft([c])
    assert [(p.text, p.new) for p in pieces if p.op == "replace"] == [("Barmouth", "Bangor")]


def test_a_list_is_read_with_its_heading() -> None:
    text = "These are a few of my favorite things:\n• Parrots\n•\nHockey\nThis is my first thought."
    assert one("Parrots and hockey are among my favourite things.", text).verdict == "supported"
    assert one("Parrots and tennis are among my favourite things.", text).verdict != "supported"


# Codes --------------------------------------------------------------------------------------

CONTACT = (
    "For more information about this product, contact: Marisol Cruz Cain, Director, "
    "Information Technology and Cybersecurity, (202) 512-5017."
)


def test_phone_number_matches_only_digit_for_digit() -> None:
    right = one("Marisol Cruz Cain can be reached at (202) 512-5017.", CONTACT)
    assert right.verdict == "supported"
    # The same area code and exchange are no support for another number.
    wrong = one("Marisol Cruz Cain can be reached at (202) 512-4800.", CONTACT)
    assert wrong.verdict == "contradicted"
    assert "(202) 512-5017" in wrong.reason
    assert one("Marisol Cruz Cain can be reached at 202-512-5017.", CONTACT).verdict == "supported"


def test_thousands_groups_are_not_codes() -> None:
    from pitchcraft.grounding.codes import find_codes

    assert find_codes("a budget of 1.234.567 euros") == []
    assert [c.digits for c in find_codes("call 202.512.4800 today")] == ["2025124800"]


# Light words ------------------------------------------------------------------------------

STRATEGY = (
    "In March 2023, the White House issued the National Cybersecurity Strategy, outlining how "
    "the administration will manage the nation's cybersecurity through five pillars."
)
FEES = "The trustee must transfer the percentage fee to the operating expense account monthly."


def test_a_missing_last_word_stays_partial() -> None:
    # What the claim adds at its end ("weekly") is its content, not framing.
    c = one("The trustee must transfer the percentage fee to the expense account weekly.", FEES)
    assert c.verdict != "supported"
    # Two missing words are more than framing.
    c = one(
        "In March 2023 the White House quietly issued a strategy built on five pillars.", STRATEGY
    )
    assert c.verdict == "partial"


def test_a_unit_glued_to_a_number_is_read_with_it() -> None:
    text = "* 빅포인트의 유효기간은 5년으로, 유효기간 만료 시 월 단위로 자동 소멸"
    assert one("빅포인트의 유효기간은 5년입니다.", text).verdict == "supported"
    assert one("빅포인트의 유효기간은 3년입니다.", text).verdict != "supported"


def test_short_fragments_are_read_together() -> None:
    text = (
        "Heres to the crazy ones. The misfits. The rebels. The troublemakers.\n"
        "The round pegs in the square holes."
    )
    c = one("Here's to the misfits, the rebels and the troublemakers.", text)
    assert c.verdict == "supported"
    assert c.evidence and c.evidence[0].quote in text
    # A long sentence is not joined with its neighbours.
    long = (
        "The committee met on Tuesday to review the annual budget in full. The misfits. "
        "The rebels left early after a long and heated debate about the plans."
    )
    assert one("The committee met on Tuesday with the rebels.", long).verdict != "supported"


def test_a_hedged_small_count_must_be_exact() -> None:
    text = "The national strategy is organised around five pillars, each with its own objectives."
    assert one("The strategy is organised around six pillars.", text).verdict == "contradicted"
    assert one("The strategy is organised around five pillars.", text).verdict == "supported"
    # A large round number keeps its rounding.
    assert values("about 9 million people") == [9e6]
    from pitchcraft.grounding.numbers import find_numbers as fn

    claim, doc = fn("about 9 million people")[0], fn("8,900,000 people")[0]
    assert matches(claim, doc)


def test_a_claims_other_date_is_not_a_rival_value() -> None:
    texts = (
        "The National Cyber Director leads the office. However, this official resigned from "
        "the position in February 2023.",
        "As of June 2023, an acting official continues to carry out the duties.",
    )
    c = one(
        "The National Cyber Director resigned in February 2023 and, as of June 2023, an acting "
        "official carries out the duties.",
        *texts,
    )
    assert c.verdict == "supported"
    c = one("As of March 2023, an acting official carries out the duties.", *texts)
    assert c.verdict != "supported"


# Rules for unseen claims ---------------------------------------------------------------------


def test_a_stated_limit_is_the_limit_itself() -> None:
    text = "The trustee may hold the meeting open for a reasonable time, not to exceed 120 days."
    assert one("The meeting may be held open for up to 120 days.", text).verdict == "supported"
    wrong = one("The meeting may be held open for up to 180 days.", text)
    assert wrong.verdict == "contradicted"
    assert [c.document_value for c in wrong.checks if c.kind == "number"] == ["120"]


def test_another_value_of_the_same_attribute_contradicts() -> None:
    text = "The trustee must transfer the fee to the operating account at least monthly."
    claim = one("The trustee must transfer the fee to the operating account at least weekly.", text)
    assert claim.verdict == "contradicted"
    assert "monthly" in claim.reason


def test_a_table_heading_gives_the_scale_and_the_row_its_value() -> None:
    table = (
        "Country | Population (millions) Area (km2) Capital | Official Language\n"
        "Austria | 8.9 | 83,879 | Vienna | German\n"
        "Czech Republic | 10.7 | 78,866 | Prague | Czech\n"
        "Denmark | 5.8 | 42,951 | Copenhagen | Danish"
    )
    assert one("Austria has about 9 million people.", table).verdict == "supported"
    denmark = one("Denmark has a population of 8.5 million.", table)
    assert denmark.verdict == "contradicted"
    assert [c.document_value for c in denmark.checks if c.kind == "number"] == ["5.8"]
    czech = one("The Czech Republic covers an area of 87,866 km².", table)
    assert czech.verdict == "contradicted"
    assert [c.document_value for c in czech.checks if c.kind == "number"] == ["78,866"]


def test_common_words_may_be_missing_but_not_the_word_a_claim_turns_on() -> None:
    text = "The trustee must submit the monthly expense report to the regional office."
    claim = "The trustee must send the monthly expense report to the regional office."
    assert one(claim, text).verdict == "supported"
    # The noun a phrase ends on is no light word, however common.
    swapped = "The trustee must submit the monthly expense report to the regional bank."
    assert one(swapped, text).verdict != "supported"
    demons = "Desire demons are cunning, and all demons fear them."
    assert (
        one("Desire demons are the most intelligent of all demons.", demons).verdict != "supported"
    )


def test_an_overreach_alone_is_unsupported() -> None:
    text = "The strategy identifies investments for four of the five pillars."
    claim = one("The strategy identifies investments for all five of its pillars.", text)
    assert claim.verdict == "unsupported"


def test_names_and_dates_alone_are_no_statement() -> None:
    text = "In 2001 Roberts played his last match for Wales, against Armenia."
    assert one("Roberts was named Wales captain in 2001.", text).verdict == "unsupported"


def test_the_documents_title_names_its_subject() -> None:
    text = "They ended the 2000-01 campaign in 15th place, six points above the relegation zone."
    claim = one("Norwich ended the 2000-01 campaign in 12th place.", text, label="norwich-city.txt")
    assert claim.verdict == "contradicted"
    assert "15th" in claim.reason


def test_a_sentence_referring_back_states_what_the_one_before_names() -> None:
    text = (
        "Lyrium is mined by the dwarves of Orzammar. In the Tevinter Imperium, it has been "
        "known to command a higher price than diamond."
    )
    claim = "In the Tevinter Imperium lyrium has been known to command a higher price than diamond."
    assert one(claim, text).verdict == "supported"


def test_a_slides_bullets_each_state_their_own_thing() -> None:
    slide = (
        "Adding a Bullet Slide\nFind the bullet slide layout\nUse _TextFrame.text for first "
        "bullet\nUse _TextFrame.add_paragraph() for subsequent bullets"
    )
    assert (
        one(
            "The slide says to use _TextFrame.add_paragraph() for subsequent bullets.", slide
        ).verdict
        == "supported"
    )
    assert (
        one("The slide says to use _TextFrame.text for subsequent bullets.", slide).verdict
        != "supported"
    )


def test_the_nearest_figure_is_the_documents_value() -> None:
    text = "Top-5 accuracy: DPR 65.2%, BM25 42.9%, ORQA 38.1%."
    claim = one("DPR reaches a top-5 accuracy of 62.5 percent.", text)
    assert claim.verdict == "contradicted"
    assert [c.document_value for c in claim.checks if c.kind == "number"] == ["65.2%"]


def test_numbers_count_the_same_thing_only_when_the_words_after_them_agree() -> None:
    text = "Roberts made 647 league appearances and scored 202 league goals in his career."
    claim = one(
        "Across his career Roberts scored 202 league goals in 647 league appearances.", text
    )
    assert claim.verdict == "supported"


@pytest.mark.parametrize(
    ("text", "year", "month", "day"),
    [
        ("0. Auflage, 31. Dezember 2016", 2016, 12, 31),
        ("publié le 3 mars 2021", 2021, 3, 3),
        ("el 5 de mayo de 2020", 2020, 5, 5),
    ],
)
def test_dates_in_german_french_and_spanish(text: str, year: int, month: int, day: int) -> None:
    d = find_dates(text)[0]
    assert (d.year, d.month, d.day) == (year, month, day)


def test_a_scale_word_after_a_or_half_a() -> None:
    assert values("home to about half a million slaves") == [5e5]
    assert values("killed more than a thousand people") == [1e3]
    half, whole = (find_numbers(t)[0] for t in ("about half a million", "nearly a million"))
    assert not matches(half, whole)


def test_a_sum_written_out_in_dollars_is_the_sum_with_the_sign() -> None:
    """ "a hundred dollars" is "$100": the currency word is the currency, not a word the
    passage must repeat; "pounds" stays what it counts (it may be a weight)."""
    dollars, sign = find_numbers("go above a hundred dollars")[0], find_numbers("exceed $100.")[0]
    assert (dollars.value, dollars.currency, dollars.noun) == (100, "USD", "")
    assert matches(dollars, sign)
    assert find_numbers("13 stone 10 pounds")[-1].noun != ""
    passage = "Gift cards may be bought for staff. Each card must not cost more than $100."
    ok = one("Each gift card for staff must not cost more than 100 dollars.", passage)
    assert ok.verdict == "supported", ok.reason
    assert all(ch.text != "dollars" for ch in ok.checks)
    usd = one("Each gift card for staff must not cost more than 100 USD.", passage)
    assert usd.verdict == "supported", usd.reason
    wrong = one("Each gift card for staff must not cost more than 300 dollars.", passage)
    assert wrong.verdict == "contradicted", wrong.reason
    assert "$100" in wrong.reason
