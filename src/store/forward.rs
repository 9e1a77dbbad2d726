//! The `SnapshotStore` methods a backend folder answers from its own
//! `read`, `write`, `index` and `conn` files, forwarded the same way for
//! every backend laid out so (Redis and the object stores; the SQL stores
//! share more than forwarding, see `sql::impl_sql_store`).

/// `impl SnapshotStore for $ty`: the methods given in the braces (what the
/// backend writes itself: capabilities, location, saves, anything it
/// overrides) followed by every other method forwarded to the function of
/// the same name in the invoking module's `read`, `write`, `index` or
/// `conn` file.
macro_rules! impl_store_from_files {
    ($ty:ty { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl $crate::store::SnapshotStore for $ty {
            $($own)*

            async fn get_snapshot(
                &self,
                snapshot_id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::model::Snapshot>> {
                read::get_snapshot(self, snapshot_id).await
            }

            async fn latest_snapshot(
                &self,
                saga_id: &str,
                step: Option<&str>,
            ) -> $crate::store::StoreResult<Option<$crate::model::Snapshot>> {
                read::latest_snapshot(self, saga_id, step).await
            }

            async fn snapshot_at(
                &self,
                saga_id: &str,
                at: $crate::model::Timestamp,
            ) -> $crate::store::StoreResult<Option<$crate::model::Snapshot>> {
                read::snapshot_at(self, saga_id, at).await
            }

            async fn list_snapshots(
                &self,
                saga_id: &str,
                q: &$crate::store::SnapshotQuery,
            ) -> $crate::store::StoreResult<$crate::store::Listing<$crate::model::Snapshot>> {
                read::list_snapshots(self, saga_id, q).await
            }

            async fn count_snapshots(&self, saga_id: &str) -> $crate::store::StoreResult<u64> {
                read::count_snapshots(self, saga_id).await
            }

            async fn delete_snapshot(&self, snapshot_id: &str) -> $crate::store::StoreResult<bool> {
                write::delete_snapshot(self, snapshot_id).await
            }

            async fn delete_saga(&self, saga_id: &str) -> $crate::store::StoreResult<u64> {
                write::delete_saga(self, saga_id).await
            }

            async fn delete_expired(
                &self,
                now: $crate::model::Timestamp,
            ) -> $crate::store::StoreResult<u64> {
                write::delete_expired(self, now).await
            }

            async fn save_replay(
                &self,
                log: &$crate::model::ReplayLog,
            ) -> $crate::store::StoreResult<()> {
                write::save_replay(self, log).await
            }

            async fn delete_replay(&self, replay_id: &str) -> $crate::store::StoreResult<bool> {
                write::delete_replay(self, replay_id).await
            }

            async fn get_replay(
                &self,
                replay_id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::model::ReplayLog>> {
                read::get_replay(self, replay_id).await
            }

            async fn list_replays(
                &self,
                original_saga_id: &str,
                limit: Option<usize>,
            ) -> $crate::store::StoreResult<$crate::store::Listing<$crate::model::ReplayLog>> {
                read::list_replays(self, original_saga_id, limit).await
            }

            async fn replay_producing(
                &self,
                new_saga_id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::model::ReplayLog>> {
                read::replay_producing(self, new_saga_id).await
            }

            async fn list_sagas(
                &self,
                filter: &$crate::store::SagaFilter,
                page: &$crate::store::SagaPageRequest,
            ) -> $crate::store::StoreResult<$crate::store::SagaPage> {
                index::list_sagas(self, filter, page).await
            }

            async fn saga_summary(
                &self,
                saga_id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::model::SagaSummary>> {
                index::saga_summary(self, saga_id).await
            }

            async fn count_sagas(
                &self,
                filter: &$crate::store::SagaFilter,
            ) -> $crate::store::StoreResult<u64> {
                index::count_sagas(self, filter).await
            }

            async fn health(&self) -> $crate::store::StoreResult<$crate::store::Health> {
                conn::health(self).await
            }

            async fn try_lock(
                &self,
                name: &str,
                owner: &str,
                ttl: std::time::Duration,
            ) -> $crate::store::StoreResult<$crate::store::LockOutcome> {
                write::try_lock(self, name, owner, ttl).await
            }

            async fn unlock(&self, name: &str, owner: &str) -> $crate::store::StoreResult<()> {
                write::unlock(self, name, owner).await
            }
        }
    };
}
pub(super) use impl_store_from_files;
