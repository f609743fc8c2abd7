"""From where a sentence's items were found to a verdict, a reason, evidence and checks."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pitchcraft.grounding.lexicon import STOPWORDS, light, stem
from pitchcraft.grounding.model import Check, Claim, Evidence, Verdict
from pitchcraft.grounding.rules import (
    negated_words,
    states_negation,
    states_obligation,
    states_option,
    states_unnegated,
)
from pitchcraft.grounding.text import quote_span

if TYPE_CHECKING:
    from pitchcraft.grounding.extract import Item, Parsed
    from pitchcraft.grounding.state import UnitMatch


def _where(m: UnitMatch) -> str:
    return m.passage.label or f"Passage {m.passage.n}"


def _listing(texts: list[str]) -> str:
    texts = list(dict.fromkeys(texts))
    if len(texts) <= 1:
        return "".join(texts)
    return ", ".join(texts[:-1]) + " and " + texts[-1]


def _statement(text: str, items: list[Item]) -> str:
    """The sentence as the object of "Nothing in your documents states ..."."""
    s = text.strip().rstrip(".!?")
    starts_with_name = any(it.kind == "name" and it.start == 0 for it in items)
    first = s.split(" ", 1)[0]
    if starts_with_name or first.isupper() or any(c.isupper() for c in first[1:]):
        return s
    return s[:1].lower() + s[1:]


def evidence_for(m: UnitMatch, idxs: list[int]) -> Evidence:
    spans = [(m.hits[i].start, m.hits[i].end) for i in idxs if i in m.hits]
    spans += [(m.conflicts[i].start, m.conflicts[i].end) for i in idxs if i in m.conflicts]
    return Evidence(m.passage.n, quote_span(m.an, m.unit.start, m.unit.end, spans))


def _checks(
    items: list[Item], hits: dict[int, str | None], conflicts: dict[int, str]
) -> list[Check]:
    out = []
    for idx, item in enumerate(items):
        value = conflicts.get(idx) if idx in conflicts else hits.get(idx)
        if item.kind == "number":
            out.append(Check("number", item.text, idx in hits, value))
        elif item.kind == "date":
            out.append(Check("date", item.text, idx in hits, value))
        elif item.kind == "name":
            # A name or word has a document value only where the document says another.
            out.append(Check("name", item.text, idx in hits, conflicts.get(idx)))
        else:
            out.append(Check("term", item.text, idx in hits, conflicts.get(idx)))
    return out


def decide(
    sentence: str,
    parsed: Parsed,
    found: list[UnitMatch],
    subject_ok: dict[int, bool],
    main_names: set[int],
    titled: set[int] | None = None,
) -> Claim:
    items = parsed.items
    content = [i for i, it in enumerate(items) if not it.subject]
    if not content:
        return Claim(
            sentence,
            "unsupported",
            "This sentence states nothing your documents could back.",
            [],
            _checks(items, {}, {}),
        )
    valid = [m for m in found if not m.negated and any(not items[i].subject for i in m.hits)]
    valid += [m for m in found if not m.negated and m.conflicts and m not in valid]
    negated = [m for m in found if m.negated]
    best = max(valid, key=lambda m: m.score, default=None)

    # A passage that states the same thing negated ("failed to", "just missed out").
    for m in negated:
        covered = [i for i in content if i in m.hits or i in m.negated_hits]
        if len(covered) == len(content) and (best is None or m.score >= best.score):
            m.hits.update(m.negated_hits)
            quote = evidence_for(m, covered)
            return Claim(
                sentence,
                "contradicted",
                f"{_where(m)} says otherwise: \u201c{quote.quote}\u201d.",
                [quote],
                _checks(items, {}, {i: quote.quote for i in covered[:1]}),
            )

    hits: dict[int, str | None] = {}
    conflicts: dict[int, str] = {}
    used: list[tuple[UnitMatch, list[int]]] = []
    src: dict[int, UnitMatch] = {}  # the unit each hit or conflict comes from
    if best is not None:
        mine = [i for i in best.hits if not items[i].subject]
        for i in mine:
            hits[i] = best.hits[i].value
            src[i] = best
        # A different value in a sentence about someone else is no contradiction.
        elsewhere = best.rivals and any(
            it.subject and i not in best.hits and i not in (titled or ())
            for i, it in enumerate(items)
        )
        for i, h in best.conflicts.items():
            if i not in hits and not elsewhere:
                conflicts[i] = h.value or ""
                src[i] = best
        used.append((best, mine + list(best.conflicts)))
        # A clause with an item found in the best sentence must be found there entirely.
        settled = {items[i].clause for i in mine} | {items[i].clause for i in best.conflicts}
        for m in sorted(valid, key=lambda m: -m.score):
            if m is best:
                continue
            own = [i for i in m.hits if not items[i].subject]
            new = [i for i in own if i not in hits and items[i].clause not in settled]
            # Another sentence counts only where it states two of the claim's items itself.
            if new and len(own) >= 2:
                for i in new:
                    hits[i] = m.hits[i].value
                    src[i] = m
                    conflicts.pop(i, None)
                used.append((m, new))
        # A number no sentence states rightly may be stated wrongly in one that states what
        # it counts ("200 laptops" for "300 laptops").
        for m in valid:
            if m is best or not any(not items[i].subject for i in m.hits):
                continue
            for i, h in m.conflicts.items():
                if i not in hits and i not in conflicts and items[i].num is not None:
                    conflicts[i] = h.value or ""
                    src[i] = m
                    used.append((m, [i, *m.hits]))
    for i, ok in subject_ok.items():
        # The subject may be named in another passage, unless the sentence that states the
        # facts names someone else.
        if best is not None and (i in best.hits or (ok and not best.rivals)):
            hits[i] = None
    if best is not None and not best.rivals:
        # The documents' own main name (in most passages, and in this one) need not be
        # repeated in the sentence that states the fact.
        for i in main_names:
            if i not in hits and i not in conflicts:
                hits[i] = None
    for i in titled or ():
        # Named in the title of the document that states the rest.
        if i not in hits and i not in conflicts and best is not None:
            hits[i] = None
    for i in list(conflicts):
        if i in hits:
            del conflicts[i]
    # A word whose opposite the best sentence states, beside everything else stated there.
    if best is not None and not conflicts:
        opposite = [i for i in content if i not in hits and i in best.opposites]
        rest = [i for i in content if i not in opposite]
        unstated = [i for i in rest if i not in hits]
        rest_terms = [i for i in rest if items[i].kind == "term" and not items[i].hard]
        if (
            opposite
            and len(rest) >= 1
            and (not unstated or _light_gap(items, unstated, rest_terms, list(hits), parsed.text))
        ):
            for i in opposite:
                conflicts[i] = best.opposites[i].value or ""
                best.conflicts[i] = best.opposites[i]
    evidence = [evidence_for(m, idxs) for m, idxs in used]
    evidence = list(dict.fromkeys(evidence))
    checks = _checks(items, hits, conflicts)
    negated_items = {i for m in found for i in m.negated_hits if i not in hits}
    # A number stated rightly in another sentence than the wrong one is a separate fact
    # ("3 trucks for 15 hours" beside "300 laptops"); in the same sentence it is one fact
    # ("60 goals in 142 games").
    apart = [
        i
        for i in hits
        if (num := items[i].num) is not None
        and not num.ordinal
        and all(src.get(i) is not src.get(c) for c in conflicts)
    ]
    verdict, reason = _verdict(
        parsed.text, sentence, items, content, hits, conflicts, used, negated_items, apart
    )
    # The passage sentences that state the rest of a "supported" claim.
    said = [m.an.text[m.unit.start : m.unit.end] for m, _ in used]
    if verdict == "supported" and states_negation(parsed.text) and evidence:
        # "did not issue", "failed to issue": the passage that states the rest must say so too.
        # The passage may negate something else ("encouraged to follow … but these are not
        # considered mandatory" against "not encouraged to follow").
        denied = negated_words(parsed.text)
        stated_plainly = any(
            states_unnegated(w, t) and w not in negated_words(t) for w in denied for t in said
        )
        if stated_plainly or not any(states_negation(t) for t in said):
            return Claim(
                sentence,
                "contradicted",
                f"{_where(used[0][0])} states it without the negation: "
                f"\u201c{evidence[0].quote}\u201d.",
                evidence,
                checks,
            )
    # "required to follow the Practice Tips" where the handbook says they are "encouraged"
    # and "not considered mandatory": the obligation is the claim.
    if (
        verdict == "supported"
        and evidence
        and states_obligation(parsed.text)
        and not any(states_obligation(t) for t in said)
    ):
        optional = any(states_option(t) for t in said)
        return Claim(
            sentence,
            "contradicted" if optional else "partial",
            f"{_where(used[0][0])} "
            + ("leaves it optional" if optional else "does not say it is required")
            + f": \u201c{evidence[0].quote}\u201d.",
            evidence,
            checks,
        )
    if verdict == "unsupported":
        evidence = []
    return Claim(sentence, verdict, reason, evidence, checks)


def _noun_after(item: Item, text: str) -> re.Match[str] | None:
    """The word after a number in the sentence, when it is what the number counts."""
    if item.num is None or not item.num.noun:
        return None
    m = re.match(r"\s+([^\W\d_][\w'-]*)", text[item.end :])
    return m if m and stem(m.group(1)) == item.num.noun else None


def _with_noun(value: str, item: Item, text: str) -> str:
    """The document's value with what the sentence counts: "20,000 bottles", not "20,000"."""
    m = _noun_after(item, text)
    return f"{value} {m.group(1)}" if m and not value.endswith(m.group(1)) else value


def _shown(idxs: list[int], items: list[Item], text: str) -> str:
    """Items as the sentence has them, a number with what it counts ("15 hours")."""
    nouns = set()
    for i in idxs:
        m = _noun_after(items[i], text)
        if m:
            nouns.add(items[i].end + m.start(1))
    return _listing(
        [
            _with_noun(items[i].text, items[i], text)
            for i in idxs
            if not (items[i].kind == "term" and items[i].start in nouns)
        ]
    )


_IDENTIFIED = re.compile(
    r"(?:chapter|section|article|part|title|form|rule|page|level|tier|phase|version|"
    r"pillar|step|class|grade|room|no|number)\.?\s*$",
    re.IGNORECASE,
)


def _identifier(item: Item, text: str) -> bool:
    """A number that names something ("chapter 13") rather than counting it."""
    return item.num is not None and bool(
        _IDENTIFIED.search(text[max(0, item.start - 12) : item.start])
    )


def _clause_stated(items: list[Item], content: list[int], hit: list[int]) -> bool:
    """One clause of the sentence is stated nearly whole (two words or more, at most one of
    its words missing)."""
    for clause in {items[i].clause for i in hit}:
        mine = [i for i in content if items[i].clause == clause]
        found = [i for i in mine if i in hit]
        if len(found) >= 2 and len(mine) - len(found) <= 1 and len(mine) < len(content):
            return True
    return False


def _leads_on(item: Item, text: str) -> bool:
    """The word is followed by more of its clause (a preposition, an article, a figure): a verb
    or a modifier ("built on", "carried out the"), not the noun a phrase ends on ("smokeless
    iron.")."""
    nxt = re.match(r"\s*([^\W\d_][\w'-]*|\d)?", text[item.end :])
    word = nxt.group(1) if nxt else None
    return word is not None and (word[0].isdigit() or word.lower() in STOPWORDS)


def _light_gap(
    items: list[Item], missing: list[int], terms: list[int], hit: list[int], text: str
) -> bool:
    """Only a few common words are missing ("built on five pillars" for "through five
    pillars"), from clauses whose other content is stated, beside at least three stated words."""
    if not missing or len(terms) < 3 or len(missing) > (len(terms) + 1) // 3:
        return False
    # Three of the sentence's own words stated, beyond its names and figures.
    if len([i for i in hit if items[i].kind == "term" and not items[i].hard]) < 3:
        return False
    if not all(light(items[i].text) and not items[i].hard for i in missing):
        return False
    if not all(_leads_on(items[i], text) for i in missing):
        return False
    stated_clauses = {items[i].clause for i in hit}
    return all(items[i].clause in stated_clauses for i in missing)


def _verdict(
    text: str,
    sentence: str,
    items: list[Item],
    content: list[int],
    hits: dict[int, str | None],
    conflicts: dict[int, str],
    used: list[tuple[UnitMatch, list[int]]],
    negated: set[int],
    apart: list[int],
) -> tuple[Verdict, str]:
    where = _where(used[0][0]) if used else "Your documents"
    # A phrase whose head word is missing states nothing ("largest private sector employer").
    heads: dict[int, int] = {}
    for i in content:
        if items[i].kind == "term":
            heads[items[i].phrase] = i
    for i in content:
        it = items[i]
        if it.kind == "term" and i in hits and heads.get(it.phrase, i) not in hits:
            head = heads[it.phrase]
            if head not in conflicts and not items[head].hard and not light(items[head].text):
                del hits[i]
    hit = [i for i in content if i in hits]
    missing = [i for i in content if i not in hits and i not in conflicts]
    missing += [i for i in range(len(items)) if items[i].subject and i not in hits]
    substantive = [i for i in hit if items[i].kind != "name" and not items[i].hard]
    if conflicts:
        wrong = _listing([items[i].text for i in conflicts])
        value = _listing([_with_noun(v, items[i], text) for i, v in conflicts.items() if v])
        reason = f"{where} says {value}, not {wrong}."
        clauses = {items[i].clause for i in conflicts}
        beside = apart + [
            i
            for i in substantive + [i for i in hit if items[i].kind == "name"]
            if items[i].clause not in clauses
        ]
        # The right part must be a fact of its own: a figure, or a word beside another that
        # says something ("trucks ... for 25 hours" is the one fact, wrongly).
        figures = [
            i
            for i in beside
            if items[i].kind in ("number", "date") and not _identifier(items[i], text)
        ]
        words = [i for i in beside if items[i].kind == "term" and not items[i].hard]
        named = [i for i in beside if items[i].kind == "name"]
        if figures or (words and len(words) + len(named) >= 2):
            right = _shown(beside, items, text)
            return "partial", f"{where} states {right}, but it says {value}, not {wrong}."
        return "contradicted", reason
    if not hit or not substantive:
        return "unsupported", f"Nothing in your documents states {_statement(sentence, items)}."
    soft_terms = [i for i in content if items[i].kind == "term" and not items[i].hard]
    quantities = [i for i in hit if items[i].kind == "number" and not _identifier(items[i], text)]
    if soft_terms and not any(i in hits for i in soft_terms) and not quantities:
        # Names and dates alone set the scene; what the sentence says of them is not stated
        # ("Roberts was named Wales captain in 2001").
        return "unsupported", f"Nothing in your documents states {_statement(sentence, items)}."
    missing_clauses = {items[i].clause for i in missing}
    whole_clause = any(
        items[i].clause not in missing_clauses for i in substantive
    )  # another clause is stated in full: one right fact beside the overreach is partial
    if missing and all(items[i].hard for i in missing) and not whole_clause:
        # Only the overreach is missing ("all five pillars" where four of the five are).
        lacking = _listing([items[i].text for i in missing])
        return "unsupported", f"Nothing in your documents states \u201c{lacking}\u201d here."
    # A word a passage states only negated ("not a complete statement") is never let off.
    hard_missing = [i for i in missing if items[i].kind != "term" or items[i].hard or i in negated]
    soft_missing = [i for i in missing if i not in hard_missing]
    terms = [i for i in content if items[i].kind == "term" and not items[i].hard]
    if (
        not hard_missing
        and len(soft_missing) <= len(terms) // 6
        and all(_leads_on(items[i], text) for i in soft_missing)
    ):
        # A long sentence may word one thing its own way, but not the noun it ends on.
        return "supported", f"{where} states this."
    if not hard_missing and _light_gap(items, soft_missing, terms, hit, text):
        return "supported", f"{where} states this."
    numbers = [
        i
        for i in content
        if items[i].kind in ("number", "date") and not _identifier(items[i], text)
    ]
    found_weight = sum(items[i].weight for i in hit)
    total_weight = sum(items[i].weight for i in content)
    if numbers and not any(i in hits for i in numbers) and found_weight < 0.5 * total_weight:
        return "unsupported", f"Nothing in your documents states {_statement(sentence, items)}."
    facts = [
        i for i in hit if items[i].kind in ("number", "date") and not _identifier(items[i], text)
    ]
    missing_weight = sum(items[i].weight for i in missing)
    if (
        found_weight < 2
        or (not facts and len(substantive) < 2)
        or (not facts and found_weight < missing_weight and not _clause_stated(items, content, hit))
    ):
        return "unsupported", f"Nothing in your documents states {_statement(sentence, items)}."
    right = _shown(hit, items, text)
    lacking = _shown(missing, items, text)
    return "partial", f"{where} states {right}, but nothing in your documents states {lacking}."
