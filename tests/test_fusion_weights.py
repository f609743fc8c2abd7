"""The fusion weights a question in another language gets: e5's list counts more and
English-trained MiniLM's less (vectors/fusion.py FOREIGN_QUERY_WEIGHTS)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pitchcraft.search.relevance import foreign_query
from pitchcraft.vectors.base import DENSE, DENSE_MULTI, SPARSE, Hit, SparseVec
from pitchcraft.vectors.fusion import FOREIGN_QUERY_WEIGHTS, WEIGHTS, hybrid_search


def _hit(doc: str, score: float) -> Hit:
    return Hit(
        document_id=doc,
        filename=f"{doc}.txt",
        page=None,
        section=None,
        chunk_index=0,
        text=f"passage of {doc}",
        score=score,
    )


# MiniLM ranks "minilm" first and "e5" 7th; e5 ranks "e5" first and "minilm" 4th.
LISTS = {
    DENSE: ["minilm", "f1", "f2", "f3", "f4", "f5", "e5"],
    DENSE_MULTI: ["e5", "f1", "f2", "minilm", "f3", "f4", "f5"],
}


def _search(weights: Any) -> list[str]:
    asked: list[str] = []

    def request(using: str, vector: Sequence[float] | SparseVec, candidates: int) -> str:
        asked.append(using)
        return using

    def run_batch(requests: list[str]) -> list[list[Hit]]:
        return [[_hit(d, 0.9 - 0.01 * i) for i, d in enumerate(LISTS[r])] for r in requests]

    hits = hybrid_search(
        run_batch, request, [1.0], SparseVec([], []), 2, multi=[1.0], weights=weights
    )
    assert asked == [DENSE, DENSE_MULTI]  # no BM25 terms: no BM25 list
    return [h.document_id for h in hits]


def test_the_default_weights_put_minilm_first_the_foreign_ones_e5() -> None:
    assert _search(None)[0] == "minilm"
    assert _search(WEIGHTS)[0] == "minilm"
    assert _search(FOREIGN_QUERY_WEIGHTS)[0] == "e5"
    assert FOREIGN_QUERY_WEIGHTS[DENSE_MULTI] > WEIGHTS[DENSE_MULTI]
    assert FOREIGN_QUERY_WEIGHTS[DENSE] < WEIGHTS[DENSE]
    assert FOREIGN_QUERY_WEIGHTS[SPARSE] == WEIGHTS[SPARSE]


def test_which_questions_count_as_foreign() -> None:
    assert foreign_query("Wie lange braucht der Solarrucksack, um ein Handy aufzuladen?")
    assert foreign_query("Comment éviter de télécharger plusieurs fois les mêmes paquets ?")
    assert foreign_query("¿Qué servidor de Debian se perdió cuando ardió el centro de datos?")
    assert not foreign_query("How long does the solar backpack take to charge a phone?")
    assert not foreign_query("Zorblax-9 price")  # no function words: English, the default
