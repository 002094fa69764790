// The JSON schemas the Windmill CLI validates with (`wmill lint`): OpenFlow (generated from the
// windmill repo's openflow.openapi.yaml, bundled as ../windmill-yaml-validator/src/gen/openflow.json)
// and the HTTP trigger schema. Read from the installed windmill-cli bundle, so they follow its version.
// Usage: node cli_schemas.mjs  ->  {"version": "...", "openflow": {...}, "http_trigger": {...}}
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const pkg = require.resolve("windmill-cli/package.json");
const main = readFileSync(pkg.replace(/package\.json$/, "esm/main.js"), "utf8");

function literal(name) {
  const start = main.indexOf(`  ${name} = {`);
  if (start < 0) throw new Error(`${name} not found in windmill-cli's bundle`);
  const end = main.indexOf("\n});\n", start);  // the end of its `var init_x = __esm(() => {...});`
  const text = main.slice(start + `  ${name} = `.length, end).trim().replace(/;$/, "");
  return new Function(`return (${text});`)();
}
const version = JSON.parse(readFileSync(pkg, "utf8")).version;
console.log(JSON.stringify({ version, openflow: literal("openflow_default"), http_trigger: literal("http_default") }));
