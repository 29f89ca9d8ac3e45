// Runs a wasm32-wasi command under node's `node:wasi` (preview1), with one
// preopened directory, for bench/wasi/run.sh.
// Usage: node node_wasi.mjs MODULE HOST_DIR GUEST_DIR [ARGS...]
import { readFile } from "node:fs/promises";
import process from "node:process";
import { WASI } from "node:wasi";

const [modulePath, hostDir, guestDir, ...args] = process.argv.slice(2);
const wasi = new WASI({
  version: "preview1",
  args: [modulePath, ...args],
  env: {},
  preopens: { [guestDir]: hostDir },
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(modulePath));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
