"""Group pages into chunks that each carry the edges of their neighbours as read-only context."""

import hashlib
import json

from f.core.models import Chunk


def _tail(text: str, chars: int) -> str:
    if len(text) <= chars:
        return text
    cut = text[-chars:]
    space = cut.find(" ")
    return cut[space + 1:] if 0 <= space < chars // 4 else cut


def _head(text: str, chars: int) -> str:
    if len(text) <= chars:
        return text
    cut = text[:chars]
    space = cut.rfind(" ")
    return cut[:space] if space > chars * 3 // 4 else cut


def content_hash(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]


def plan_chunks(texts: dict[int, str], chunk_pages: int, overlap_chars: int) -> list[Chunk]:
    """Consecutive runs of `chunk_pages` pages; overlap_chars of the pages either side ride along as context."""
    if chunk_pages < 1:
        raise ValueError("chunk_pages must be at least 1")
    numbers = sorted(texts)
    chunks = []
    for start in range(0, len(numbers), chunk_pages):
        pages = numbers[start:start + chunk_pages]
        before = texts.get(pages[0] - 1, "")
        after = texts.get(pages[-1] + 1, "")
        body = {p: texts[p] for p in pages}
        context_before = _tail(before, overlap_chars) if overlap_chars else ""
        context_after = _head(after, overlap_chars) if overlap_chars else ""
        digest = content_hash(body, context_before, context_after)
        chunks.append(Chunk(
            chunk_id=f"c{pages[0]:05d}-{digest[:8]}",
            pages=pages,
            text_by_page=body,
            context_before=context_before,
            context_after=context_after,
            content_hash=digest,
        ))
    return chunks
