//! Which phases run, in which order, and which products are in scope.

use crate::bindings::customer_api::ProductSummary;
use crate::bindings::types::{EntityKind, Options, Phase, Scope};

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
        Options { force_refresh: false, incremental_only, nuke: false }
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
