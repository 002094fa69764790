"""`scripts/bench-llm`: this project's LLM pool client against the tools people use, on one simulated pool.

Scenario (one run, every client side by side, each against its own identical copy of the pool):
- a tier-1 "provisioned" Azure backend that throttles with `retry-after-ms`, and two tier-2
  pay-as-you-go backends that throttle with `Retry-After` seconds (sliding 10 s RPM windows);
- on every backend 2% 5xx and 1% hangs past the per-attempt timeout; tier 1 down (503) for 20 s
  in the middle of the run;
- open-loop Poisson arrivals at 0.5x, 1x and 2x the pool's capacity (averaged over the run, down
  window included), the same arrivals for every client;
- the same attempt budget (4), per-attempt timeout (3 s) and per-request deadline (20 s) for all.

Clients: `ours` (f.llm.client.LLMClient), `priority-lb` (openai-priority-loadbalancer as the
transport of the openai SDK), `litellm` (litellm.Router, `order` = tier), `single` (raw httpx to
tier 1 with a simple retry). The peers run in `.cache/bench-venv`, created on first use.
"""
