//! Reading the shared heartbeat key named by `heartbeat_key` in lvs.cf.
//!
//! The rules follow ssh's for private keys: the file must be a regular file that only its
//! owner can read or write (`mode & 0o077 == 0`), and it must hold at least
//! [`MIN_KEY_LEN`] bytes of key material. One trailing newline (`\n` or `\r\n`) is not part
//! of the key, so that `head -c 32 /dev/urandom | base64 > key` and an editor-saved file
//! give the same key on both directors. Every refusal names the file.
//!
//! The file is opened once and its metadata read from the open descriptor, so the mode that
//! is checked is the mode of the bytes that are read.
//!
//! Both daemons read it: pulse signs its heartbeats with it (`pulse::key` wraps the bytes
//! in its `AuthKey`), lvsd its sync datagrams (`ipvs_core::sync::SyncKey`).

use std::fs::File;
use std::io::{self, Read as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// Fewest bytes of key material accepted (128 bits), as pulse's and the sync's HMACs need.
pub const MIN_KEY_LEN: usize = 16;

/// Largest key file read; a longer one is a mistake (a wrong path), not a key.
pub const MAX_KEY_FILE_LEN: u64 = 4096;

/// Why the key file was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file does not exist.
    #[error("heartbeat key file {path}: no such file")]
    Missing {
        /// The configured path.
        path: PathBuf,
    },
    /// The file exists but cannot be opened or read (permissions, I/O error).
    #[error("heartbeat key file {path}: cannot read: {source}")]
    Unreadable {
        /// The configured path.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// A directory, device, FIFO or socket.
    #[error("heartbeat key file {path}: not a regular file")]
    NotAFile {
        /// The configured path.
        path: PathBuf,
    },
    /// Group or others may read or write it.
    #[error(
        "heartbeat key file {path}: mode {mode:04o} lets group or others access it; \
         run `chmod 600 {path}`"
    )]
    TooOpen {
        /// The configured path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Less key material than [`MIN_KEY_LEN`] bytes.
    #[error(
        "heartbeat key file {path}: {len} bytes of key, need at least {MIN_KEY_LEN} \
         (e.g. `head -c 32 /dev/urandom | base64 > {path}`)"
    )]
    TooShort {
        /// The configured path.
        path: PathBuf,
        /// Bytes of key material found (after the trailing newline is removed).
        len: usize,
    },
    /// Longer than [`MAX_KEY_FILE_LEN`].
    #[error("heartbeat key file {path}: larger than {MAX_KEY_FILE_LEN} bytes, not a key")]
    TooLong {
        /// The configured path.
        path: PathBuf,
    },
}

/// Key material read from a key file. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyMaterial(Vec<u8>);

impl KeyMaterial {
    /// The key's bytes (at least [`MIN_KEY_LEN`]).
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyMaterial({} bytes)", self.0.len())
    }
}

/// Reads and checks the key file at `path`.
pub fn read_key_file(path: &Path) -> Result<KeyMaterial, KeyError> {
    let unreadable = |source: io::Error| KeyError::Unreadable {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => KeyError::Missing {
            path: path.to_owned(),
        },
        _ => unreadable(e),
    })?;
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(KeyError::NotAFile {
            path: path.to_owned(),
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_KEY_FILE_LEN {
        return Err(KeyError::TooLong {
            path: path.to_owned(),
        });
    }
    let material = key_material(&bytes);
    if material.len() < MIN_KEY_LEN {
        return Err(KeyError::TooShort {
            path: path.to_owned(),
            len: material.len(),
        });
    }
    Ok(KeyMaterial(material.to_vec()))
}

/// The file's bytes without one trailing `\n` or `\r\n`.
fn key_material(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    bytes.strip_suffix(b"\r").unwrap_or(bytes)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Write as _;

    use super::*;

    fn key_file(contents: &[u8], mode: u32) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(contents).expect("write key");
        fs::set_permissions(f.path(), fs::Permissions::from_mode(mode)).expect("chmod");
        f
    }

    #[test]
    fn a_private_file_with_enough_material_is_a_key() {
        let f = key_file(b"0123456789abcdef\n", 0o600);
        assert!(read_key_file(f.path()).is_ok());
        let f = key_file(b"0123456789abcdef", 0o400);
        assert!(read_key_file(f.path()).is_ok());
    }

    #[test]
    fn the_trailing_newline_is_not_key_material() {
        assert_eq!(key_material(b"abc\n"), b"abc");
        assert_eq!(key_material(b"abc\r\n"), b"abc");
        assert_eq!(key_material(b"abc\n\n"), b"abc\n");
        assert_eq!(key_material(b"abc"), b"abc");
        // The same key with and without a newline.
        let with = read_key_file(key_file(b"0123456789abcdef\n", 0o600).path()).expect("key");
        let without = read_key_file(key_file(b"0123456789abcdef", 0o600).path()).expect("key");
        assert_eq!(with, without);
        assert_eq!(format!("{with:?}"), "KeyMaterial(16 bytes)");
    }

    #[test]
    fn fifteen_bytes_and_a_newline_are_too_short() {
        let f = key_file(b"0123456789abcde\n", 0o600);
        let e = read_key_file(f.path()).expect_err("too short");
        assert!(matches!(e, KeyError::TooShort { len: 15, .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains(&f.path().display().to_string()), "{msg}");
        assert!(msg.contains("15 bytes of key, need at least 16"), "{msg}");
    }

    #[test]
    fn group_or_world_access_is_refused() {
        for mode in [0o640, 0o604, 0o620, 0o602, 0o644, 0o666] {
            let f = key_file(b"0123456789abcdef0123", mode);
            let e = read_key_file(f.path()).expect_err("too open");
            assert!(
                matches!(e, KeyError::TooOpen { mode: m, .. } if m == mode),
                "{mode:o}: {e:?}"
            );
            let msg = e.to_string();
            assert!(msg.contains(&f.path().display().to_string()), "{msg}");
            assert!(msg.contains("chmod 600"), "{msg}");
        }
    }

    #[test]
    fn a_missing_file_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("pulse.key");
        let e = read_key_file(&path).expect_err("missing");
        assert!(matches!(e, KeyError::Missing { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!("heartbeat key file {}: no such file", path.display())
        );
    }

    #[test]
    fn a_directory_is_not_a_key_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).expect("chmod");
        let e = read_key_file(dir.path()).expect_err("directory");
        assert!(matches!(e, KeyError::NotAFile { .. }), "{e:?}");
    }

    #[test]
    fn an_unreadable_file_is_refused() {
        // Root reads a mode-000 file anyway; the test then only checks the mode is accepted.
        let f = key_file(b"0123456789abcdef", 0o000);
        match read_key_file(f.path()) {
            Err(KeyError::Unreadable { path, .. }) => assert_eq!(path, f.path()),
            Ok(_) => {} // running as root
            Err(e) => panic!("unexpected {e:?}"),
        }
    }

    #[test]
    fn a_huge_file_is_not_a_key() {
        let f = key_file(&[b'k'; 5000], 0o600);
        let e = read_key_file(f.path()).expect_err("too long");
        assert!(matches!(e, KeyError::TooLong { .. }), "{e:?}");
    }
}
