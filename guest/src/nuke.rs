//! The end of a nuke: once every phase in its scope succeeded, the rows of the scope that
//! the sync did not write again are what the API no longer returns, and are deleted. A
//! nuke that lost anything deletes nothing, so a failed nuke never empties the mirror.

use crate::bindings::events::Level;
use crate::bindings::types::{EntityKind, Phase, Scope, SyncError, Timestamp};
use crate::host::Host;
use crate::tally::Tally;

/// Sweeps the kinds the completed phases rewrote. `walked` holds the products whose walk
/// of tests reached its end: only their tests can be judged gone.
pub fn sweep<H: Host>(
    host: &mut H,
    scope: &Scope,
    started: Timestamp,
    walked: &[u64],
    tally: &mut Tally,
) -> Result<(), SyncError> {
    if !tally.errors.is_empty() {
        let why = "some of its scope could not be fetched (see the errors), so nothing was deleted";
        tally.warnings.push(format!("the nuke rewrote what it could, but {why}"));
        return Ok(());
    }
    let kinds = [(Phase::Products, EntityKind::Products), (Phase::Features, EntityKind::Features)];
    for (phase, kind) in kinds {
        if tally.phases_completed.contains(&phase) {
            tally.rows_removed += swept(host, kind, scope.product_ids.as_deref(), None, started)?;
        }
    }
    if tally.phases_completed.contains(&Phase::NewTests) {
        tally.rows_removed += swept(host, EntityKind::Tests, Some(walked), scope.since, started)?;
    }
    host.log(Level::Info, &format!("nuke: removed {} rows the API no longer returns", tally.rows_removed));
    Ok(())
}

fn swept<H: Host>(
    host: &mut H,
    kind: EntityKind,
    product_ids: Option<&[u64]>,
    since: Option<Timestamp>,
    started: Timestamp,
) -> Result<u32, SyncError> {
    host.sweep(kind, product_ids, since, started).map_err(SyncError::StoreFailed)
}

#[cfg(test)]
mod tests {
    use crate::bindings::types::{EntityKind, Phase};
    use crate::fake::{FakeHost, sync_request};

    /// A synced 2-product account whose store also holds rows the API no longer returns:
    /// product 9, feature 1999 of product 1, and test 1000999 of product 1.
    fn with_leftovers() -> FakeHost {
        let mut host = FakeHost::account(2, 2, 30);
        host.sync(sync_request(None)).unwrap();
        host.stored_products.insert(9);
        host.stored_features.get_mut(&1).unwrap().push(1999);
        host.stored_tests.insert(1_000_999, 1);
        host.later += 60_000;
        host
    }

    fn nuke(product_ids: Option<Vec<u64>>) -> crate::bindings::types::SyncRequest {
        let mut request = sync_request(product_ids);
        request.options.nuke = true;
        request
    }

    #[test]
    fn a_nuke_that_succeeds_removes_what_the_api_no_longer_returns_and_nothing_else() {
        let mut host = with_leftovers();
        let result = host.sync(nuke(None)).unwrap();
        assert!(!host.stored_products.contains(&9));
        assert!(!host.stored_features[&1].contains(&1999));
        assert!(!host.stored_tests.contains_key(&1_000_999));
        assert_eq!(host.stored_tests.len(), 60, "every test the API returns is still there");
        assert_eq!(result.rows_removed, 3);
        assert_eq!(result.tests_updated, 60, "nothing was deleted before the sync wrote it again");
    }

    #[test]
    fn a_nuke_that_loses_anything_deletes_nothing() {
        let mut host = with_leftovers();
        host.fail_product(2, crate::bindings::customer_api::Failure::HttpStatus(503));
        let result = host.sync(nuke(None)).unwrap();
        assert_eq!(result.rows_removed, 0);
        assert!(host.stored_products.contains(&9) && host.stored_tests.contains_key(&1_000_999));
        assert!(result.warnings.iter().any(|w| w.contains("nothing was deleted")), "{:?}", result.warnings);
        assert!(host.sweeps.is_empty());
    }

    #[test]
    fn a_narrower_nuke_sweeps_only_its_scope() {
        let mut host = with_leftovers();
        let mut tests_only = nuke(Some(vec![1]));
        tests_only.scope.entity_types = Some(vec![EntityKind::Tests]);
        let result = host.sync(tests_only).unwrap();
        assert_eq!(result.rows_removed, 1, "only the stale test of product 1");
        assert!(host.stored_products.contains(&9) && host.stored_features[&1].contains(&1999));
        assert_eq!(host.sweeps, [(EntityKind::Tests, Some(vec![1]))]);
        assert_eq!(result.phases_completed, [Phase::NewTests]);
    }

    #[test]
    fn tests_of_a_walk_that_did_not_reach_the_end_are_never_swept() {
        let mut host = with_leftovers();
        host.fail_product(2, crate::bindings::customer_api::Failure::HttpStatus(404));
        let result = host.sync(nuke(None)).unwrap();
        assert!(result.errors.is_empty(), "a missing product is a warning: {:?}", result.errors);
        let tests_swept = host.sweeps.iter().find(|(kind, _)| *kind == EntityKind::Tests).cloned();
        assert_eq!(tests_swept, Some((EntityKind::Tests, Some(vec![1]))), "product 2 was not walked");
    }
}
