// testio:sync/sync-lock for a store in this process's memory. No other process can
// reach that store, and execute-sync is a synchronous call that runs to its end, so two
// syncs of it never overlap: the lock can never be held by someone else. It still keeps
// a holder record the way a lock file would, so `acquire` reports what the previous sync
// left behind (`empty` after a clean release).
//
// The heartbeat period the engine asks for is recorded but needs no timer: a heartbeat
// proves to other processes that the holder is alive, and no other process can read this
// lock. (It could not run anyway: the engine holds the thread for the whole sync.)

import { hostname } from 'node:os';

import { ComponentFailure } from './failure.mjs';

export function syncLock({ clock, command = 'node tests/node-host' }) {
  const processStartedAt = BigInt(Math.round(Date.now() - process.uptime() * 1000));
  let record = { tag: 'empty' };
  let heartbeat = clock.now();
  let held = false;
  let period = null;

  const facts = () => ({
    holder: record,
    // A record can only name this process, which is running.
    process: record.tag === 'written' ? 'running' : 'unknown',
    heartbeat,
  });

  return {
    /** The period the engine asked for at the last `acquire`; null before any. */
    get heartbeatSeconds() {
      return period;
    },
    imports: {
      acquire(trigger, heartbeatSeconds) {
        if (held) {
          // Only an engine that forgot to release gets here; say so rather than deadlock.
          throw new ComponentFailure({ tag: 'unavailable', val: 'acquire was called twice without release' });
        }
        const previous = facts();
        const now = clock.now();
        const holder = { pid: process.pid, processStartedAt, hostName: hostname(), acquiredAt: now, trigger, command };
        record = { tag: 'written', val: holder };
        heartbeat = now;
        period = heartbeatSeconds;
        held = true;
        return previous;
      },
      // Nobody else can hold this lock, so there is never anything to wait for.
      waitForRelease: () => false,
      release() {
        if (!held) return;
        held = false;
        record = { tag: 'empty' };
        heartbeat = clock.now();
      },
    },
  };
}
