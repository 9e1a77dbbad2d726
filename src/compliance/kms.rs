//! Master keys held by AWS KMS (`kms://<key id, ARN or alias>`).
