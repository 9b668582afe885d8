// Loads the engine component in Node: jco transpiles it to JavaScript plus core wasm
// modules, and `instantiate` links it to the capabilities this host supplies.

import { mkdir, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { transpile } from '@bytecodealliance/jco';

const NAME = 'engine';

/**
 * Transpiles the component at `wasmPath` into `outDir` and returns a function that makes
 * a fresh engine instance from an import object: its exports `engine` (execute-sync) and
 * `policy` (covers, describe-lock).
 *
 * `instantiation: 'sync'` hands us an `instantiate` that takes the imports at run time and
 * compiles the core modules synchronously, so every import stays a plain synchronous
 * function, as the engine's WIT functions are from the guest's side.
 */
export async function loadEngine(wasmPath, outDir) {
  const { files } = await transpile(readFileSync(wasmPath), { name: NAME, instantiation: 'sync', quiet: true });
  for (const [file, bytes] of Object.entries(files)) {
    const path = join(outDir, file);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, bytes);
  }
  const { instantiate } = await import(pathToFileURL(join(outDir, `${NAME}.js`)).href);
  const compile = (file) => new WebAssembly.Module(readFileSync(join(outDir, file)));
  return (imports) => {
    const { engine, policy } = instantiate(compile, imports);
    return { engine, policy };
  };
}
