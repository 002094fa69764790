"""`wmill sync push --dry-run` (Windmill's CLI, against the loopback stand-in, which holds an empty
workspace) lists exactly our scripts and folders: no flow, resource, test or tool file, nothing stale."""

import re

import yaml

from tests.windmill.conftest import ROOT, scripts, wmill

LINE = re.compile(r"^([+~-]) (\S+) (\S+)")


def dry_run(*flags: str) -> tuple[str, dict[str, set[str]]]:
    before = (ROOT / "wmill-lock.yaml").read_text()
    done = wmill("sync", "push", "--dry-run", "--yes", *flags)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (ROOT / "wmill-lock.yaml").read_text() == before, "a dry run must not write"
    listed: dict[str, set[str]] = {}
    for line in done.stdout.splitlines():
        if m := LINE.match(line.strip()):
            assert m.group(1) == "+", line  # the stand-in's workspace is empty: only additions
            listed.setdefault(m.group(2), set()).add(m.group(3))
    return done.stdout, listed


def test_sync_push_lists_only_our_scripts_and_folders():
    out, listed = dry_run()
    assert set(listed) == {"script", "folder"}, listed.keys()
    expected = {str(p.relative_to(ROOT)) for s in scripts()
                for p in (s, s.with_suffix(".script.yaml"), s.with_suffix(".script.lock"))}
    assert listed["script"] == expected
    assert listed["folder"] == {str(p.relative_to(ROOT)) for p in (ROOT / "f").glob("*/folder.meta.yaml")}
    assert {p.split("/")[1] for p in listed["folder"]} == {p.parent.name for p in scripts()}
    assert "Missing folder.meta.yaml" not in out
    assert "Stale scripts metadata" not in out, "run scripts/gen-metadata (it also refreshes wmill-lock.yaml)"


def test_the_http_route_trigger_is_recognised_but_left_to_scripts_deploy():
    _, listed = dry_run("--include-triggers")
    assert listed["http_trigger"] == {"f/matter/process_matter.http_trigger.yaml"}


def test_wmill_yaml_leaves_flows_and_resources_to_explicit_pushes():
    conf = yaml.safe_load((ROOT / "wmill.yaml").read_text())
    assert conf["includes"] == ["f/**"]
    for key in ("skipFlows", "skipResources", "skipResourceTypes", "skipVariables", "skipSecrets"):
        assert conf[key] is True, key
    assert conf["skipScripts"] is False and conf["skipFolders"] is False
    assert not conf.get("includeTriggers") and not conf.get("includeSchedules")
    assert conf["nonDottedPaths"] is True


def test_folder_metadata_has_windmills_keys():
    for meta in (ROOT / "f").glob("*/folder.meta.yaml"):
        data = yaml.safe_load(meta.read_text())
        assert set(data) == {"summary", "display_name", "owners", "extra_perms"}, meta
        assert data["display_name"] == meta.parent.name and data["summary"]
