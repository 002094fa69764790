"""scripts/copy-matter: copy matters from one store to another (Azure Blob to S3, or back), hashes verified.

  scripts/copy-matter --from resources/azure/f/matter/store.resource.yaml \\
                      --to '{"kind": "s3", "bucket": "matters", "region": "eu-west-1"}' \\
                      --matter M-2024-0137 [--matter ...] [--concurrency 8] [--overwrite] [--create-target]

--from and --to take a resource file (`*.resource.yaml` with its `value:`, or a JSON file) or the
resource's JSON itself. "$var:<path>" strings in it are read from `--var <path>=<value>`, or else from
the environment variable named after the path (f/matter/blob_connection_string ->
F_MATTER_BLOB_CONNECTION_STRING). Prints one JSON report per matter on stdout; exits 1 when any object
could not be copied or differs at the target.
"""

import argparse
import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from f.core.copy_matter import copy_matter_between
from f.core.ids import check_id
from f.core.store_config import load_store_config


def env_name(var_path: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", var_path).upper()


def interpolate(value: Any, variables: dict[str, str]) -> Any:
    if isinstance(value, str) and value.startswith("$var:"):
        path = value[5:]
        if path in variables:
            return variables[path]
        if env_name(path) in os.environ:
            return os.environ[env_name(path)]
        raise SystemExit(f"copy-matter: {value} is not set: pass --var {path}=... or set {env_name(path)}")
    if isinstance(value, str) and value.startswith("$res:"):
        raise SystemExit(f"copy-matter: {value}: give the store resource itself, not a reference to one")
    if isinstance(value, dict):
        return {k: interpolate(v, variables) for k, v in value.items()}
    return value


def load_resource(text: str, variables: dict[str, str]) -> dict[str, Any]:
    """A resource file (YAML with `value:`, or JSON) or inline JSON, with $var: resolved and validated."""
    if text.lstrip().startswith("{"):
        value = json.loads(text)
    else:
        path = Path(text)
        if not path.is_file():
            raise SystemExit(f"copy-matter: no such resource file: {text}")
        data = yaml.safe_load(path.read_text())
        value = data.get("value", data) if isinstance(data, dict) else data
    if not isinstance(value, dict):
        raise SystemExit(f"copy-matter: {text[:80]}: expected a store resource object")
    value = interpolate(value, variables)
    try:
        load_store_config(value)
    except ValueError as e:
        raise SystemExit(f"copy-matter: {text[:80]}: {e}") from e
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="copy-matter", description=__doc__.split("\n\n")[0])
    p.add_argument("--from", dest="source", required=True, help="source store: resource file or JSON")
    p.add_argument("--to", dest="target", required=True, help="target store: resource file or JSON")
    p.add_argument("--matter", dest="matters", action="append", required=True, help="matter id (repeatable)")
    p.add_argument("--var", action="append", default=[], metavar="PATH=VALUE", help="value of a $var: reference")
    p.add_argument("--concurrency", type=int, default=8, help="objects in flight at once (default 8)")
    p.add_argument("--overwrite", action="store_true", help="replace objects that differ at the target")
    p.add_argument("--create-target", action="store_true", help="create the target container or bucket")
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    variables = dict(v.split("=", 1) for v in args.var if "=" in v)
    source = load_resource(args.source, variables)
    target = load_resource(args.target, variables)
    ok = True
    for matter_id in args.matters:
        check_id(matter_id, "matter id")
        done = 0

        def progress(name: str, outcome: str) -> None:
            nonlocal done
            done += 1
            if outcome in ("mismatch", "failed") or done % 100 == 0:
                print(f"[copy-matter] {matter_id}: {done} objects, {outcome}: {name}", file=sys.stderr)

        report = await copy_matter_between(source, target, matter_id, create_target=args.create_target,
                                           concurrency=args.concurrency, overwrite=args.overwrite,
                                           progress=progress)
        print(json.dumps(report.model_dump()), flush=True)
        print(f"[copy-matter] {matter_id}: {report.objects} objects, {report.copied} copied, "
              f"{report.replaced} replaced, {report.skipped} already there, {len(report.mismatched)} differ, "
              f"{len(report.failed)} failed", file=sys.stderr)
        ok = ok and report.ok
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.concurrency < 1 or args.concurrency > 64:
        raise SystemExit("copy-matter: --concurrency must be 1..64")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
