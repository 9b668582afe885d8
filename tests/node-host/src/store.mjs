// testio:sync/store in memory: one Map per table, keyed by id. Writes are synchronous and
// all-or-nothing (every id is checked before anything is written), so `flush` has nothing
// to wait for, and they return nothing: the engine counts what it asked to have written.
// Errors are thrown as one-line messages, which jco hands the engine as `err`.

import { ComponentFailure } from './failure.mjs';
import { parseInstant } from './instant.mjs';

export function memoryStore({ clock }) {
  const tables = { products: new Map(), features: new Map(), tests: new Map(), bugs: new Map(), coverage: new Map(), problemRanges: new Map() };
  let lastRangeId = 0n;

  function expectKind(payload, kind, what) {
    if (payload.kind !== kind) throw new ComponentFailure(`${what} was given a payload of ${payload.kind}, not ${kind}`);
  }

  /** The records of `payload` with these ids, or a failure naming the first missing one. */
  function select(payload, kind, ids, what) {
    expectKind(payload, kind, what);
    return Array.from(ids, (id) => {
      const record = payload.byId.get(id);
      if (!record) throw new ComponentFailure(`${what}: ${kind} ${id} is not in the payload it was said to come from`);
      return record;
    });
  }

  /** Stores rows, noting when each was written: `sweep` deletes the ones a sync did not write again. */
  function put(table, rows) {
    const writtenAt = clock.now();
    for (const row of rows) table.set(row.id, { ...row, writtenAt });
  }

  /** Deletes the tests (and their bugs) that `stale` picks; returns how many rows went. */
  function deleteTests(stale) {
    let deleted = 0;
    for (const [id, test] of tables.tests) {
      if (!stale(test)) continue;
      tables.tests.delete(id);
      deleted += 1;
      for (const [bugId, bug] of tables.bugs) {
        if (bug.testId === id && tables.bugs.delete(bugId)) deleted += 1;
      }
    }
    return deleted;
  }

  return {
    tables,
    imports: {
      writeProducts(payload, ids) {
        const chosen = select(payload, 'products', ids, 'write-products');
        put(tables.products, chosen.map(({ id, json }) => ({ id, data: json })));
      },
      writeFeatures(productId, lists, placements) {
        const byId = new Map();
        for (const list of lists) {
          expectKind(list, 'features', 'write-features');
          for (const [id, record] of list.byId) byId.set(id, record);
        }
        const rows = placements.map(({ id, sectionIds }) => {
          const record = byId.get(id);
          if (!record) throw new ComponentFailure(`write-features: feature ${id} is not in the feature lists given`);
          return { id, productId, sectionIds: [...sectionIds], data: record.json };
        });
        put(tables.features, rows);
      },
      knownTests(ids) {
        return BigUint64Array.from(Array.from(ids).filter((id) => tables.tests.has(id)));
      },
      writeTests(productId, page, ids) {
        const chosen = select(page, 'tests', ids, 'write-tests');
        const rows = chosen.map(({ id, json }) => ({
          id,
          productId,
          status: typeof json.status === 'string' ? json.status : '',
          endAt: parseInstant(json.end_at),
          // Rewriting a test keeps when its bugs were last synced.
          bugsSyncedAt: tables.tests.get(id)?.bugsSyncedAt,
          data: json,
        }));
        put(tables.tests, rows);
      },
      testsCoverageOf(productIds) {
        return Array.from(productIds, (id) => tables.coverage.get(id) ?? { tag: 'none' });
      },
      setTestsCoverage(productId, coverage) {
        tables.coverage.set(productId, coverage);
      },
      testsToRecheck(productIds, finalStatuses, since, writtenBefore) {
        const finals = new Set(finalStatuses);
        const ended = (test) => (test.endAt.tag === 'at' ? test.endAt.val : null);
        const inWindow = (test) => since === undefined || ended(test) === null || ended(test) >= since;
        return Array.from(productIds).flatMap((productId) =>
          [...tables.tests.values()]
            .filter((t) => t.productId === productId)
            .sort((a, b) => newestFirst(ended(a), ended(b)))
            .map((t, position) => ({ id: t.id, productId, status: t.status, position, test: t }))
            .filter(({ status, test }) => !finals.has(status) && test.writtenAt < writtenBefore && inWindow(test))
            .map(({ id, status, position }) => ({ id, productId, status, position })),
        );
      },
      removeTests(ids) {
        const gone = new Set(ids);
        return deleteTests((t) => gone.has(t.id));
      },
      problemRanges(productIds) {
        const wanted = new Set(productIds);
        // A Map iterates in insertion order, which is oldest record first.
        return [...tables.problemRanges.values()].filter((r) => wanted.size === 0 || wanted.has(r.report.productId));
      },
      // Which stored range a failing run is, and how often it failed, is the engine's call.
      addProblemRange(report, seenAt) {
        const id = ++lastRangeId;
        tables.problemRanges.set(id, { id, report, attempts: 1, firstSeen: seenAt, lastSeen: seenAt });
      },
      updateProblemRange(id, report, attempts, seenAt) {
        // An unknown id is no error, as the WIT says: there is simply nothing to update.
        const range = tables.problemRanges.get(id);
        if (range) Object.assign(range, { report, attempts, lastSeen: seenAt });
      },
      clearProblemRange(id) {
        tables.problemRanges.delete(id);
      },
      bugCandidates(productIds, since) {
        const wanted = new Set(productIds);
        const ended = (test) => (test.endAt.tag === 'at' ? test.endAt.val : null);
        return [...tables.tests.values()]
          .filter((t) => wanted.has(t.productId) && (since === undefined || ended(t) === null || ended(t) >= since))
          .sort((a, b) => newestFirst(ended(a), ended(b)))
          .map((t) => ({ id: t.id, productId: t.productId, status: t.status, bugsSyncedAt: t.bugsSyncedAt }));
      },
      writeBugs(payload, ids, testIds) {
        const chosen = select(payload, 'bugs', ids, 'write-bugs');
        const held = new Set(Array.from(testIds).filter((id) => tables.tests.has(id)));
        const keep = new Set(chosen.map((bug) => bug.id));
        for (const [id, bug] of tables.bugs) {
          if (held.has(bug.testId) && !keep.has(id)) tables.bugs.delete(id);
        }
        const rows = chosen
          .map(({ id, testId, json }) => ({ id, testId, data: json }))
          .filter((bug) => tables.tests.has(bug.testId));
        const now = clock.now();
        for (const id of held) tables.tests.get(id).bugsSyncedAt = now;
        put(tables.bugs, rows);
      },
      sweep(kind, productIds, since, writtenBefore) {
        const inScope = (productId) => productIds === undefined || Array.from(productIds).includes(productId);
        const old = (row) => row.writtenAt < writtenBefore;
        const ended = (test) => (test.endAt.tag === 'at' ? test.endAt.val : null);
        const inWindow = (test) => since === undefined || ended(test) === null || ended(test) >= since;
        if (kind === 'products') {
          const gone = [...tables.products.values()].filter((p) => inScope(p.id) && old(p)).map((p) => p.id);
          let deleted = deleteTests((t) => gone.includes(t.productId));
          for (const [id, feature] of tables.features) {
            if (gone.includes(feature.productId) && tables.features.delete(id)) deleted += 1;
          }
          for (const [id, range] of tables.problemRanges) {
            if (gone.includes(range.report.productId) && tables.problemRanges.delete(id)) deleted += 1;
          }
          for (const id of gone) {
            tables.products.delete(id);
            tables.coverage.delete(id);
            deleted += 1;
          }
          return deleted;
        }
        if (kind === 'features') {
          let deleted = 0;
          for (const [id, feature] of tables.features) {
            if (inScope(feature.productId) && old(feature) && tables.features.delete(id)) deleted += 1;
          }
          return deleted;
        }
        if (kind === 'tests') return deleteTests((t) => inScope(t.productId) && old(t) && inWindow(t));
        throw new ComponentFailure(`sweep: the engine never sweeps ${kind}`);
      },
      flush() {},
    },
  };
}

/** Newest first, then the ones without a time. */
function newestFirst(a, b) {
  if (a === null || b === null) return (a === null) - (b === null);
  return a === b ? 0 : a > b ? -1 : 1;
}
