// testio:sync/clock: the wall clock in milliseconds since the epoch, and a monotonic
// reading in nanoseconds. Both are bigints, as jco maps s64 and u64.

export function clock() {
  return {
    now: () => BigInt(Date.now()),
    monotonicNanos: () => process.hrtime.bigint(),
  };
}
