//! Aggregates what the phases did into one `SyncResult`.

use crate::bindings::types::{Phase, SyncResult};

#[derive(Default)]
pub struct Tally {
    pub phases_completed: Vec<Phase>,
    pub products_synced: u32,
    pub features_refreshed: u32,
    pub tests_discovered: u32,
    pub tests_updated: u32,
    pub bugs_refreshed: u32,
    pub tests_rechecked: u32,
    pub tests_changed: u32,
    pub rows_removed: u32,
    /// Products whose walk of tests reached its end in this sync.
    pub walked_to_end: Vec<u64>,
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
}

impl Tally {
    /// Runs a phase and lists it as completed only if it added no error.
    pub fn phase<E>(&mut self, phase: Phase, run: impl FnOnce(&mut Self) -> Result<(), E>) -> Result<(), E> {
        let errors_before = self.errors.len();
        run(self)?;
        if self.errors.len() == errors_before {
            self.phases_completed.push(phase);
        }
        Ok(())
    }

    /// The rows a phase wrote.
    pub fn items_of(&self, phase: Phase) -> u32 {
        match phase {
            Phase::Products => self.products_synced,
            Phase::Features => self.features_refreshed,
            Phase::NewTests => self.tests_discovered + self.tests_updated,
            Phase::Bugs => self.bugs_refreshed,
        }
    }

    pub fn finish(self, duration_seconds: f64) -> SyncResult {
        SyncResult {
            phases_completed: self.phases_completed,
            products_synced: self.products_synced,
            features_refreshed: self.features_refreshed,
            tests_discovered: self.tests_discovered,
            tests_updated: self.tests_updated,
            bugs_refreshed: self.bugs_refreshed,
            tests_rechecked: self.tests_rechecked,
            tests_changed: self.tests_changed,
            rows_removed: self.rows_removed,
            duration_seconds,
            warnings: self.warnings,
            errors: self.errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_that_recorded_an_error_is_not_listed_as_completed() {
        let mut tally = Tally::default();
        tally.phase::<()>(Phase::Products, |_| Ok(())).unwrap();
        tally
            .phase::<()>(Phase::Features, |t| {
                t.errors.push("product 3: features failed".into());
                Ok(())
            })
            .unwrap();
        tally
            .phase::<()>(Phase::NewTests, |t| {
                t.warnings.push("a warning does not fail a phase".into());
                Ok(())
            })
            .unwrap();
        let result = tally.finish(1.5);
        assert_eq!(result.phases_completed, vec![Phase::Products, Phase::NewTests]);
        assert_eq!(result.errors.len(), 1);
        assert_eq!(result.duration_seconds, 1.5);
    }

    #[test]
    fn a_phase_that_aborts_is_not_listed() {
        let mut tally = Tally::default();
        assert_eq!(tally.phase(Phase::Products, |_| Err("401")), Err("401"));
        assert!(tally.phases_completed.is_empty());
    }
}
