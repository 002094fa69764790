"""S3Object references: the key in a reference is the object's key in the bucket or container itself, which
is what Windmill's workspace object storage reads when it points at the same place."""

import pytest
from aiobotocore.session import get_session
from azure.storage.blob.aio import ContainerClient

from f.core.layout import DocPaths
from f.core.links import link, link_fields, s3_ref
from f.core.storage import InvalidPath, open_store

DOC = DocPaths("M-1", "letter")


def test_reference_shapes():
    assert s3_ref(DOC.result) == {"s3": "matters/M-1/letter/result.json"}
    assert s3_ref(DOC.result, "_default_") == {"s3": DOC.result}
    assert s3_ref(DOC.source, "matters") == {"s3": DOC.source, "storage": "matters"}
    with pytest.raises(InvalidPath):
        s3_ref("/matters/../x")


async def read_outside_the_store(config: dict, key: str) -> bytes:
    """The object by its key, through the service's own client, as another reader of the bucket would."""
    if config.get("kind") == "s3":
        async with get_session().create_client(
                "s3", region_name=config["region"], endpoint_url=config["endpoint_url"],
                aws_access_key_id=config["access_key_id"], aws_secret_access_key=config["secret_access_key"]) as s3:
            response = await s3.get_object(Bucket=config["bucket"], Key=key)
            async with response["Body"] as body:
                return await body.read()
    async with ContainerClient.from_connection_string(config["connection_string"], config["container"]) as c:
        return await (await c.download_blob(key)).readall()


async def test_links_point_at_the_object_when_the_workspace_storage_is_this_store(any_store_config):
    async with open_store(any_store_config, DOC.prefix, create_container=True) as store:
        await store.put(DOC.result, b'{"fields": {}}')
        assert link(store, DOC.result) is None and link_fields(store, DOC.result) == {}

    linked = dict(any_store_config, workspace_storage="_default_")
    async with open_store(linked, DOC.prefix) as store:
        ref = link(store, DOC.result)
        summary = {"doc_id": DOC.doc_id, "confidence": 0.9, **link_fields(store, DOC.result)}
    assert ref == {"s3": DOC.result} and summary["s3"] == DOC.result
    assert await read_outside_the_store(any_store_config, ref["s3"]) == b'{"fields": {}}'

    async with open_store(dict(any_store_config, workspace_storage="matters_store"), DOC.prefix) as store:
        assert link(store, DOC.source) == {"s3": DOC.source, "storage": "matters_store"}
