//! The heartbeat key: lvs.cf's `heartbeat_key` file, read by the rules of
//! [`lvsd::key`] (shared with lvsd's connection sync), as pulse's [`AuthKey`].

use std::path::Path;

pub use lvsd::key::{KeyError, MAX_KEY_FILE_LEN, MIN_KEY_LEN};

use crate::wire::auth::AuthKey;

/// Reads and checks the key file at `path`.
pub fn read_key_file(path: &Path) -> Result<AuthKey, KeyError> {
    let material = lvsd::key::read_key_file(path)?;
    AuthKey::new(material.bytes()).map_err(|e| KeyError::TooShort {
        path: path.to_owned(),
        len: e.len,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use crate::wire::auth::{Receiver, Sender};
    use crate::wire::{PeerState, Role};

    #[test]
    fn the_same_key_with_and_without_a_newline_authenticates_the_same_heartbeats() {
        let file = |contents: &[u8]| {
            let mut f = tempfile::NamedTempFile::new().expect("temp file");
            f.write_all(contents).expect("write key");
            std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(0o600))
                .expect("chmod");
            f
        };
        let with = read_key_file(file(b"0123456789abcdef\n").path()).expect("key");
        let without = read_key_file(file(b"0123456789abcdef").path()).expect("key");
        let mut tx = Sender::new(with, Role::Primary, 1, 1);
        let mut rx = Receiver::new(without, 1, Role::Primary);
        assert!(rx.receive(&tx.heartbeat(PeerState::Active)).is_ok());
    }

    #[test]
    fn pulse_and_lvsd_agree_on_the_shortest_key() {
        assert_eq!(MIN_KEY_LEN, crate::wire::auth::MIN_KEY_LEN);
        assert_eq!(MIN_KEY_LEN, ipvs_core::sync::MIN_KEY_LEN);
    }
}
