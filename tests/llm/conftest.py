"""Fixtures for the LLM client tests (helpers live in llm_helpers.py)."""

import pytest


@pytest.fixture
def http_mock():
    import respx

    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield router
