"""What the API and the pages show of a document."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from pitchcraft.documents.enrich import shown_progress, shown_state
from pitchcraft.documents.models import Document
from pitchcraft.documents.sources import InContext


class DocumentOut(BaseModel):
    id: str
    filename: str
    file_type: str
    size: int
    file_size: int = Field(description="The same as `size` (the original system's name).")
    status: str
    error: str | None
    progress: float
    pages: int | None
    chunks: int
    notes: str | None
    created_at: datetime
    indexed_at: datetime | None
    # In an upload's answer: the id of the document that already holds this content.
    duplicate_of: str | None = None
    multilingual: Literal["pending", "running", "done", "off"] = Field(
        default="off",
        description=(
            "Multilingual search for this document's passages (e5 vectors added after it is "
            "indexed, in the background): pending, running, done, or off (MULTILINGUAL_SEARCH "
            "is off, the model cannot run on this server, or the document failed). The "
            "document is searchable meanwhile."
        ),
    )
    multilingual_progress: float = Field(
        default=0.0, description="The share of its passages that have multilingual vectors."
    )

    @classmethod
    def of(
        cls, d: Document, *, duplicate_of: str | None = None, multilingual: bool = True
    ) -> DocumentOut:
        """`multilingual`: whether multilingual search is active (multilingual_active)."""
        state = shown_state(d, multilingual)
        return cls(
            id=d.id,
            filename=d.filename,
            file_type=d.file_type,
            size=d.size,
            file_size=d.size,
            status=d.status,
            error=d.error,
            progress=round(d.progress, 4),
            pages=d.pages,
            chunks=d.chunks,
            notes=d.notes,
            created_at=d.created_at,
            indexed_at=d.indexed_at,
            duplicate_of=duplicate_of,
            multilingual=state if state in ("pending", "running", "done") else "off",
            multilingual_progress=shown_progress(d, multilingual),
        )


class PassageOut(BaseModel):
    chunk_index: int
    text: str
    focus: bool
    page: int | None
    section: str | None


class PassageContextOut(BaseModel):
    """A passage and its neighbours, in document order; `focus` marks the passage asked for."""

    document_id: str
    filename: str
    chunk_index: int
    passages: list[PassageOut]

    @classmethod
    def of(cls, c: InContext) -> PassageContextOut:
        return cls(
            document_id=c.document_id,
            filename=c.filename,
            chunk_index=c.chunk_index,
            passages=[
                PassageOut(
                    chunk_index=p.chunk_index,
                    text=p.text,
                    focus=p.focus,
                    page=p.page,
                    section=p.section,
                )
                for p in c.passages
            ],
        )


class SampleExampleOut(BaseModel):
    """Marketing copy about the sample documents' product; two of its figures are wrong on
    purpose, so the check has something to find."""

    marketing_text: str
