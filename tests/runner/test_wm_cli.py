"""scripts/wm end to end, as a subprocess."""

import json
import subprocess
from pathlib import Path

WM = Path(__file__).resolve().parents[2] / "scripts" / "wm"


def wm(*args: str, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(WM), *args, "--root", str(root), "--no-services"], capture_output=True, text=True, timeout=120)


def test_flow_and_script_run(put, tmp_path):
    put({
        "f/t/add.py": "def main(a: int, b: int = 1):\n    print('adding')\n    return a + b\n",
        "flows/calc/flow.yaml": """
            summary: calc
            value:
              modules:
                - id: add
                  value: {type: script, path: f/t/add, input_transforms: {a: {type: javascript, expr: flow_input.a}}}
                - id: bad
                  skip_if: {expr: "!flow_input.fail"}
                  value: {type: rawscript, language: python3, content: "def main():\\n    raise RuntimeError('nope')\\n"}
            schema: {properties: {a: {type: integer}}, required: [a]}
        """,
        "args.json": '{"a": 41}',
    })
    done = wm("flow", "run", "f/matter/calc", "-d", f"@{tmp_path / 'args.json'}", "-v", root=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == 42
    assert "ok       add" in done.stderr and "add: adding" in done.stderr  # progress, and -v echoes job output

    failed = wm("flow", "run", "f/matter/calc", "-d", '{"a": 1, "fail": true}', root=tmp_path)
    assert failed.returncode == 1 and failed.stdout == ""
    assert "flow f/matter/calc failed at step 'bad': RuntimeError: nope" in failed.stderr

    invalid = wm("flow", "run", "f/matter/calc", root=tmp_path)
    assert invalid.returncode == 2 and "missing required input(s): a" in invalid.stderr

    script = wm("script", "run", "f/t/add", "-d", '{"a": 1, "b": 2}', root=tmp_path)
    assert script.returncode == 0 and json.loads(script.stdout) == 3
