// testio:sync/events: log lines, progress and an in-memory sync log. Every function is
// infallible for the engine, so a call this host cannot make sense of is logged, not thrown.

const LOUD = new Set(['warn', 'error']);

export function events({ clock, echo = (line) => console.error(line) }) {
  const lines = [];
  const progress = [];
  const finishedPhases = [];
  const syncLog = [];
  const note = (level, message) => {
    lines.push({ level, message });
    if (LOUD.has(level)) echo(`${level}: ${message}`);
  };
  return {
    lines,
    progress,
    finishedPhases,
    syncLog,
    imports: {
      log: note,
      reportProgress(update) {
        progress.push(update);
      },
      // Only a phase whose writes all committed is finished; progress alone never says so.
      phaseFinished(phase, items) {
        finishedPhases.push({ phase, items });
      },
      syncStarted(trigger, phases) {
        const id = BigInt(syncLog.length + 1);
        syncLog.push({ id, trigger, phases, startedAt: clock.now(), finishedAt: null, outcome: null });
        return id;
      },
      syncFinished(runId, outcome) {
        const run = syncLog.find((r) => r.id === runId);
        if (!run) {
          note('warn', `sync-finished for run ${runId}, which sync-started never returned`);
          return;
        }
        run.finishedAt = clock.now();
        run.outcome = outcome;
      },
    },
  };
}
