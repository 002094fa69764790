"""Putting a user's file into a matter as a source blob, and reading back the name they gave it."""

import hashlib
from urllib.parse import quote, unquote

from f.core.layout import DocPaths
from f.core.storage import BlobStore, NotFound


class SourceChanged(RuntimeError):
    pass


async def add_source(store: BlobStore, doc: DocPaths, data: bytes, source_name: str) -> bool:
    """Create the document's source blob; False if the same content is already there. A different file
    under the same document id is refused: its finished results would no longer match it."""
    sha = hashlib.sha256(data).hexdigest()
    meta = {"source_name": quote(source_name, safe=" ()._-"), "sha256": sha}
    if await store.create(doc.source, data, metadata=meta):
        return True
    if (await store.metadata(doc.source)).get("sha256") != sha:
        raise SourceChanged(f"document {source_name}: a different file is already stored as {doc.source}; "
                            f"use a new matter id or document name")
    return False


async def source_name(store: BlobStore, doc: DocPaths) -> str:
    try:
        name = (await store.metadata(doc.source)).get("source_name")
    except NotFound:
        return doc.doc_id
    return unquote(name) if name else f"{doc.doc_id}.pdf"
