"""The local workspace: scripts, flows, resources and variables read from the repository.

Layout (workspace path -> file):
  script    f/<folder>/<name>                -> f/<folder>/<name>.py
  flow      <flow_folder>/<name>             -> flows/<name>/flow.yaml
  resource  f/x/y                            -> resources/<env>/f/x/y.resource.yaml
  variable  f/x/y                            -> resources/<env>/f/x/y.variable.yaml
Resources written at run time (wmill.set_state / set_resource) go to
.state/<env>/resources/<path>.json and shadow the YAML files, like rows in Windmill's database.
"""

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from embedded.runner.errors import InvalidRun

_PATH = re.compile(r"[ufg]/[A-Za-z0-9_\-]+(/[A-Za-z0-9_.\-]+)+")


class NotFound(LookupError):
    """A resource or variable path that the workspace does not hold."""


def check_path(path: str) -> str:
    if not _PATH.fullmatch(path) or ".." in path.split("/"):
        raise InvalidRun(f"not a workspace path: {path!r} (expected f/<folder>/<name>)")
    return path


@dataclass
class Workspace:
    root: Path
    env: str = "local"
    variables: dict[str, str] = field(default_factory=dict)  # live values, they win over files
    flow_folder: str = "f/matter"
    id: str = "local"  # WM_WORKSPACE

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()

    @property
    def state_dir(self) -> Path:
        return self.root / ".state"

    def script_file(self, path: str) -> Path:
        file = self.root / f"{check_path(path)}.py"
        if not file.is_file():
            raise InvalidRun(f"script not found: {path} (no {file})")
        return file

    def flow_file(self, path: str) -> Path:
        prefix = f"{self.flow_folder}/"
        if not check_path(path).startswith(prefix) or "/" in path[len(prefix):]:
            raise InvalidRun(f"flow path {path!r} must be {prefix}<name>")
        file = self.root / "flows" / path[len(prefix):] / "flow.yaml"
        if not file.is_file():
            raise InvalidRun(f"flow not found: {path} (no {file})")
        return file

    def required_args(self, path: str) -> list[str]:
        """Parameters of the script's main() that have no default."""
        tree = ast.parse(self.script_file(path).read_text())
        mains = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == "main"]
        if not mains:
            raise InvalidRun(f"script {path} has no main()")
        a = mains[-1].args
        positional = a.posonlyargs + a.args
        without_default = positional[: len(positional) - len(a.defaults)]
        kw_only = [arg for arg, default in zip(a.kwonlyargs, a.kw_defaults) if default is None]
        return [arg.arg for arg in without_default + kw_only]

    def variable(self, path: str) -> str:
        if path in self.variables:
            return self.variables[path]
        data = self._yaml(path, "variable")
        if data is None:
            raise NotFound(f"variable not found: {path}")
        return str(data.get("value") or "")

    def resource_info(self, path: str) -> dict[str, Any]:
        """{value, resource_type, description} of a resource, its value not interpolated."""
        stored = self._stored(path)
        if stored.is_file():
            return json.loads(stored.read_text())
        data = self._yaml(path, "resource")
        if data is None:
            raise NotFound(f"resource not found: {path}")
        return {k: data.get(k) for k in ("value", "resource_type", "description")}

    def resource(self, path: str) -> Any:
        return self.interpolate(self.resource_info(path)["value"])

    def set_resource(self, path: str, value: Any, resource_type: str | None = None) -> None:
        stored = self._stored(path)
        if resource_type is None:
            resource_type = self.resource_info(path).get("resource_type")
        stored.parent.mkdir(parents=True, exist_ok=True)
        tmp = stored.with_suffix(".tmp")
        tmp.write_text(json.dumps({"value": value, "resource_type": resource_type, "description": ""}))
        tmp.replace(stored)

    def interpolate(self, value: Any) -> Any:
        """Replace "$var:<path>" and "$res:<path>" strings anywhere in value, like get_value_interpolated."""
        if isinstance(value, str):
            if value.startswith("$var:"):
                return self.variable(value[5:])
            if value.startswith("$res:"):
                return self.resource(value[5:])
            return value
        if isinstance(value, dict):
            return {k: self.interpolate(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.interpolate(v) for v in value]
        return value

    def _yaml(self, path: str, kind: str) -> dict[str, Any] | None:
        file = self.root / "resources" / self.env / f"{check_path(path)}.{kind}.yaml"
        if not file.is_file():
            return None
        data = yaml.safe_load(file.read_text()) or {}
        if not isinstance(data, dict):
            raise InvalidRun(f"{file}: expected a mapping with a 'value' key")
        return data

    def _stored(self, path: str) -> Path:
        return self.state_dir / self.env / "resources" / f"{check_path(path)}.json"
