"""The Word export: the copy as tracked changes over the original text, then the sources
and the claim ledger as tables.

python-docx writes the document; the revision marks it lacks are added as Word writes
them: `w:ins` and `w:del` around runs inside the paragraph (a deleted run's text in
`w:delText`), each with a unique `w:id`, `w:author` and `w:date`; a paragraph break that
is itself inserted or deleted is marked in the paragraph mark's properties
(`w:pPr/w:rPr/w:ins|w:del`). Word and LibreOffice then offer Accept and Reject."""

from __future__ import annotations

import io
import re
from datetime import UTC
from itertools import count

from docx import Document
from docx.document import Document as DocxDocument
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.oxml.text.paragraph import CT_P
from docx.oxml.xmlchemy import BaseOxmlElement

from pitchcraft.exports.common import (
    AUTHOR,
    copy_title,
    job_time,
    length_line,
    page_of,
    quotes_by_source,
    source_label,
    source_quote,
)
from pitchcraft.refine.schemas import ClaimOut, DiffOp, ResultOut

# Characters XML 1.0 cannot hold (a vertical tab copied out of a PDF, say): lxml refuses them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_safe(text: str) -> str:
    return _NOT_XML.sub(" ", text)


class _Revisions:
    def __init__(self, date: str) -> None:
        self.date = date
        self.ids = count(1)

    def mark(self, tag: str) -> BaseOxmlElement:
        el = OxmlElement(tag)
        el.set(qn("w:id"), str(next(self.ids)))
        el.set(qn("w:author"), AUTHOR)
        el.set(qn("w:date"), self.date)
        return el


def _run(text: str, *, deleted: bool = False) -> BaseOxmlElement:
    r = OxmlElement("w:r")
    t = OxmlElement("w:delText" if deleted else "w:t")
    t.text = _xml_safe(text)
    t.set(qn("xml:space"), "preserve")
    r.append(t)
    return r


def _mark_paragraph_end(p: CT_P, mark: BaseOxmlElement) -> None:
    p_pr = p.get_or_add_pPr()
    r_pr = p_pr.find(qn("w:rPr"))
    if r_pr is None:
        r_pr = OxmlElement("w:rPr")
        p_pr.append(r_pr)
    r_pr.append(mark)


def tracked_paragraphs(doc: DocxDocument, ops: list[DiffOp], revisions: _Revisions) -> None:
    """The diff as paragraphs of runs: equal text plain, the rest as revisions."""
    p = doc.add_paragraph()._p
    for op in ops:
        pieces = op.text.split("\n")
        for i, piece in enumerate(pieces):
            if piece:
                if op.op == "equal":
                    p.append(_run(piece))
                else:
                    wrapper = revisions.mark("w:ins" if op.op == "insert" else "w:del")
                    wrapper.append(_run(piece, deleted=op.op == "delete"))
                    p.append(wrapper)
            if i < len(pieces) - 1:
                if op.op != "equal":
                    _mark_paragraph_end(
                        p, revisions.mark("w:ins" if op.op == "insert" else "w:del")
                    )
                p = doc.add_paragraph()._p


# Styles are set by their ids in the default template: looking them up by name costs
# python-docx an XPath search over every style, most of the export's time.
HEADING = {1: "Heading1", 2: "Heading2", 3: "Heading3"}


def _styled(doc: DocxDocument, text: str, style_id: str) -> None:
    p = doc.add_paragraph(_xml_safe(text))._p
    p.get_or_add_pPr().get_or_add_pStyle().val = style_id


def _heading(doc: DocxDocument, text: str, level: int) -> None:
    _styled(doc, text, HEADING[level])


def _table(doc: DocxDocument, header: list[str], rows: list[list[str]]) -> None:
    table = doc.add_table(rows=len(rows) + 1, cols=len(header))
    table._tbl.tblPr.get_or_add_tblStyle().val = "TableGrid"
    for i, row in enumerate(table.rows):
        texts = header if i == 0 else rows[i - 1]
        for cell, text in zip(row.cells, texts, strict=True):
            # Plain runs built directly: python-docx's `run.text` parses every character.
            run = _run(" ".join(text.split()))
            if i == 0:
                r_pr = OxmlElement("w:rPr")
                r_pr.append(OxmlElement("w:b"))
                run.insert(0, r_pr)
            cell._tc.p_lst[0].append(run)


def _ledger(doc: DocxDocument, title: str, claims: list[ClaimOut]) -> None:
    _heading(doc, title, 3)
    _table(
        doc,
        ["Sentence", "Verdict", "Why", "Evidence"],
        [
            [
                c.text,
                c.verdict,
                c.reason,
                "; ".join(f"[{e.n}] “{e.quote}”" for e in c.evidence) or "—",
            ]
            for c in claims
        ],
    )


def render(r: ResultOut) -> bytes:
    at = job_time(r).astimezone(UTC)
    revisions = _Revisions(f"{at:%Y-%m-%dT%H:%M:%SZ}")
    doc = Document()
    props = doc.core_properties
    props.author = AUTHOR
    props.title = copy_title(r)
    props.created = at.replace(tzinfo=None)
    _heading(doc, copy_title(r), 1)
    intro = f"Job {r.job_id}, {at:%Y-%m-%d %H:%M} UTC. The changes from your original text are "
    intro += "tracked: accept or reject them in Word or LibreOffice."
    doc.add_paragraph(intro)
    if line := length_line(r):
        doc.add_paragraph(_xml_safe(line))
    tracked_paragraphs(doc, r.diff, revisions)
    if len(r.variants) > 1:
        _heading(doc, "Other variants", 2)
        for i, v in enumerate(r.variants[1:], start=2):
            state = "within the limit" if v.within_limit else "over the limit"
            _heading(doc, f"Variant {i} ({v.chars:,} characters, {state})", 3)
            for para in v.text.split("\n"):
                doc.add_paragraph(_xml_safe(para))
    if r.style:
        _heading(doc, "Glossary findings", 2)
        for f in r.style:
            fix = f" → “{f.suggestion}”" if f.suggestion else ""
            _styled(doc, f"{f.kind}: “{f.term}”{fix} in “{f.sentence}”", "ListBullet")
    _heading(doc, "Sources", 2)
    quotes = quotes_by_source(r)
    if r.sources:
        _table(
            doc,
            ["n", "Source", "Page", "Quote"],
            [
                [
                    "" if s.n is None else str(s.n),
                    source_label(s),
                    page_of(s),
                    source_quote(s, quotes),
                ]
                for s in r.sources
            ],
        )
    else:
        doc.add_paragraph("No passage of your documents was used.")
    _heading(doc, "Claim ledger", 2)
    _ledger(doc, "Your text", r.claims)
    if r.output_claims:
        _ledger(doc, "The refined copy", r.output_claims)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()
