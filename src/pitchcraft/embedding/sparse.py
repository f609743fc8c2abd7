"""BM25 sparse vectors with Qdrant Edge's `Bm25` (pure Rust, no model, no network).

A document becomes term-frequency weights (k, b, avg_len); a query becomes weight 1.0
per distinct term. The index multiplies in the IDF (the "bm25" sparse vector is created
with the IDF modifier), computed over the user's own collection, so the score is BM25.
Token ids are hashes of the normalised tokens: changing the settings below changes the
ids, so documents indexed before must be re-indexed.

The settings must work for English and German and leave other scripts intact:

* Word tokenizer: splits on anything but letters and digits, keeps numbers and codes
  ("Q3", "2024", "ACME-42" -> "acme", "42"); Korean and Arabic are space-delimited and
  come through as whole words. (The Multilingual tokenizer segments CJK but drops bare
  numbers, which matter more in marketing copy: prices, model numbers, years.)
* Lowercase and ASCII folding: "Straße" = "strasse", "Geschäftsführer" =
  "Geschaftsfuhrer", "résumé" = "resume"; folding leaves Hangul and Arabic unchanged.
* No stemmer: a Snowball stemmer is for one language and mis-stems the other; the dense
  embedding covers inflection and paraphrase, the sparse side is for exact terms.
* No stopwords: English and German lists together drop real words of the other language
  ("war", "will", "die", "man", "also"); the IDF modifier already gives words that occur
  in nearly every chunk a weight near zero, in whatever language.
"""

from __future__ import annotations

import qdrant_edge as qe

from pitchcraft.vectors.base import SparseVec


def default_config() -> qe.Bm25Config:
    return qe.Bm25Config(
        tokenizer=qe.TokenizerType.Word,
        lowercase=True,
        ascii_folding=True,
        stemmer=qe.DisabledStemmer(),
        stopwords=qe.StopwordsSet(),
    )


class Bm25Encoder:
    """SparseEncoder with Qdrant Edge's BM25. Stateless and thread-safe."""

    def __init__(self, config: qe.Bm25Config | None = None) -> None:
        self._model = qe.Bm25(config if config is not None else default_config())

    def encode_document(self, text: str) -> SparseVec:
        return _convert(self._model.embed_document(text))

    def encode_query(self, text: str) -> SparseVec:
        return _convert(self._model.embed_query(text))


def _convert(vector: qe.SparseVector) -> SparseVec:
    return SparseVec(indices=list(vector.indices), values=[float(v) for v in vector.values])
