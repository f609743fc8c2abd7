"""Copy-workflow benchmark: the export of a 300-word job, and variants written at once.

1. Export: a finished 300-word job (a real corpus text, a rewrite of it changing about one
   word in six, eight source passages, and the claim ledger computed by the real checker on
   both texts) exported as Markdown and as Word with tracked changes, against rendering the
   same job's Result JSON (`ResultOut.model_dump_json`) in the same run. Target: ≤ 200 ms.
2. Variants: `refine.variants.write` against the test suite's OpenAI-compatible server with
   a fixed latency per call (default 0.5 s): 1 variant, 3 and 5, through the real HTTP
   client. Three calls in sequence would take 3x; concurrent ones should take about 1x.

Run: .venv/bin/python -m bench.copy [--quick] [--latency 0.5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from typing import Any

from bench import CORPUS, banner, machine, ratio, table, write_results

WORDS = 300
PASSAGES = 8


def _job(words: int = WORDS) -> Any:
    from pitchcraft.grounding import Passage, check_claims, split_sentences
    from pitchcraft.jobs.models import Job
    from pitchcraft.refine.diff import word_diff
    from pitchcraft.refine.schemas import ResultOut

    raw = (CORPUS / "text" / "norwich-city.txt").read_text(errors="replace")
    prose = " ".join(line for line in raw.splitlines() if len(line) > 60)
    original = " ".join(prose.split()[:words])
    rewritten = " ".join(
        w.upper() if i % 6 == 3 else w for i, w in enumerate(original.split()) if i % 17 != 5
    )
    chunk = max(1, len(prose) // (PASSAGES + 1))
    texts = [prose[i * chunk : i * chunk + 900] for i in range(PASSAGES)]
    passages = [
        Passage(n=i + 1, text=t, label=f"norwich-city.txt, part {i + 1}")
        for i, t in enumerate(texts)
    ]
    claims = [c.as_dict() for c in check_claims(split_sentences(original)[:40], passages)]
    out_claims = [c.as_dict() for c in check_claims(split_sentences(rewritten)[:40], passages)]
    diff = word_diff(original, rewritten)
    now = datetime.now(UTC)
    variant = {
        "text": rewritten,
        "chars": len(rewritten),
        "within_limit": True,
        "claims": out_claims,
        "style": [],
        "diff": diff,
    }
    job = Job(
        id="bench-export",
        user_id=1,
        kind="refine",
        status="succeeded",
        payload={
            "marketing_text": original,
            "backgrounds": ["sport"],
            "template": "{{marketing_text}}",
        },
        result={
            "mode": "llm",
            "model": "bench",
            "refined_text": rewritten,
            "sources": [
                {
                    "n": p.n,
                    "document_id": "d",
                    "filename": "norwich-city.txt",
                    "page": None,
                    "label": p.label,
                    "snippet": p.text,
                    "score": 0.5,
                }
                for p in passages
            ],
            "claims": claims,
            "output_claims": out_claims,
            "variants": [variant, {**variant}, {**variant}],
            "diff": diff,
            "style": [],
            "length": {"chars": len(original), "max_chars": 3000, "over_by": 0},
            "channel": {
                "id": "linkedin-post",
                "name": "LinkedIn post",
                "max_chars": 3000,
                "guidance": "",
            },
        },
        created_at=now,
        started_at=now,
        finished_at=now,
    )
    return ResultOut.of(job), len(original.split()), len(claims) + len(out_claims)


def _median_ms(fn: Any, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def bench_export(runs: int) -> dict[str, Any]:
    from pitchcraft.exports.service import export

    result, words, claims = _job()
    export(result, "docx")  # the first build loads python-docx's template
    json_ms = _median_ms(result.model_dump_json, runs)
    md_ms = _median_ms(lambda: export(result, "md"), runs)
    docx_ms = _median_ms(lambda: export(result, "docx"), runs)
    size = len(export(result, "docx").content)
    return {
        "words": words,
        "claims": claims,
        "diff_ops": len(result.diff),
        "result_json_ms": round(json_ms, 2),
        "markdown_ms": round(md_ms, 2),
        "docx_ms": round(docx_ms, 2),
        "docx_bytes": size,
        "markdown_over_json": round(ratio(md_ms, json_ms), 1),
        "docx_over_json": round(ratio(docx_ms, json_ms), 1),
    }


def bench_variants(latency: float, runs: int) -> dict[str, Any]:
    from pitchcraft.llm.openai import OpenAIChat
    from pitchcraft.refine import variants
    from pitchcraft.refine.runner import visible_answer
    from tests.llm_server import FakeLLM

    out: dict[str, Any] = {"latency_s": latency}
    with FakeLLM(latency=latency) as fake:
        chat = OpenAIChat(fake.base_url, None, "fake-model", max_retries=0, timeout=30)
        try:
            for count in (1, 3, 5):
                walls = []
                for _ in range(runs):
                    t = time.perf_counter()
                    variants.write(
                        chat,
                        [{"role": "user", "content": "[1] a.txt: Acme Shield stops ransomware."}],
                        count=count,
                        max_chars=None,
                        channel="",
                        visible=visible_answer,
                        progress=lambda texts: True,
                        every_s=0.05,
                    )
                    walls.append(time.perf_counter() - t)
                out[f"wall_s_{count}"] = round(statistics.median(walls), 3)
        finally:
            chat.close()
    out["three_over_one"] = round(ratio(out["wall_s_3"], out["wall_s_1"]), 2)
    out["five_over_one"] = round(ratio(out["wall_s_5"], out["wall_s_1"]), 2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--latency", type=float, default=0.5, help="the server's seconds per call")
    args = parser.parse_args(argv)
    banner("Export of a 300-word job")
    export_runs = 10 if args.quick else 40
    e = bench_export(export_runs)
    print(
        table(
            ["what", "median ms", "x Result JSON"],
            [
                ["Result JSON (baseline)", e["result_json_ms"], 1.0],
                ["Markdown export", e["markdown_ms"], e["markdown_over_json"]],
                ["Word export (tracked changes)", e["docx_ms"], e["docx_over_json"]],
            ],
        )
    )
    print(
        f"{e['words']} words, {e['claims']} claims, {e['diff_ops']} diff operations, "
        f"docx {e['docx_bytes']:,} bytes"
    )
    banner(f"Variants against a server answering after {args.latency} s")
    v = bench_variants(args.latency, 2 if args.quick else 5)
    print(
        table(
            ["variants", "wall s", "x one call"],
            [
                [1, v["wall_s_1"], 1.0],
                [3, v["wall_s_3"], v["three_over_one"]],
                [5, v["wall_s_5"], v["five_over_one"]],
            ],
        )
    )
    path = write_results("copy", {"machine": machine(), "export": e, "variants": v})
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
