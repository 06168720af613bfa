use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use lvsd::lvscf::{StaticLookup, parse_str};

use super::*;

const P: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const PP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const BP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const OTHER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

const PAIR: &str = "primary = 192.0.2.1\nbackup = 192.0.2.2\nbackup_active = 1\n";

fn cf(text: &str) -> Config {
    parse_str("t.cf", text, &StaticLookup::new()).unwrap_or_else(|e| panic!("{e}"))
}

fn map(text: &str, local: &[Ipv4Addr]) -> Result<PulseConfig, ConfigError> {
    PulseConfig::new(&cf(text), local, false)
}

#[test]
fn primary_and_backup_see_each_other() {
    let text = format!("{PAIR}heartbeat_port = 1050\nkeepalive = 0.5\ndeadtime = 3\n");
    let p = map(&text, &[Ipv4Addr::LOCALHOST, P]).expect("primary");
    assert_eq!(p.role, Role::Primary);
    assert_eq!(
        p.local,
        Addresses {
            public: P,
            private: None
        }
    );
    assert_eq!(
        p.partner,
        Some(Addresses {
            public: B,
            private: None
        })
    );
    assert_eq!(p.port, 1050);
    assert_eq!(
        p.settings,
        Settings {
            role: Role::Primary,
            keepalive: Duration::from_millis(500),
            deadtime: Duration::from_secs(3),
            send_heartbeats: true,
            monitor_links: false,
            force_active: false,
        }
    );
    let b = map(&text, &[B]).expect("backup");
    assert_eq!(b.role, Role::Backup);
    assert_eq!(b.local.public, B);
    assert_eq!(b.partner.map(|a| a.public), Some(P));
    assert_eq!(b.settings.role, Role::Backup);
}

#[test]
fn flags_and_switches_reach_the_settings() {
    let text = format!("{PAIR}monitor_links = 1\n");
    let p = PulseConfig::new(&cf(&text), &[P], true).expect("primary");
    assert!(p.settings.force_active);
    assert!(p.settings.monitor_links);
}

#[test]
fn private_addresses_add_a_second_path() {
    let text = format!("{PAIR}primary_private = 10.0.0.1\nbackup_private = 10.0.0.2\n");
    let p = map(&text, &[P, PP]).expect("primary");
    assert_eq!(
        p.local,
        Addresses {
            public: P,
            private: Some(PP)
        }
    );
    assert_eq!(
        p.partner,
        Some(Addresses {
            public: B,
            private: Some(BP)
        })
    );
    let b = map(&text, &[B, BP]).expect("backup");
    assert_eq!(
        b.local,
        Addresses {
            public: B,
            private: Some(BP)
        }
    );
    assert_eq!(
        b.partner,
        Some(Addresses {
            public: P,
            private: Some(PP)
        })
    );
}

#[test]
fn half_a_private_pair_is_refused() {
    let text = format!("{PAIR}primary_private = 10.0.0.1\n");
    let e = map(&text, &[P]).expect_err("half private");
    assert!(
        matches!(
            e,
            ConfigError::HalfPrivate {
                given: "primary_private",
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "primary_private is set but backup_private is not: private heartbeats need both \
         directors' private addresses"
    );
}

#[test]
fn a_host_that_is_neither_director_is_told_its_addresses() {
    let e = map(PAIR, &[Ipv4Addr::LOCALHOST, OTHER]).expect_err("neither");
    assert_eq!(
        e.to_string(),
        "this host is neither primary (192.0.2.1) nor backup (192.0.2.2): its addresses are \
         127.0.0.1, 198.51.100.7"
    );
    let e = map(PAIR, &[]).expect_err("no addresses");
    assert!(e.to_string().ends_with("its addresses are none"), "{e}");
}

#[test]
fn ambiguous_or_missing_roles_are_refused() {
    assert!(matches!(
        map(PAIR, &[P, B]),
        Err(ConfigError::BothRoles { .. })
    ));
    assert!(matches!(
        map("backup = 192.0.2.2\n", &[B]),
        Err(ConfigError::NoPrimary)
    ));
    assert!(matches!(
        map("primary = 192.0.2.1\nbackup = 192.0.2.1\n", &[P]),
        Err(ConfigError::SameAddress { addr: P })
    ));
    assert!(matches!(
        map("service = fos\nprimary = 192.0.2.1\n", &[P]),
        Err(ConfigError::FosMode)
    ));
}

#[test]
fn an_inactive_backup_does_not_run() {
    let e = map("primary = 192.0.2.1\nbackup = 192.0.2.2\n", &[B]).expect_err("inactive");
    assert!(
        matches!(e, ConfigError::BackupInactive { backup: B }),
        "{e:?}"
    );
}

#[test]
fn a_lone_primary_has_no_partner_and_sends_nothing() {
    let p = map("primary = 192.0.2.1\nbackup_active = 1\n", &[P]).expect("lone primary");
    assert_eq!(p.partner, None);
    assert!(!p.settings.send_heartbeats);
    assert!(p.startup_warnings().is_empty());
}

#[test]
fn bad_timing_and_port_are_refused() {
    let e = map(&format!("{PAIR}keepalive = 5\ndeadtime = 5\n"), &[P]).expect_err("timing");
    assert!(
        matches!(
            e,
            ConfigError::Settings(SettingsError::DeadtimeTooShort { .. })
        ),
        "{e:?}"
    );
    let e = map(&format!("{PAIR}heartbeat_port = 0\n"), &[P]).expect_err("port");
    assert!(matches!(e, ConfigError::ZeroPort), "{e:?}");
}

#[test]
fn without_a_key_pulse_warns_at_start() {
    let p = map(PAIR, &[P]).expect("primary");
    assert!(p.auth.is_none());
    assert_eq!(p.startup_warnings(), vec![UNAUTHENTICATED_WARNING]);
    assert!(UNAUTHENTICATED_WARNING.contains("NOT authenticated"));
    assert!(UNAUTHENTICATED_WARNING.contains("heartbeat_key"));
}

#[test]
fn a_key_selects_the_authenticated_format() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pulse.key");
    let mut f = fs::File::create(&path).expect("create key");
    f.write_all(b"a shared secret of enough length\n")
        .expect("write key");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    let text = format!("{PAIR}heartbeat_key = {}\ncluster_id = 7\n", path.display());
    let p = map(&text, &[P]).expect("keyed");
    let keyed = p.auth.as_ref().expect("a key");
    assert_eq!(keyed.file, path);
    assert_eq!(keyed.cluster_id, 7);
    assert!(p.startup_warnings().is_empty());

    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
    let e = map(&text, &[P]).expect_err("world-readable");
    assert!(
        matches!(e, ConfigError::Key(KeyError::TooOpen { .. })),
        "{e:?}"
    );
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
}
