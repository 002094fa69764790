"""`scripts/chaos`: run the whole fault matrix and print one row per scenario.

    scripts/chaos                    # the table
    scripts/chaos --json             # {"rows": [{"scenario", "docs_total", "docs_finished", "lost",
                                     #            "paid_twice", "recover_s", "ok", ...}]}
    scripts/chaos --only kill-split --only secrets
    scripts/chaos --all-down-s 15    # a shorter total outage (the default is 30 s)

Exit code 0 when every row is ok, 1 otherwise. Progress goes to stderr; each scenario's runner output is
kept in its temporary state dir only while it runs.
"""

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from embedded.chaos.scenarios import ALL_DOWN_S, Row, make_corpus, matrix

COLUMNS = ("scenario", "docs_total", "docs_finished", "lost", "paid_twice", "recover_s", "ok")


def table(rows: list[Row]) -> str:
    head = f"{'scenario':<40} {'docs':>4} {'done':>4} {'lost':>4} {'paid2x':>6} {'recover_s':>9} {'ok':>3}  what happened"
    lines = [head, "-" * len(head)]
    for r in rows:
        recover = "-" if r.recover_s is None else f"{r.recover_s:.1f}"
        failed = [k for k, v in r.checks.items() if not v]
        note = r.what + (f"  [FAILED: {', '.join(failed)}]" if failed else "")
        lines.append(f"{r.scenario:<40} {r.docs_total:>4} {r.docs_finished:>4} {r.lost:>4} {r.paid_twice:>6} "
                     f"{recover:>9} {'yes' if r.ok else 'NO':>3}  {note}")
    return "\n".join(lines)


async def run(names: list[str], all_down_s: float) -> list[Row]:
    chosen = [(n, s) for n, s in matrix(all_down_s) if not names or n in names]
    unknown = set(names) - {n for n, _ in matrix(all_down_s)}
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(n for n, _ in matrix(all_down_s))}")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="chaos-corpus-") as folder:
        t0 = time.monotonic()
        print("chaos: making the sample documents and their undisturbed baseline...", file=sys.stderr, flush=True)
        corpus = await make_corpus(Path(folder))
        print(f"chaos: baseline in {time.monotonic() - t0:.1f}s", file=sys.stderr, flush=True)
        for name, scenario in chosen:
            t = time.monotonic()
            try:
                row = await scenario(corpus)
            except Exception as e:  # a scenario that crashes is a failed row, and the matrix goes on
                row = Row(name, 0, 0, 0, 0, None, False, f"the scenario crashed: {type(e).__name__}: {e}")
            print(f"chaos: {row.scenario}: {'ok' if row.ok else 'FAILED'} in {time.monotonic() - t:.1f}s",
                  file=sys.stderr, flush=True)
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="run only these scenarios")
    parser.add_argument("--all-down-s", type=float, default=ALL_DOWN_S, help="length of the total outage")
    parser.add_argument("--list", action="store_true", help="list the scenario names")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(n for n, _ in matrix()))
        return 0
    rows = asyncio.run(run(args.only, args.all_down_s))
    if args.json:
        print(json.dumps({"rows": [r.as_json() for r in rows]}, indent=2))
    else:
        print(table(rows))
    return 0 if rows and all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
