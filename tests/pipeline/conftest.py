import httpx
import pytest

from embedded.samples import generate_matter
from embedded.simpool import default_sim_specs, pool_resource, run_sim_pool

MATTER = "M-2024-0137"


@pytest.fixture(scope="session")
def sample_docs(tmp_path_factory):
    """The demo's sample matter: six documents, some pages scanned, with ground truth."""
    return generate_matter(tmp_path_factory.mktemp("samples"), matter_id=MATTER)


@pytest.fixture
async def sim_pool():
    specs = default_sim_specs()
    async with run_sim_pool(specs) as backends:
        yield pool_resource(specs, backends), backends


async def served_requests(backends) -> int:
    async with httpx.AsyncClient(timeout=5) as client:
        stats = [(await client.get(b.stats_url)).json() for b in backends]
    return sum(s["requests"] for s in stats)
