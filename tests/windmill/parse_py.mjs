// Windmill's own Python parser (npm windmill-parser-wasm-py), as the CLI and the server use it to
// build a script's input schema. Usage: node parse_py.mjs <file.py>...  ->  {"<file>": <parse>, ...}
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { initSync, parse_python } from "windmill-parser-wasm-py";

const require = createRequire(import.meta.url);
initSync({ module: readFileSync(require.resolve("windmill-parser-wasm-py/windmill_parser_wasm_bg.wasm")) });
const out = {};
for (const file of process.argv.slice(2)) out[file] = JSON.parse(parse_python(readFileSync(file, "utf8")));
console.log(JSON.stringify(out));
