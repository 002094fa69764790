"""Chaos harness: the fault matrix of README.md ("Reliability and security"), run against the real pipeline.

Each scenario starts its own Azurite (blobs on disk, so it can be stopped and restarted) and its own
simulated LLM servers in this process, runs the real flows through the local runner (every step a
fresh `python -m embedded.runner.job` process), injects one fault (SIGKILL of a stage's process,
a stopped store, down or hanging backends, bad replies, concurrent runs, bad input), runs the flow
again where the scenario says so, and measures one table row:

    scenario, docs_total, docs_finished, lost, paid_twice, recover_s, ok

`scripts/chaos` prints the whole table; tests/reliability and tests/security run the same scenarios.
"""
