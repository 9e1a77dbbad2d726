//! The AWS SDK settings the S3 store and the KMS master keys share: the
//! standard chain (environment, profiles, instance roles), overridden by
//! what the URL names, with bounded retries and timeouts.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// How hard a client tries before it reports a failure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Patience {
    /// Attempts per request (the SDK's default is 3).
    pub attempts: u32,
    /// Time for one attempt.
    pub attempt: Duration,
    /// Time for a whole operation, retries included.
    pub operation: Duration,
}

/// The SDK config for a client: the standard chain, then the URL's
/// `region`, `profile` and `endpoint` over it. Connecting waits 5 s at
/// most, so an unreachable endpoint says so within seconds.
pub(crate) async fn sdk_config(
    region: Option<&str>,
    profile: Option<&str>,
    endpoint: Option<&str>,
    patience: Patience,
) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            aws_config::retry::RetryConfig::standard().with_max_attempts(patience.attempts),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(patience.attempt)
                .operation_timeout(patience.operation)
                .build(),
        );
    if let Some(r) = region {
        loader = loader.region(aws_config::Region::new(r.to_string()));
    }
    if let Some(p) = profile {
        loader = loader.profile_name(p);
    }
    if let Some(e) = endpoint {
        loader = loader.endpoint_url(e);
    }
    loader.load().await
}
