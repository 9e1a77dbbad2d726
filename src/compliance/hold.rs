//! Legal holds on sagas (`put_meta` kind `hold`): a held saga is neither
//! erased nor collected by `gc`.
