//! The `SnapshotStore` impl both SQL stores get from one macro.

/// Implements [`SnapshotStore`](crate::store::SnapshotStore) for a SQL store (a
/// [`SqlStore`](super::SqlStore)). Reads by id, deletes, the replay log's reads and locks
/// are the functions of `sql`; saves, the saga list and health are
/// the store's inherent methods of the same names, in its folder's `write`,
/// `index` and `conn` files (an inherent method takes precedence over the
/// trait's); `$own` holds the rest: `capabilities`, `location`, and whatever
/// the store answers beyond the trait's defaults.
macro_rules! impl_sql_store {
    ($store:ty, { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl $crate::store::SnapshotStore for $store {
            $($own)*

            async fn save_snapshot(
                &self,
                snapshot: &$crate::model::Snapshot,
            ) -> $crate::store::StoreResult<()> {
                self.save_snapshot(snapshot).await
            }

            async fn save_snapshots(
                &self,
                snapshots: &[$crate::model::Snapshot],
            ) -> $crate::store::StoreResult<()> {
                self.save_snapshots(snapshots).await
            }

            async fn get_snapshot(
                &self,
                snapshot_id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::model::Snapshot>> {
                $crate::store::sql::get_snapshot(self, snapshot_id).await
            }

            async fn latest_snapshot(
                &self,
                saga_id: &str,
                step: Option<&str>,
            ) -> $crate::store::StoreResult<Option<$crate::model::Snapshot>> {
                $crate::store::sql::latest_snapshot(self, saga_id, step).await
            }

            async fn snapshot_at(
                &self,
                saga_id: &str,
                at: $crate::model::Timestamp,
            ) -> $crate::store::StoreResult<Option<$crate::model::Snapshot>> {
                $crate::store::sql::snapshot_at(self, saga_id, at).await
            }

            async fn list_snapshots(
                &self,
                saga_id: &str,
                q: &$crate::store::SnapshotQuery,
            ) -> $crate::store::StoreResult<$crate::store::Listing<$crate::model::Snapshot>> {
                $crate::store::sql::list_snapshots(self, saga_id, q).await
            }

            async fn count_snapshots(&self, saga_id: &str) -> $crate::store::StoreResult<u64> {
                $crate::store::sql::count_snapshots(self, saga_id).await
            }

            async fn delete_snapshot(&self, snapshot_id: &str) -> $crate::store::StoreResult<bool> {
                $crate::store::sql::delete_snapshot(self, snapshot_id).await
            }

            async fn delete_saga(&self, saga_id: &str) -> $crate::store::StoreResult<u64> {
                $crate::store::sql::delete_saga(self, saga_id).await
            }

            async fn delete_expired(
                &self,
                now: $crate::model::Timestamp,
            ) -> $crate::store::StoreResult<u64> {
                $crate::store::sql::delete_expired(self, now).await
            }

            async fn save_replay(
                &self,
                log: &$crate::model::ReplayLog,
            ) -> $crate::store::StoreResult<()> {
                self.save_replay(log).await
            }

            async fn delete_replay(&self, replay_id: &str) -> $crate::store::StoreResult<bool> {
                self.delete_replay(replay_id).await
            }

            async fn get_replay(
                &self,
                replay_id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::model::ReplayLog>> {
                $crate::store::sql::get_replay(self, replay_id).await
            }

            async fn list_replays(
                &self,
                original_saga_id: &str,
                limit: Option<usize>,
            ) -> $crate::store::StoreResult<$crate::store::Listing<$crate::model::ReplayLog>> {
                $crate::store::sql::list_replays(self, original_saga_id, limit).await
            }

            async fn replay_producing(
                &self,
                new_saga_id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::model::ReplayLog>> {
                $crate::store::sql::replay_producing(self, new_saga_id).await
            }

            async fn snapshots_of_sagas(
                &self,
                saga_ids: &[String],
            ) -> $crate::store::StoreResult<$crate::store::Listing<$crate::model::Snapshot>> {
                $crate::store::sql::snapshots_of_sagas(self, saga_ids).await
            }

            async fn replays_of_sagas(
                &self,
                saga_ids: &[String],
            ) -> $crate::store::StoreResult<$crate::store::Listing<$crate::model::ReplayLog>> {
                $crate::store::sql::replays_of_sagas(self, saga_ids).await
            }

            async fn list_sagas(
                &self,
                filter: &$crate::store::SagaFilter,
                page: &$crate::store::SagaPageRequest,
            ) -> $crate::store::StoreResult<$crate::store::SagaPage> {
                self.list_sagas(filter, page).await
            }

            async fn saga_summary(
                &self,
                saga_id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::model::SagaSummary>> {
                self.saga_summary(saga_id).await
            }

            async fn count_sagas(
                &self,
                filter: &$crate::store::SagaFilter,
            ) -> $crate::store::StoreResult<u64> {
                self.count_sagas(filter).await
            }

            async fn health(&self) -> $crate::store::StoreResult<$crate::store::Health> {
                self.health().await
            }

            async fn try_lock(
                &self,
                name: &str,
                owner: &str,
                ttl: std::time::Duration,
            ) -> $crate::store::StoreResult<$crate::store::LockOutcome> {
                $crate::store::sql::try_lock(self, name, owner, ttl).await
            }

            async fn unlock(&self, name: &str, owner: &str) -> $crate::store::StoreResult<()> {
                $crate::store::sql::unlock(self, name, owner).await
            }

            async fn put_meta(
                &self,
                kind: &str,
                key: &str,
                value: &serde_json::Value,
            ) -> $crate::store::StoreResult<()> {
                $crate::store::sql::put_meta(self, kind, key, value).await
            }

            async fn insert_meta(
                &self,
                kind: &str,
                key: &str,
                value: &serde_json::Value,
            ) -> $crate::store::StoreResult<bool> {
                $crate::store::sql::insert_meta(self, kind, key, value).await
            }

            async fn get_meta(
                &self,
                kind: &str,
                key: &str,
            ) -> $crate::store::StoreResult<Option<serde_json::Value>> {
                $crate::store::sql::get_meta(self, kind, key).await
            }

            async fn list_meta(
                &self,
                kind: &str,
                after: Option<&str>,
                limit: usize,
            ) -> $crate::store::StoreResult<Vec<(String, serde_json::Value)>> {
                $crate::store::sql::list_meta(self, kind, after, limit).await
            }

            async fn delete_meta(&self, kind: &str, key: &str) -> $crate::store::StoreResult<bool> {
                $crate::store::sql::delete_meta(self, kind, key).await
            }
        }
    };
}
pub(in crate::store) use impl_sql_store;
