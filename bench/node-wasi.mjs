// Runs a WASI (preview1) command module under node's WebAssembly engine:
//   node --single-threaded-gc node-wasi.mjs MODULE.wasm [ARGS...]
// The module sees no preopened directories and an empty environment, the
// same sandbox the benchmark kernels get from every other runner.
import { readFile } from 'node:fs/promises';
import process from 'node:process';
import { WASI } from 'node:wasi';

const [modulePath, ...moduleArgs] = process.argv.slice(2);
if (!modulePath) {
  console.error('usage: node-wasi.mjs MODULE.wasm [ARGS...]');
  process.exit(2);
}

const wasi = new WASI({
  version: 'preview1',
  args: [modulePath, ...moduleArgs],
  env: {},
  preopens: {},
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(modulePath));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
