"""References from step results to objects in the store, in the shape of Windmill's S3Object ({"s3": key}),
so operators can preview and download the object from the run page.

They resolve only when the workspace's object storage is the same container or bucket as the store:
the store resource says so with `workspace_storage` ("_default_" for the workspace's primary storage,
or a secondary storage's name). Without it, `link` gives None and summaries carry no reference.

Windmill's run page shows a preview and a download button when a result *itself* has a string "s3"
key (other keys may sit beside it), or is a list of such objects; an {"s3": ...} nested deeper is
shown as plain JSON. So a summary that should open its record puts the key at its top level:
`**link_fields(store, doc.result)`.
"""

from typing import NotRequired, TypedDict

from pydantic import BaseModel

from f.core.storage import BlobStore, check_name

PRIMARY = "_default_"


class S3Object(TypedDict):
    """wmill's S3Object, the part of it used here: the object's key, and which workspace storage holds it."""

    s3: str
    storage: NotRequired[str]


def s3_ref(path: str, storage: str | None = None) -> S3Object:
    """{"s3": path}, plus "storage" for a secondary workspace storage."""
    ref: S3Object = {"s3": check_name(path)}
    if storage and storage != PRIMARY:
        ref["storage"] = storage
    return ref


def link(store: BlobStore, path: str) -> S3Object | None:
    """A reference to `path` when the workspace's object storage is this store, else None."""
    return s3_ref(path, store.workspace_storage) if store.workspace_storage else None


def link_fields(store: BlobStore, path: str) -> dict[str, str]:
    """The reference as top-level fields to merge into a step's summary ({} when not linked)."""
    ref = link(store, path)
    return {key: str(value) for key, value in ref.items()} if ref else {}


class Linked(BaseModel):
    """A step summary that opens a record from the run page: set with `**link_fields(store, path)`."""

    s3: str | None = None
    storage: str | None = None
