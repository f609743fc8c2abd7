"""The relevance floor: nonsense and off-topic queries find nothing (`no_match`), real
questions still find their page.

The end-to-end tests run the real parts: an app with the bundled MiniLM, Qdrant Edge and
the BM25 encoder, real corpus documents uploaded through the API."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pitchcraft.search.relevance import (
    E5_AT_FLOOR,
    E5_AT_FLOOR_OTHER_LANGUAGE,
    RELEVANCE_FLOOR,
    above_floor,
    content_words,
    e5_at_floor,
    matched,
    query_words,
    relevance,
)
from pitchcraft.search.service import Search, SearchOutcome
from pitchcraft.vectors.base import Hit, SparseVec
from pitchcraft.web.app import create_app
from tests.conftest import CORPUS, auth, make_settings, register
from tests.docs_helpers import upload, wait_final

DEV_SET = CORPUS.parent / "eval" / "retrieval-dev.jsonl"
OFFTOPIC = Path(__file__).resolve().parents[1] / "bench" / "data"
# Files of the corpus small enough to index here, and dev questions answered in them.
FILES = [
    "pdf/multicolumn.pdf",
    "pdf/multi-column-2p.pdf",
    "text/fake-text.txt",
    "text/fake-html.html",
    "text/norwich-city.txt",
    "pptx/fake-power-point-table.pptx",
]


def hit(text: str, similarity: float | None, score: float = 1.0, index: int = 0) -> Hit:
    return Hit("d", "d.txt", None, None, index, text, score, similarity)


# --- the score and the floor, without the model ---------------------------------------


def test_content_words_drop_function_words_in_english_and_german() -> None:
    assert content_words("How much does DPR beat BM25 on the top-5?") == [
        "dpr",
        "beat",
        "bm25",
        "top",
        "5",
    ]
    assert content_words("Kann man das Skript für Geld bekommen?") == ["skript", "geld", "bekommen"]
    assert content_words("?!?!") == []


def test_content_words_drop_french_and_spanish_function_words_and_elisions() -> None:
    assert content_words("Comment faire une pâte brisée sans beurre ?") == [
        "pate",
        "brisee",
        "beurre",
    ]
    assert content_words("Quelle crème choisir pour la peau d'un bébé ?") == [
        "creme",
        "choisir",
        "peau",
        "bebe",
    ]
    assert content_words("¿Cuánto tiempo hay que dejar la masa?") == [
        "tiempo",
        "hay",  # an English word too: kept
        "dejar",
        "masa",
    ]
    # English words that are French or Spanish function words elsewhere stay content words.
    assert content_words("the son of the era") == ["son", "era"]


def test_a_question_in_another_language_lets_e5_alone_reach_the_floor_sooner() -> None:
    assert e5_at_floor("How long does the backpack take to charge a phone?") == E5_AT_FLOOR
    assert e5_at_floor("blorf snargle wizzpop") == E5_AT_FLOOR  # no function words: strict
    for question in (
        "Wie lange braucht der Rucksack, um ein Handy aufzuladen?",
        "Combien de temps faut-il pour charger un téléphone ?",
        "¿Cuánto tarda la mochila en cargar un teléfono?",
    ):
        assert e5_at_floor(question) == E5_AT_FLOOR_OTHER_LANGUAGE, question
    assert E5_AT_FLOOR_OTHER_LANGUAGE < E5_AT_FLOOR
    # A passage sharing no words, far for MiniLM, close for e5 (between the two thresholds).
    between = (E5_AT_FLOOR + E5_AT_FLOOR_OTHER_LANGUAGE) / 2
    passage = Hit("d", "d.txt", None, None, 0, "Lädt in zwei Stunden.", 1.0, 0.05, None, between)
    groups = query_words("solar backpack charging time")
    assert above_floor(groups, [passage], e5_floor=E5_AT_FLOOR) == []
    assert above_floor(groups, [passage], e5_floor=E5_AT_FLOOR_OTHER_LANGUAGE) == [passage]


def test_matched_counts_words_and_word_starts() -> None:
    words = content_words("forge a blade from dragon bones")
    assert matched(words, "The smith forged blades. No dragons here.") == 3  # not "bones"
    assert matched(content_words("Straße"), "in der Strasse") == 1


def test_relevance_is_cosine_plus_the_share_of_content_words() -> None:
    groups = query_words("heron firewall rules")
    assert groups == [["heron", "firewall", "rules"]]
    assert relevance(groups, hit("Heron firewall", 0.3)) == pytest.approx(0.3 + 2 / 4)
    assert relevance(groups, hit("nothing", None)) is None


def test_a_text_of_several_claims_is_judged_by_its_best_matching_sentence() -> None:
    text = (
        "Our product protects your company from ransomware attacks. Call now! "
        "Our bakery sells the best sourdough bread in Lisbon."
    )
    groups = query_words(text)
    # The short sentence joins the one before it.
    assert groups == [
        ["product", "protects", "company", "ransomware", "attacks", "call"],
        ["bakery", "sells", "best", "sourdough", "bread", "lisbon"],
    ]
    passage = hit("Shield stops ransomware attacks on your company's laptops.", 0.25)
    assert relevance(groups, passage) == pytest.approx(0.25 + 3 / 7)
    # A question is one sentence: all its words count together.
    assert query_words("Is it ok? Yes") == [["ok", "yes"]]
    assert query_words("") == [[]]


def test_the_floor_keeps_fused_order_and_hits_without_similarity() -> None:
    words = query_words("heron firewall")
    hits = [
        hit("unrelated", 0.1, score=3.0, index=0),
        hit("the heron firewall", 0.2, score=2.0, index=1),
        hit("no similarity reported", None, score=1.5, index=2),
        hit("heron", 0.45, score=1.0, index=3),
    ]
    kept = above_floor(words, hits, RELEVANCE_FLOOR)
    assert [h.chunk_index for h in kept] == [1, 2, 3]


@dataclass
class FakeEmbedder:
    name: str = "fake"
    dim: int = 2
    calls: list[list[str]] | None = None

    def embed_query(self, text: str) -> list[float]:
        return self.embed_queries([text])[0]

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        if self.calls is not None:
            self.calls.append(list(texts))
        return [[1.0, 0.0] for _ in texts]


class FakeIndex:
    """Answers every query with the same two candidates: one passage about herons, one
    about nothing in particular."""

    def search(self, user_id: int, *, dense: Any, sparse: SparseVec, limit: int) -> list[Hit]:
        return [hit("weather report", 0.12, 2.0, 0), hit("Heron firewall rules", 0.3, 1.0, 1)]

    def term_rarity(self, user_id: int, terms: Sequence[int]) -> dict[int, float]:
        return {}  # every word as rare as can be: the unweighted share


class FakeSparse:
    def encode_query(self, text: str) -> SparseVec:
        return SparseVec([], [])


def test_find_and_find_many_apply_the_floor() -> None:
    calls: list[list[str]] = []
    embedder = FakeEmbedder(calls=calls)
    search = Search(
        index=lambda: FakeIndex(),  # type: ignore[arg-type,return-value]
        embedder=lambda: embedder,
        sparse=lambda: FakeSparse(),  # type: ignore[arg-type,return-value]
    )
    found = search.find(1, "heron firewall")
    heron = hit("Heron firewall rules", 0.3, 1.0, 1)
    assert found == SearchOutcome(hits=[heron], no_match=False, candidates=2)
    assert search.search(1, "heron firewall") == found.hits
    nothing = search.find(1, "blorf snargle")
    assert nothing.hits == [] and nothing.no_match and nothing.candidates == 2
    calls.clear()
    many = search.find_many(1, ["heron firewall", "blorf snargle", "firewall"])
    assert calls == [["heron firewall", "blorf snargle", "firewall"]]  # one batch
    assert [o.no_match for o in many] == [False, True, False]
    assert search.find_many(1, []) == []


# --- end to end: the real model, Qdrant Edge and corpus documents ----------------------


@dataclass
class World:
    client: TestClient
    token: str
    ids: dict[str, str]

    def search(self, query: str, backgrounds: Sequence[str] = (), limit: int = 5) -> Any:
        r = self.client.post(
            "/api/v1/search",
            headers=auth(self.token),
            json={"query": query, "backgrounds": list(backgrounds), "limit": limit},
        )
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    settings = make_settings(tmp_path_factory.mktemp("floor") / "data")
    with TestClient(create_app(settings)) as client:
        token = register(client, "floor@example.com")
        ids = {}
        for rel in FILES:
            (entry,) = upload(client, token, (Path(rel).name, (CORPUS / rel).read_bytes()))
            ids[rel] = entry["id"]
        for rel, doc_id in ids.items():
            assert wait_final(client, token, doc_id, timeout=600)["status"] == "indexed", rel
        yield World(client, token, ids)


def _queries(name: str) -> list[tuple[str, list[str]]]:
    rows = [json.loads(line) for line in (OFFTOPIC / name).read_text().splitlines() if line]
    return [(r["query"], r["backgrounds"]) for r in rows]


# A few of each kind from both sets, the holdout's never used to set the floor.
NOTHING = [
    *_queries("search-offtopic.jsonl")[::6],
    *_queries("search-offtopic-holdout.jsonl")[::4],
    *_queries("search-offtopic-multilingual.jsonl")[::5],
    *_queries("search-offtopic-multilingual-holdout.jsonl")[::5],
]


@pytest.mark.parametrize(("query", "backgrounds"), NOTHING)
def test_off_topic_and_nonsense_queries_find_nothing(
    world: World, query: str, backgrounds: list[str]
) -> None:
    assert world.search(query, backgrounds) == {"results": [], "no_match": True}


def _dev(ids: set[str]) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in DEV_SET.read_text().splitlines() if line]
    out = []
    for r in rows:
        expected = [e for e in r["expected"] if e["file"] in ids]
        if expected:
            out.append({**r, "expected": expected})
    return out


@pytest.mark.parametrize("item", _dev(set(FILES)), ids=lambda r: r["id"])
def test_dev_questions_still_find_their_page(world: World, item: dict[str, Any]) -> None:
    found = world.search(item["query"], item["backgrounds"])
    assert found["no_match"] is False
    expected = {(Path(e["file"]).name, e["page"]) for e in item["expected"]}
    words = item["must_contain"].lower().split()[:3]
    assert any(
        (r["filename"], r["page"] if any(p for _, p in expected) else None) in expected
        and " ".join(words) in " ".join(r["snippet"].lower().split())
        for r in found["results"]
    ), found


def test_the_repaired_text_is_what_search_returns(world: World) -> None:
    found = world.search("Iwan Roberts seasons at Norwich City")
    snippets = " ".join(r["snippet"] for r in found["results"])
    assert "1997\u20132004" in snippets and "\u00e2" not in snippets


def test_no_match_is_in_the_openapi_schema(world: World) -> None:
    schema = world.client.get("/openapi.json").json()["components"]["schemas"]["SearchOut"]
    assert set(schema["required"]) == {"results", "no_match"}
    assert schema["properties"]["no_match"]["type"] == "boolean"


def test_find_many_asks_e5_only_for_sentences_in_another_language() -> None:
    """A claim ledger's English sentences are searched with MiniLM and BM25 alone; a German
    one with e5 too (and its weights), all e5 vectors in one batch."""
    e5_calls: list[list[str]] = []
    searched: list[tuple[Any, Any]] = []

    class Multi:
        def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
            e5_calls.append(list(texts))
            return [[0.0, 1.0] for _ in texts]

    class Index(FakeIndex):
        def search(  # type: ignore[override]
            self,
            user_id: int,
            *,
            dense: Any,
            sparse: SparseVec,
            limit: int,
            multi: Any = None,
            weights: Any = None,
        ) -> list[Hit]:
            searched.append((multi, weights))
            return super().search(user_id, dense=dense, sparse=sparse, limit=limit)

    search = Search(
        index=lambda: Index(),  # type: ignore[arg-type,return-value]
        embedder=lambda: FakeEmbedder(),
        sparse=lambda: FakeSparse(),  # type: ignore[arg-type,return-value]
        multilingual=lambda: Multi(),  # type: ignore[arg-type,return-value]
    )
    german = "Die Firewall schützt das Netz und wurde im Jahr 2020 von der Firma eingeführt."
    english = ["The heron firewall blocks attacks.", "It was launched in 2020."]
    outcomes = search.find_many(1, [english[0], german, english[1]])
    assert len(outcomes) == 3
    assert e5_calls == [[german]]
    assert [m for m, _ in searched] == [None, [0.0, 1.0], None]
    assert searched[1][1] is not None  # the German sentence leans on e5
    # With no sentence in another language, e5 is not asked at all.
    e5_calls.clear()
    search.find_many(1, english)
    assert e5_calls == []
