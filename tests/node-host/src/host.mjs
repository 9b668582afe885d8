// The capabilities of the world testio:sync/sync-engine@0.2.0, wired into the import object
// jco's `instantiate` expects, keyed by versioned interface name.

import { clock } from './clock.mjs';
import { customerApi } from './customer-api.mjs';
import { events } from './events.mjs';
import { memoryStore } from './store.mjs';
import { syncLock } from './sync-lock.mjs';

const PACKAGE = 'testio:sync';
const VERSION = '0.2.0';

/** A host for syncs of one account into one in-memory store; `imports` serves every sync. */
export function nodeHost({ baseUrl, token, maxInFlight }) {
  const time = clock();
  const log = events({ clock: time });
  const store = memoryStore({ clock: time });
  const lock = syncLock({ clock: time });
  const capabilities = {
    clock: time,
    events: log.imports,
    'sync-lock': lock.imports,
    'customer-api': customerApi({ baseUrl, token, maxInFlight }),
    store: store.imports,
  };
  return { imports: importObject(capabilities), store: store.tables, events: log, lock };
}

/**
 * Each interface under its versioned name, as the WIT and jco's typings spell it, and
 * under its bare name, which is what jco 1.15's generated code looks up.
 */
function importObject(capabilities) {
  return Object.fromEntries(
    Object.entries(capabilities).flatMap(([name, implementation]) => [
      [`${PACKAGE}/${name}@${VERSION}`, implementation],
      [`${PACKAGE}/${name}`, implementation],
    ]),
  );
}
