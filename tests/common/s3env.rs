//! S3 test environment: the local S3-compatible server `.ci/services/s3.sh`
//! starts (moto on 127.0.0.1:9000), test credentials, and buckets.
#![allow(dead_code)]

use std::sync::Once;

use sagascope::store::s3::{self, S3Settings};

/// The endpoint tests use (`SAGASCOPE_TEST_S3_ENDPOINT` overrides it).
pub fn endpoint() -> String {
    std::env::var("SAGASCOPE_TEST_S3_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:9000".into())
}

fn host_port(endpoint: &str) -> String {
    endpoint
        .split_once("://")
        .map_or(endpoint, |(_, r)| r)
        .trim_end_matches('/')
        .to_string()
}

/// moto accepts any credentials; set test ones unless the environment has
/// its own.
pub fn set_test_credentials() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            std::env::set_var("AWS_ACCESS_KEY_ID", "test");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
        }
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    });
}

/// A store URL for `bucket`/`prefix` on the test server.
pub fn url(bucket: &str, prefix: &str, extra: &str) -> String {
    format!(
        "s3://{bucket}/{prefix}?endpoint={}&path_style=true&region=us-east-1{extra}",
        endpoint()
    )
}

/// An SDK client for the test server, with the bucket created; `None` (after
/// a SKIP line, or a panic in CI) when the server is not answering.
pub async fn client_with_bucket(bucket: &str) -> Option<aws_sdk_s3::Client> {
    let ep = endpoint();
    if !crate::common::backend_available("s3", &ep, crate::common::tcp_open(&host_port(&ep))) {
        return None;
    }
    set_test_credentials();
    let mut settings = S3Settings::new(bucket);
    settings.endpoint = Some(ep);
    settings.region = Some("us-east-1".into());
    settings.path_style = Some(true);
    let client = s3::client(&settings).await;
    if let Err(e) = client.create_bucket().bucket(bucket).send().await {
        let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&e)
            .unwrap_or_default()
            .to_string();
        assert!(
            code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists",
            "create bucket {bucket}: {}",
            aws_sdk_s3::error::DisplayErrorContext(&e)
        );
    }
    Some(client)
}
