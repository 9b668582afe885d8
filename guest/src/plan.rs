//! Which phases run, in which order, and which products are in scope; and whether one
//! request is covered by a sync of another.

use crate::bindings::customer_api::ProductSummary;
use crate::bindings::types::{EntityKind, Options, Phase, Scope, SyncError, SyncRequest};

/// Canonical order; a caller's order never matters.
const CANONICAL: [Phase; 4] = [Phase::Products, Phase::Features, Phase::NewTests, Phase::Bugs];

/// The phases to run: the requested ones (all but bugs when none are given), in canonical
/// order, reduced to `new-tests` (and `bugs`, if requested) by `incremental-only`, and without phases whose entity
/// kind the scope excludes.
pub fn phases(requested: &[Phase], scope: &Scope, options: &Options) -> Vec<Phase> {
    let wanted = |p: Phase| {
        if requested.is_empty() { p != Phase::Bugs } else { requested.contains(&p) }
    };
    CANONICAL
        .into_iter()
        .filter(|&p| wanted(p))
        .filter(|&p| !options.incremental_only || matches!(p, Phase::NewTests | Phase::Bugs))
        .filter(|&p| writes_allowed(scope, kind_of(p)))
        .collect()
}

/// The phases a valid request runs, or why the request cannot be honoured.
pub fn resolve(request: &SyncRequest) -> Result<Vec<Phase>, SyncError> {
    if request.scope.product_ids.as_ref().is_some_and(|ids| ids.is_empty()) {
        return Err(SyncError::InvalidRequest(
            "the product id list is empty; leave it out to sync every product".into(),
        ));
    }
    let phases = phases(&request.phases, &request.scope, &request.options);
    if phases.is_empty() {
        return Err(SyncError::InvalidRequest(
            "nothing to do: the requested phases write none of the requested entity types".into(),
        ));
    }
    Ok(phases)
}

/// Whether a sync of `running` does everything `wanted` asks for, so that one result
/// answers both: the phases each resolves to, and no narrower products, `since` or
/// refresh. A nuke deletes data first, so it is never shared.
pub fn covers(running: &SyncRequest, wanted: &SyncRequest) -> bool {
    let (Ok(ran), Ok(want)) = (resolve(running), resolve(wanted)) else { return false };
    let (r, w) = (&running.options, &wanted.options);
    let options = !r.nuke && !w.nuke && (r.force_refresh || !w.force_refresh);
    let phases = want.iter().all(|p| ran.contains(p));
    let products = match (&running.scope.product_ids, &wanted.scope.product_ids) {
        (None, _) => true,
        (Some(r), Some(w)) => w.iter().all(|id| r.contains(id)),
        (Some(_), None) => false,
    };
    let since = match (running.scope.since, wanted.scope.since) {
        (None, _) => true,
        (Some(r), Some(w)) => r <= w,
        (Some(_), None) => false,
    };
    options && phases && products && since
}

pub fn kind_of(phase: Phase) -> EntityKind {
    match phase {
        Phase::Products => EntityKind::Products,
        Phase::Features => EntityKind::Features,
        Phase::NewTests => EntityKind::Tests,
        Phase::Bugs => EntityKind::Bugs,
    }
}

pub fn writes_allowed(scope: &Scope, kind: EntityKind) -> bool {
    scope.entity_types.as_ref().is_none_or(|kinds| kinds.contains(&kind))
}

/// The listed products that the scope covers, in API order, plus the scoped ids that the
/// account does not have (so the caller can say so instead of silently doing nothing).
pub fn products_in_scope(listed: &[ProductSummary], scope: &Scope) -> (Vec<ProductSummary>, Vec<u64>) {
    let Some(ids) = &scope.product_ids else {
        return (listed.to_vec(), Vec::new());
    };
    let selected = listed.iter().filter(|p| ids.contains(&p.id)).cloned().collect();
    let missing = ids.iter().copied().filter(|id| !listed.iter().any(|p| p.id == *id)).collect();
    (selected, missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(kinds: Option<Vec<EntityKind>>) -> Scope {
        Scope { product_ids: None, since: None, entity_types: kinds }
    }

    fn options(incremental_only: bool) -> Options {
        Options { force_refresh: false, incremental_only, nuke: false, max_age_seconds: None }
    }

    #[test]
    fn phases_run_in_canonical_order_whatever_the_request_order() {
        let got = phases(&[Phase::NewTests, Phase::Products, Phase::Features], &scope(None), &options(false));
        assert_eq!(got, vec![Phase::Products, Phase::Features, Phase::NewTests]);
    }

    #[test]
    fn only_requested_phases_run_and_bugs_only_on_request() {
        assert_eq!(phases(&[Phase::Features], &scope(None), &options(false)), vec![Phase::Features]);
        assert_eq!(phases(&[], &scope(None), &options(false)), vec![Phase::Products, Phase::Features, Phase::NewTests]);
    }

    #[test]
    fn incremental_only_keeps_just_new_tests() {
        let got = phases(&[Phase::Products, Phase::Features, Phase::NewTests], &scope(None), &options(true));
        assert_eq!(got, vec![Phase::NewTests]);
        let got = phases(&[Phase::Bugs, Phase::Products, Phase::NewTests], &scope(None), &options(true));
        assert_eq!(got, vec![Phase::NewTests, Phase::Bugs], "requested bugs come along");
    }

    #[test]
    fn entity_types_drop_the_phases_that_would_write_other_kinds() {
        let got = phases(&[], &scope(Some(vec![EntityKind::Tests])), &options(false));
        assert_eq!(got, vec![Phase::NewTests]);
    }

    fn request(phases: &[Phase], product_ids: Option<Vec<u64>>, since: Option<i64>, force: bool) -> SyncRequest {
        SyncRequest {
            phases: phases.to_vec(),
            scope: Scope { product_ids, since, entity_types: None },
            options: Options { force_refresh: force, incremental_only: false, nuke: false, max_age_seconds: None },
        }
    }

    fn default_request() -> SyncRequest {
        request(&[], None, None, false)
    }

    #[test]
    fn an_empty_phase_list_means_the_default_phases_so_a_bugs_only_sync_covers_no_default_request() {
        let bugs_only = request(&[Phase::Bugs], None, None, false);
        assert!(!covers(&bugs_only, &default_request()));
        let listed = request(&[Phase::Products, Phase::Features, Phase::NewTests], None, None, false);
        assert!(covers(&default_request(), &listed) && covers(&listed, &default_request()));
        assert!(covers(
            &request(&[Phase::NewTests, Phase::Bugs, Phase::Products, Phase::Features], None, None, false),
            &default_request()
        ));
    }

    #[test]
    fn a_sync_of_everything_covers_any_narrower_request() {
        let all = default_request();
        assert!(covers(&all, &request(&[], Some(vec![2]), None, false)));
        assert!(covers(&all, &request(&[], None, Some(1_000), false)));
        let mut tests_only = default_request();
        tests_only.scope.entity_types = Some(vec![EntityKind::Tests]);
        assert!(covers(&all, &tests_only));
        let mut incremental = default_request();
        incremental.options.incremental_only = true;
        assert!(covers(&all, &incremental), "new tests only is part of every default sync");
    }

    #[test]
    fn a_narrower_or_lighter_sync_does_not_cover_a_wider_request() {
        assert!(!covers(&request(&[], Some(vec![1]), None, false), &request(&[], Some(vec![1, 2]), None, false)));
        assert!(!covers(&request(&[], Some(vec![1]), None, false), &default_request()));
        assert!(!covers(&request(&[], None, Some(2_000), false), &request(&[], None, Some(1_000), false)));
        assert!(!covers(&request(&[], None, Some(2_000), false), &default_request()));
        assert!(!covers(&default_request(), &request(&[], None, None, true)), "a forced refresh is not a normal sync");
        assert!(!covers(&request(&[Phase::NewTests], None, None, false), &default_request()));
        let mut incremental = default_request();
        incremental.options.incremental_only = true;
        assert!(!covers(&incremental, &default_request()));
        let mut tests_only = default_request();
        tests_only.scope.entity_types = Some(vec![EntityKind::Tests]);
        assert!(!covers(&tests_only, &default_request()));
    }

    #[test]
    fn a_nuke_or_an_invalid_request_is_covered_by_nothing() {
        let mut nuke = default_request();
        nuke.options.nuke = true;
        assert!(!covers(&nuke, &nuke.clone()));
        assert!(!covers(&default_request(), &nuke));
        let empty_ids = request(&[], Some(vec![]), None, false);
        assert!(!covers(&default_request(), &empty_ids));
        let mut nothing = request(&[Phase::Products], None, None, false);
        nothing.scope.entity_types = Some(vec![EntityKind::Bugs]);
        assert!(!covers(&default_request(), &nothing));
    }

    #[test]
    fn invalid_requests_say_why() {
        assert!(
            matches!(resolve(&request(&[], Some(vec![]), None, false)), Err(SyncError::InvalidRequest(m)) if m.contains("empty"))
        );
        let mut nothing = request(&[Phase::Products], None, None, false);
        nothing.scope.entity_types = Some(vec![EntityKind::Bugs]);
        assert!(matches!(resolve(&nothing), Err(SyncError::InvalidRequest(m)) if m.contains("nothing to do")));
    }

    #[test]
    fn scoped_ids_missing_from_the_account_are_reported() {
        let listed: Vec<ProductSummary> = [1, 2, 3]
            .map(|id| ProductSummary {
                id,
                name: format!("p{id}"),
                section_ids: vec![],
                sections_with_default_ids: vec![],
            })
            .to_vec();
        let s = Scope { product_ids: Some(vec![2, 9]), since: None, entity_types: None };
        let (selected, missing) = products_in_scope(&listed, &s);
        assert_eq!(selected.iter().map(|p| p.id).collect::<Vec<_>>(), vec![2]);
        assert_eq!(missing, vec![9]);
    }
}
