// The engine component in a second host: Node.js, through jco, with every capability in
// JavaScript. It must come to the same counts as the native host for the same account.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { loadEngine } from '../src/engine.mjs';
import { nodeHost } from '../src/host.mjs';
import { nativeSync, startSimulator, writeComponent } from './support.mjs';

const ACCOUNT = { products: 3, features: 5, tests: 60 };
const PHASES = ['products', 'features', 'new-tests', 'bugs'];
const OPTIONS = { forceRefresh: false, incrementalOnly: false, nuke: false };
/** Every phase, bugs included, for the whole account: what the native host's `--refresh-bugs` does. */
const REQUEST = { phases: PHASES, scope: {}, options: OPTIONS };

/** The parts of a SyncResult that must not depend on the host; duration does. */
function counts(result) {
  return {
    phasesCompleted: result.phasesCompleted,
    productsSynced: result.productsSynced,
    featuresRefreshed: result.featuresRefreshed,
    testsDiscovered: result.testsDiscovered,
    testsUpdated: result.testsUpdated,
    bugsRefreshed: result.bugsRefreshed,
    warnings: result.warnings,
    errors: result.errors,
  };
}

/** The native host's `--json` result (snake_case, as the reference prints it) in the same shape. */
function nativeCounts(json) {
  return counts({
    phasesCompleted: json.phases_completed.map((phase) => phase.replaceAll('_', '-')),
    productsSynced: json.products_synced,
    featuresRefreshed: json.features_refreshed,
    testsDiscovered: json.tests_discovered,
    testsUpdated: json.tests_updated,
    bugsRefreshed: json.bugs_refreshed,
    warnings: json.warnings,
    errors: json.errors,
  });
}

/** Syncs `sim` with the native binary and then with `host`; both results. */
async function syncBoth(sim, dir, host, newEngine) {
  const native = await nativeSync(sim, join(dir, `native-${Date.now()}.db`));
  return { native, node: newEngine(host.imports).engine.executeSync(REQUEST, 'cli') };
}

describe('the engine component in a Node.js host', () => {
  let sim;
  let dir;
  let newEngine;

  before(async () => {
    sim = await startSimulator(ACCOUNT);
    dir = await mkdtemp(join(tmpdir(), 'testio-node-host-'));
    await writeComponent(join(dir, 'engine.wasm'));
    newEngine = await loadEngine(join(dir, 'engine.wasm'), join(dir, 'transpiled'));
  });

  after(async () => {
    sim?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('a cold sync counts what the native host counts, and a second sync discovers nothing', async () => {
    const host = nodeHost({ baseUrl: sim.baseUrl, token: sim.token });
    const { native, node: first } = await syncBoth(sim, dir, host, newEngine);
    assert.equal(native.status, 'success', JSON.stringify(native));
    assert.deepEqual(counts(first), nativeCounts(native));
    assert.equal(first.testsDiscovered, ACCOUNT.products * ACCOUNT.tests);
    assert.equal(host.store.products.size, ACCOUNT.products);
    assert.equal(host.store.features.size, ACCOUNT.products * ACCOUNT.features);
    assert.equal(host.store.tests.size, ACCOUNT.products * ACCOUNT.tests);
    assert.ok(first.bugsRefreshed > 0, 'the bugs phase wrote bugs');
    assert.equal(host.store.bugs.size, first.bugsRefreshed);
    const coverage = [...host.store.coverage.values()].map((c) => c.tag);
    assert.deepEqual(coverage, Array(ACCOUNT.products).fill('all'), 'every walk reached the oldest test');

    const second = newEngine(host.imports).engine.executeSync(REQUEST, 'cli');
    assert.equal(second.testsDiscovered, 0);
    assert.deepEqual(second.errors, []);
    assert.equal(host.store.tests.size, ACCOUNT.products * ACCOUNT.tests);

    const log = host.events.syncLog;
    assert.deepEqual(log.map((run) => [run.id, run.trigger, run.outcome.tag]), [[1n, 'cli', 'ok'], [2n, 'cli', 'ok']]);
    assert.equal(log[1].outcome.val.testsDiscovered, 0);
    const phasesReported = new Set(host.events.progress.map((update) => update.phase));
    assert.deepEqual([...phasesReported], PHASES);
    const finished = host.events.finishedPhases.slice(0, PHASES.length);
    assert.deepEqual(finished.map((f) => f.phase), PHASES, 'each phase is reported finished once its writes committed');
    assert.equal(finished[1].items, first.featuresRefreshed);
    assert.ok(host.lock.heartbeatSeconds > 0, 'the engine chose a heartbeat period');
  });

  test('a rejected token stops the sync with `unauthorized` before anything is stored', () => {
    const host = nodeHost({ baseUrl: sim.baseUrl, token: 'not-the-token' });
    assert.throws(
      () => newEngine(host.imports).engine.executeSync(REQUEST, 'cli'),
      (error) => error.payload?.tag === 'unauthorized' && !error.payload.val.includes('not-the-token'),
    );
    assert.equal(host.store.products.size, 0);
    assert.equal(host.events.syncLog[0].outcome.tag, 'err');
  });

  test('the policy export answers `covers` in this host too', () => {
    const { policy } = newEngine(nodeHost({ baseUrl: sim.baseUrl, token: sim.token }).imports);
    const defaults = { phases: [], scope: {}, options: OPTIONS };
    assert.equal(policy.covers(defaults, defaults), true, 'a request covers itself');
    // An empty phase list means the default phases, which a bugs-only sync does not run.
    assert.equal(policy.covers({ ...defaults, phases: ['bugs'] }, defaults), false);
  });

  test('through 429s and a broken page, it counts and reports what the native host does', async () => {
    // Every 4th request is rate limited (retried after Retry-After, 0 s here), and the page
    // holding product 2's tests at offsets 37 and 38 always fails with HTTP 500.
    const faults = ['--rate-limit-every', '4', '--retry-after', '0', '--bad-offsets', '2:37,38'];
    const faulty = await startSimulator(ACCOUNT, faults);
    try {
      const host = nodeHost({ baseUrl: faulty.baseUrl, token: faulty.token });
      const { native, node } = await syncBoth(faulty, dir, host, newEngine);
      assert.equal(native.status, 'partial_failure', JSON.stringify(native));
      assert.deepEqual(counts(node), nativeCounts(native));
      assert.equal(node.testsDiscovered, ACCOUNT.products * ACCOUNT.tests - 2);
      assert.equal(host.store.problemRanges.size, 1);
      const [range] = host.store.problemRanges.values();
      const { report, attempts } = range;
      assert.deepEqual([report.productId, report.firstOffset, report.lastOffset, attempts], [2n, 37, 38, 1]);
    } finally {
      faulty.stop();
    }
  });
});
