"""Chunking: page and section boundaries, sizes, overlap, order, and linear time."""

from __future__ import annotations

import itertools
import random
import re
import statistics
import time

import pytest

from pitchcraft.ingestion.chunking import chunk
from pitchcraft.ingestion.parsers import parse_file
from pitchcraft.ingestion.types import Block, Chunk, ParsedDocument
from tests.conftest import CORPUS

SIZE, OVERLAP = 1000, 150
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]


def flat(text: str) -> str:
    return " ".join(text.split())


def prose(rng: random.Random, chars: int, tag: str) -> str:
    """Sentences of random words, each word tagged (e.g. "p3.kappa") to tell where it came from."""
    out: list[str] = []
    length = 0
    while length < chars:
        words = [f"{tag}.{rng.choice(WORDS)}" for _ in range(rng.randint(5, 14))]
        sentence = " ".join(words).capitalize() + "."
        out.append(sentence)
        length += len(sentence) + 1
    return " ".join(out)


@pytest.fixture(scope="module")
def big_pdf() -> ParsedDocument:
    return parse_file(CORPUS / "large/DA-619p.pdf", "pdf", ocr=False, soffice=None)


def test_chunks_never_cross_pages_and_are_contiguous_passages() -> None:
    rng = random.Random(7)
    blocks = []
    for page in range(1, 8):
        for _ in range(rng.randint(1, 6)):
            blocks.append(Block(text=prose(rng, rng.randint(50, 2500), f"p{page}"), page=page))
    doc = ParsedDocument(blocks=blocks, pages=7)
    chunks = chunk(doc, size=SIZE, overlap=OVERLAP)
    for c in chunks:
        tags = set(re.findall(r"\bp(\d+)\.", c.text))
        assert tags == {str(c.page)}, f"chunk {c.index} on page {c.page} has words of {tags}"
        page_text = flat("\n".join(b.text for b in blocks if b.page == c.page))
        assert flat(c.text) in page_text
    assert {c.page for c in chunks} == set(range(1, 8))


def test_sizes_for_long_text() -> None:
    rng = random.Random(11)
    doc = ParsedDocument(blocks=[Block(text=prose(rng, 60_000, "x"), page=1)], pages=1)
    chunks = chunk(doc, size=SIZE, overlap=OVERLAP)
    lengths = [len(c.text) for c in chunks]
    assert all(len(c.text) <= SIZE * 1.2 for c in chunks), max(lengths)
    assert all(n >= 700 for n in lengths[:-1]), min(lengths[:-1])
    assert 60_000 / SIZE <= len(chunks) <= 60_000 / (SIZE - 2 * OVERLAP)
    # Every chunk starts and ends on a word: no cut-off "x.kapp".
    for c in chunks:
        assert re.fullmatch(r"[Xx]\.[a-z]+\.?", c.text.split()[0]), c.text[:20]
        assert re.fullmatch(r"x\.[a-z]+\.?", c.text.split()[-1]), c.text[-20:]


def test_overlap_between_consecutive_chunks_of_a_page() -> None:
    rng = random.Random(3)
    doc = ParsedDocument(blocks=[Block(text=prose(rng, 20_000, "x"), page=4)], pages=4)
    chunks = chunk(doc, size=SIZE, overlap=OVERLAP)
    assert len(chunks) > 10
    for before, after in itertools.pairwise(chunks):
        shared = _shared_edge(before.text, after.text)
        assert OVERLAP // 2 <= shared <= OVERLAP, (shared, before.index)
    no_overlap = chunk(doc, size=SIZE, overlap=0)
    assert sum(len(c.text) for c in no_overlap) < sum(len(c.text) for c in chunks)
    assert all(_shared_edge(a.text, b.text) < 20 for a, b in itertools.pairwise(no_overlap))


def _shared_edge(before: str, after: str) -> int:
    """Length of the longest end of `before` that `after` starts with."""
    for n in range(min(len(before), len(after)), 0, -1):
        if after.startswith(before[-n:]):
            return n
    return 0


def test_no_overlap_across_pages() -> None:
    rng = random.Random(5)
    blocks = [Block(text=prose(rng, 3000, f"p{p}"), page=p) for p in (1, 2)]
    chunks = chunk(ParsedDocument(blocks=blocks, pages=2), size=SIZE, overlap=OVERLAP)
    first_of_page_2 = next(c for c in chunks if c.page == 2)
    assert first_of_page_2.text.startswith(blocks[1].text[:40])


def test_index_order_and_document_order() -> None:
    rng = random.Random(9)
    blocks = [Block(text=prose(rng, rng.randint(100, 4000), f"b{i}")) for i in range(30)]
    chunks = chunk(ParsedDocument(blocks=blocks), size=SIZE, overlap=OVERLAP)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    first_block = [int(re.search(r"\bb(\d+)\.", c.text).group(1)) for c in chunks]  # type: ignore[union-attr]
    assert first_block == sorted(first_block)
    assert all(c.page is None for c in chunks)


def test_sections_kept_and_never_mixed() -> None:
    rng = random.Random(13)
    blocks = []
    for s in range(5):
        blocks.append(Block(text=f"Heading {s}", section=f"Heading {s}"))
        blocks += [Block(text=prose(rng, 1500, f"s{s}"), section=f"Heading {s}") for _ in range(2)]
    chunks = chunk(ParsedDocument(blocks=blocks), size=SIZE, overlap=OVERLAP)
    for c in chunks:
        assert c.section is not None
        number = c.section.split()[-1]
        assert set(re.findall(r"\bs(\d+)\.", c.text)) <= {number}
    assert [c.section for c in chunks if c.text.startswith("Heading")] == [
        f"Heading {s}" for s in range(5)
    ]


def test_a_heading_alone_goes_with_the_next_section() -> None:
    blocks = [
        Block(text="Chapter 1", section="Chapter 1", page=1),
        Block(text="1.1 Purpose", section="1.1 Purpose", page=1),
        Block(text="Why this exists.", section="1.1 Purpose", page=1),
        Block(text="Chapter 2", section="Chapter 2", page=1),  # the last thing on its page
        Block(text="Body of chapter 2.", section="Chapter 2", page=2),
    ]
    chunks = chunk(ParsedDocument(blocks=blocks, pages=2), size=SIZE, overlap=OVERLAP)
    assert [(c.page, c.section, c.text) for c in chunks] == [
        (1, "1.1 Purpose", "Chapter 1\n1.1 Purpose\nWhy this exists."),
        (1, "Chapter 2", "Chapter 2"),
        (2, "Chapter 2", "Body of chapter 2."),
    ]


def test_small_pages_each_get_a_chunk() -> None:
    blocks = [
        Block(text="Q3 results", page=1),
        Block(text="   ", page=2),
        Block(text="42", page=3),
        Block(text="Thank you!", page=4, section="End"),
    ]
    chunks = chunk(ParsedDocument(blocks=blocks, pages=4), size=SIZE, overlap=OVERLAP)
    assert [(c.page, c.text, c.section) for c in chunks] == [
        (1, "Q3 results", None),
        (3, "42", None),
        (4, "Thank you!", "End"),
    ]


def test_no_empty_chunks_and_odd_text() -> None:
    blocks = [
        Block(text="\n\n   \n", page=1),
        Block(text="x" * 5000, page=1),  # no boundary at all: hard cuts
        Block(text="。".join(["東京は日本の首都です"] * 300), page=2),  # CJK sentences, no spaces
        Block(text="\n".join(f"line {i}" for i in range(800)), page=3),
    ]
    chunks = chunk(ParsedDocument(blocks=blocks, pages=3), size=SIZE, overlap=OVERLAP)
    assert all(c.text.strip() for c in chunks)
    assert all(len(c.text) <= SIZE * 1.2 for c in chunks)
    assert "".join(c.text for c in chunks if c.page == 1).count("x") >= 5000
    assert {c.page for c in chunks} == {1, 2, 3}
    assert all(c.text.endswith("。") or c.text.endswith("す") for c in chunks if c.page == 2)


def test_settings_values_are_honoured() -> None:
    rng = random.Random(17)
    doc = ParsedDocument(blocks=[Block(text=prose(rng, 30_000, "x"), page=1)], pages=1)
    small = chunk(doc, size=400, overlap=50)
    large = chunk(doc, size=4000, overlap=400)
    assert max(len(c.text) for c in small) <= 480
    assert statistics.median(len(c.text) for c in large) > 3000
    assert len(small) > 4 * len(large)


@pytest.mark.timeout(120)
def test_large_pdf_chunks_in_linear_time(big_pdf: ParsedDocument) -> None:
    chars = big_pdf.char_count
    started = time.perf_counter()
    chunks = chunk(big_pdf, size=SIZE, overlap=OVERLAP)
    elapsed = time.perf_counter() - started
    print(f"chunked {chars:,} chars into {len(chunks)} chunks in {elapsed:.3f} s")
    assert chars > 1_500_000
    assert [c.index for c in chunks] == list(range(len(chunks)))
    pages = [c.page for c in chunks]
    assert pages == sorted(pages) and set(pages) == {b.page for b in big_pdf.blocks}
    assert all(len(c.text) <= SIZE * 1.2 and c.text.strip() for c in chunks)
    by_page: dict[int | None, str] = {}
    for b in big_pdf.blocks:
        by_page[b.page] = by_page.get(b.page, "") + "\n" + b.text
    flat_pages = {page: flat(text) for page, text in by_page.items()}
    assert all(flat(c.text) in flat_pages[c.page] for c in chunks)
    # A single 2-million-character block without structure: still one pass.
    rng = random.Random(1)
    huge = ParsedDocument(blocks=[Block(text=prose(rng, 2_000_000, "h"), page=1)], pages=1)
    started = time.perf_counter()
    huge_chunks = chunk(huge)
    print(f"chunked a 2M-char paragraph into {len(huge_chunks)} chunks in "
          f"{time.perf_counter() - started:.3f} s")  # fmt: skip
    assert len(huge_chunks) > 2000


def test_chunk_type(big_pdf: ParsedDocument) -> None:
    first = chunk(big_pdf)[0]
    assert isinstance(first, Chunk) and first.page == 1 and first.index == 0


def test_real_docx_sections() -> None:
    doc = parse_file(CORPUS / "large/handbook-872p.docx", "docx", ocr=False, soffice=None)
    chunks = chunk(doc, size=SIZE, overlap=OVERLAP)
    media = [c for c in chunks if c.section == "3. MEDIA AND THIRD-PARTY RECORDING"]
    assert media and "Representatives of the media are permitted" in flat(media[0].text)
    assert media[0].text.startswith("3. MEDIA AND THIRD-PARTY RECORDING")  # the heading itself
    assert len({c.section for c in chunks}) > 100
    assert all(len(c.text) <= SIZE * 1.2 for c in chunks)
