// The native side of the comparison: the `testio-sync` binary as a subprocess, serving the
// simulator, writing out the embedded component and syncing into a SQLite file.

import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../../../', import.meta.url));

export const SIM_TOKEN = 'sim-token';

export function binary() {
  const path = process.env.TESTIO_SYNC_BIN ?? `${REPO}target/release/testio-sync`;
  if (!existsSync(path)) throw new Error(`no testio-sync binary at ${path}; build it with \`cargo build --release\``);
  return path;
}

/** Serves a simulated account on a free port; resolves once it prints its base URL. */
export async function startSimulator({ products, features, tests }, faults = []) {
  const args = ['sim', '--port', '0', '--products', products, '--features', features, '--tests', tests, ...faults];
  const child = spawn(binary(), args.map(String), { stdio: ['ignore', 'pipe', 'ignore'] });
  const exited = new Promise((_, reject) => child.once('exit', (code) => reject(new Error(`the simulator exited (${code})`))));
  const [baseUrl] = await Promise.race([createInterface({ input: child.stdout })[Symbol.asyncIterator]().next().then((l) => [l.value]), exited]);
  return { baseUrl, token: SIM_TOKEN, stop: () => child.kill('SIGINT') };
}

const PARTIAL_FAILURE = 2;

/** `testio-sync sync --json --refresh-bugs` into `db`; the parsed JSON result (also of a partial failure). */
export async function nativeSync(sim, db) {
  const env = { ...process.env, TESTIO_CUSTOMER_API_TOKEN: sim.token };
  const args = ['sync', '--json', '--refresh-bugs', '--no-wait', '--db', db, '--base-url', sim.baseUrl];
  const { stdout } = await run(binary(), args, { env }).catch((error) => {
    if (error.code !== PARTIAL_FAILURE) throw error;
    return error;
  });
  return JSON.parse(stdout);
}

/** `testio-sync component --out FILE`. */
export async function writeComponent(path) {
  await run(binary(), ['component', '--out', path]);
}
