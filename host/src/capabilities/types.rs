//! `testio:sync/types`: nothing to supply, only the shared vocabulary to convert to and
//! from the host's `model`. Each other interface's own types are converted in its module.

use super::HostState;
use super::bindings::types as wit;
use crate::model::{EntityKind, Options, Phase, Scope, SyncError, SyncRequest, SyncResult, Trigger};

impl From<Phase> for wit::Phase {
    fn from(phase: Phase) -> Self {
        match phase {
            Phase::Products => wit::Phase::Products,
            Phase::Features => wit::Phase::Features,
            Phase::NewTests => wit::Phase::NewTests,
            Phase::Bugs => wit::Phase::Bugs,
        }
    }
}

impl From<wit::Phase> for Phase {
    fn from(phase: wit::Phase) -> Self {
        match phase {
            wit::Phase::Products => Phase::Products,
            wit::Phase::Features => Phase::Features,
            wit::Phase::NewTests => Phase::NewTests,
            wit::Phase::Bugs => Phase::Bugs,
        }
    }
}

impl From<EntityKind> for wit::EntityKind {
    fn from(kind: EntityKind) -> Self {
        match kind {
            EntityKind::Products => wit::EntityKind::Products,
            EntityKind::Features => wit::EntityKind::Features,
            EntityKind::Tests => wit::EntityKind::Tests,
            EntityKind::Bugs => wit::EntityKind::Bugs,
        }
    }
}

impl From<wit::EntityKind> for EntityKind {
    fn from(kind: wit::EntityKind) -> Self {
        match kind {
            wit::EntityKind::Products => EntityKind::Products,
            wit::EntityKind::Features => EntityKind::Features,
            wit::EntityKind::Tests => EntityKind::Tests,
            wit::EntityKind::Bugs => EntityKind::Bugs,
        }
    }
}

impl From<Trigger> for wit::Trigger {
    fn from(trigger: Trigger) -> Self {
        match trigger {
            Trigger::Cli => wit::Trigger::Cli,
            Trigger::Scheduler => wit::Trigger::Scheduler,
            Trigger::Mcp => wit::Trigger::Mcp,
        }
    }
}

impl From<wit::Trigger> for Trigger {
    fn from(trigger: wit::Trigger) -> Self {
        match trigger {
            wit::Trigger::Cli => Trigger::Cli,
            wit::Trigger::Scheduler => Trigger::Scheduler,
            wit::Trigger::Mcp => Trigger::Mcp,
        }
    }
}

impl From<&Scope> for wit::Scope {
    fn from(scope: &Scope) -> Self {
        wit::Scope {
            product_ids: scope.product_ids.clone(),
            since: scope.since,
            entity_types: scope.entity_types.as_ref().map(|kinds| kinds.iter().map(|&k| k.into()).collect()),
        }
    }
}

impl From<Options> for wit::Options {
    fn from(options: Options) -> Self {
        wit::Options {
            force_refresh: options.force_refresh,
            incremental_only: options.incremental_only,
            nuke: options.nuke,
            max_age_seconds: options.max_age_seconds,
        }
    }
}

impl From<&SyncRequest> for wit::SyncRequest {
    fn from(request: &SyncRequest) -> Self {
        wit::SyncRequest {
            phases: request.phases.iter().map(|&p| p.into()).collect(),
            scope: (&request.scope).into(),
            options: request.options.into(),
        }
    }
}

impl From<wit::SyncResult> for SyncResult {
    fn from(r: wit::SyncResult) -> Self {
        SyncResult {
            phases_completed: r.phases_completed.into_iter().map(Phase::from).collect(),
            products_synced: r.products_synced,
            features_refreshed: r.features_refreshed,
            tests_discovered: r.tests_discovered,
            tests_updated: r.tests_updated,
            bugs_refreshed: r.bugs_refreshed,
            tests_rechecked: r.tests_rechecked,
            tests_changed: r.tests_changed,
            rows_removed: r.rows_removed,
            duration_seconds: r.duration_seconds,
            warnings: r.warnings,
            errors: r.errors,
        }
    }
}

impl From<wit::SyncError> for SyncError {
    fn from(error: wit::SyncError) -> Self {
        match error {
            wit::SyncError::LockBusy(m) => SyncError::LockBusy(m),
            wit::SyncError::LockFailed(m) => SyncError::LockFailed(m),
            wit::SyncError::Unauthorized(m) => SyncError::Unauthorized(m),
            wit::SyncError::Forbidden(m) => SyncError::Forbidden(m),
            wit::SyncError::InvalidRequest(m) => SyncError::InvalidRequest(m),
            wit::SyncError::StoreFailed(m) => SyncError::StoreFailed(m),
            wit::SyncError::ApiFailed(m) => SyncError::ApiFailed(m),
        }
    }
}

impl wit::Host for HostState {}
