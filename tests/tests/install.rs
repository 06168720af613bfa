//! Installing, without privileges (everything goes to a directory under `target/tmp`):
//!
//! - `make install DESTDIR=<root> PREFIX=/usr` (the package layout) puts every file where the
//!   units say: the programs of every `Exec*=` line, the `man:` and `file:` pages of every
//!   `Documentation=` line; all five binaries, six manuals, the docs, the sample lvs.cf. Then
//!   `systemd-analyze verify --root=<root>` passes on both units (skipped, with a note, when
//!   systemd-analyze is missing).
//! - The sample lvs.cf stops `lvsd --check` (the units' `ExecStartPre=`) with a message that
//!   says to edit it; its example, uncommented and without that line, passes.
//! - `PREFIX=/usr/local` (the default) rewrites the units' paths to /usr/local and still
//!   verifies.
//! - An existing lvs.cf is kept by `make install` and by `make uninstall`, which removes the
//!   rest.
//! - The Debian package (cargo-deb, skipped with a note when it is missing) extracted with
//!   `dpkg-deb -x` holds the same files as `make install PREFIX=/usr`, verifies the same way,
//!   marks lvs.cf as a conffile, and its maintainer scripts neither enable nor start a unit.
//!
//! The binaries installed are those this test run was built with (`target/debug`): `make
//! install BUILD_DIR=...`; cargo-deb gets them through a throw-away target directory.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BINS: [&str; 5] = ["pulse", "lvsd", "lvsadm", "nanny", "send-arp"];
const UNITS: [&str; 2] = ["pulse.service", "lvsd.service"];
const MANUALS: [&str; 6] = [
    "man5/lvs.cf.5.gz",
    "man8/pulse.8.gz",
    "man8/lvsd.8.gz",
    "man8/lvsadm.8.gz",
    "man8/nanny.8.gz",
    "man8/send-arp.8.gz",
];
/// The sample's line that stops `lvsd --check`.
const EDIT_ME: &str =
    "THIS-IS-THE-UNEDITED-SAMPLE-lvs.cf:-edit-it-(man-5-lvs.cf)-and-delete-this-line";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the workspace root")
}

/// Where the binaries of this test run are (`target/debug`).
fn build_dir() -> PathBuf {
    tests::bin("lvsd")
        .parent()
        .expect("lvsd is in a directory")
        .to_owned()
}

/// A fresh directory under `target/tmp`, removed on drop.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("install-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether `program --version`-like `args` runs; prints a SKIP line naming `test` when not.
fn have(test: &str, program: &str, args: &[&str], hint: &str) -> bool {
    let ok = Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIP {test}: {program} is missing ({hint})");
    }
    ok
}

fn text(o: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `make -C <workspace> TARGET [VAR=value...] BUILD_DIR=<target/debug>`; panics on failure.
fn make(target: &str, vars: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new("make");
    cmd.arg("-s")
        .arg("-C")
        .arg(workspace())
        .arg(target)
        .arg(format!("BUILD_DIR={}", build_dir().display()));
    for (k, v) in vars {
        cmd.arg(format!("{k}={}", v.display()));
    }
    let out = cmd.output().expect("run make");
    assert!(out.status.success(), "make {target} failed: {}", text(&out));
    out
}

/// `make install DESTDIR=<root> PREFIX=<prefix>`.
fn make_install(root: &Path, prefix: &str) -> Output {
    make(
        "install",
        &[("DESTDIR", root), ("PREFIX", Path::new(prefix))],
    )
}

/// `root` + an absolute path.
fn under(root: &Path, abs: &str) -> PathBuf {
    root.join(abs.trim_start_matches('/'))
}

/// The values of `key=` lines of a unit.
fn values<'t>(unit: &'t str, key: &str) -> Vec<&'t str> {
    let key = format!("{key}=");
    unit.lines()
        .filter_map(|l| l.trim().strip_prefix(key.as_str()))
        .collect()
}

/// Every file below `root`, as paths relative to it.
fn files(root: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).expect("below root");
                out.insert(rel.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

/// Checks that an installed tree under `root` with `prefix` (`/usr`, `/usr/local`) and units
/// in `unitdir` holds everything, and that the units name only what is installed.
fn check_layout(root: &Path, prefix: &str, unitdir: &str) {
    let sbin = format!("{prefix}/sbin");
    for b in BINS {
        let path = under(root, &format!("{sbin}/{b}"));
        let meta = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{} not installed: {e}", path.display()));
        assert_eq!(
            meta.permissions().mode() & 0o777,
            0o755,
            "{}",
            path.display()
        );
    }
    for m in MANUALS {
        let path = under(root, &format!("{prefix}/share/man/{m}"));
        assert!(path.is_file(), "{} not installed", path.display());
    }
    let doc = format!("{prefix}/share/doc/lvs-rs");
    for d in [
        "README.md",
        "guide-two-routers.md",
        "examples/nat.cf",
        "examples/lvs.cf.sample",
    ] {
        let path = under(root, &format!("{doc}/{d}"));
        assert!(path.is_file(), "{} not installed", path.display());
    }
    let conf = under(root, "/etc/sysconfig/ha/lvs.cf");
    let sample = std::fs::read_to_string(workspace().join("packaging/lvs.cf")).expect("sample");
    assert_eq!(
        std::fs::read_to_string(&conf).ok().as_deref(),
        Some(sample.as_str()),
        "{} is not the sample",
        conf.display()
    );

    for u in UNITS {
        let path = under(root, &format!("{unitdir}/{u}"));
        let unit = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} not installed: {e}", path.display()));
        // Every command is an installed program (or, without a slash, one systemd finds in
        // its search path, such as kill).
        for key in ["ExecStartPre", "ExecStart", "ExecReload", "ExecStop"] {
            for line in values(&unit, key) {
                let program = line
                    .trim_start_matches(['-', '@', ':', '+', '!'])
                    .split_whitespace()
                    .next()
                    .unwrap_or_default();
                if !program.contains('/') {
                    continue;
                }
                assert!(
                    program.starts_with(&format!("{sbin}/")),
                    "{u}: {key}={line}: not under {sbin}"
                );
                let installed = under(root, program);
                assert!(
                    installed.is_file(),
                    "{u}: {key}={line}: {} is not installed",
                    installed.display()
                );
            }
        }
        assert!(
            values(&unit, "ExecStartPre")
                .iter()
                .any(|l| l.ends_with("/lvsd --check -c /etc/sysconfig/ha/lvs.cf")),
            "{u}: no ExecStartPre=lvsd --check"
        );
        // Every Documentation= page is installed.
        let docs: Vec<&str> = values(&unit, "Documentation")
            .into_iter()
            .flat_map(str::split_whitespace)
            .collect();
        assert!(!docs.is_empty(), "{u}: no Documentation=");
        for d in docs {
            if let Some(page) = d.strip_prefix("man:") {
                let (name, section) = page
                    .strip_suffix(')')
                    .and_then(|p| p.split_once('('))
                    .unwrap_or_else(|| panic!("{u}: bad man page {d}"));
                let path = under(
                    root,
                    &format!("{prefix}/share/man/man{section}/{name}.{section}.gz"),
                );
                assert!(
                    path.is_file(),
                    "{u}: {d} is not installed ({})",
                    path.display()
                );
            } else if let Some(file) = d.strip_prefix("file:") {
                assert!(
                    under(root, file).is_file(),
                    "{u}: {d} is not installed in {}",
                    root.display()
                );
            } else {
                panic!("{u}: Documentation={d}: neither man: nor file:");
            }
        }
    }
}

/// `systemd-analyze verify --root=<root>` on each unit in `unitdir`, with `man` looking in
/// the installed manuals. Skipped (a printed note) when systemd-analyze is missing.
fn verify(test: &str, root: &Path, prefix: &str, unitdir: &str) {
    if !have(
        test,
        "systemd-analyze",
        &["--version"],
        "apt-get install systemd; not verifying the units",
    ) {
        return;
    }
    // The targets the units name (and systemd's default dependencies) must exist in the
    // root too: copy the host's.
    let targets = under(root, "/usr/lib/systemd/system");
    std::fs::create_dir_all(&targets).expect("mkdir usr/lib/systemd/system");
    for host in ["/usr/lib/systemd/system", "/lib/systemd/system"] {
        let Ok(entries) = std::fs::read_dir(host) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            if name.to_string_lossy().ends_with(".target") && e.path().is_file() {
                let _ = std::fs::copy(e.path(), targets.join(&name));
            }
        }
    }
    for u in UNITS {
        let unit = under(root, &format!("{unitdir}/{u}"));
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(format!("--root={}", root.display()))
            .arg(&unit)
            .env("MANPATH", under(root, &format!("{prefix}/share/man")))
            .env("SYSTEMD_LOG_LEVEL", "notice")
            .output()
            .expect("run systemd-analyze");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !stderr.contains(u),
            "systemd-analyze verify {}: {}",
            unit.display(),
            text(&out)
        );
    }
}

/// Runs the installed `lvsd --check -c FILE`.
fn check(lvsd: &Path, file: &Path) -> Output {
    Command::new(lvsd)
        .args(["--check", "-c"])
        .arg(file)
        .output()
        .expect("run lvsd --check")
}

#[test]
fn make_install_puts_everything_where_the_units_say() {
    let test = "make_install_puts_everything_where_the_units_say";
    if !have(test, "make", &["--version"], "apt-get install make") {
        return;
    }
    let scratch = Scratch::new("usr");
    let root = scratch.path().join("root");
    make_install(&root, "/usr");
    check_layout(&root, "/usr", "/lib/systemd/system");
    verify(test, &root, "/usr", "/lib/systemd/system");
}

#[test]
fn the_sample_lvs_cf_stops_the_units_until_edited() {
    let test = "the_sample_lvs_cf_stops_the_units_until_edited";
    if !have(test, "make", &["--version"], "apt-get install make") {
        return;
    }
    let scratch = Scratch::new("sample");
    let root = scratch.path().join("root");
    make_install(&root, "/usr");
    let lvsd = under(&root, "/usr/sbin/lvsd");
    let conf = under(&root, "/etc/sysconfig/ha/lvs.cf");

    // As installed: exit 1, nothing on stdout, FILE:LINE: and the line that says what to do.
    let out = check(&lvsd, &conf);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(out.stdout.is_empty(), "{}", text(&out));
    assert!(
        stderr.contains(&format!("{}:", conf.display())) && stderr.contains(EDIT_ME),
        "lvsd --check does not point at the edit-me line: {stderr}"
    );

    // The example, uncommented and without that line, is a valid configuration.
    let sample = std::fs::read_to_string(&conf).expect("read the sample");
    let mut inside = false;
    let mut edited = String::new();
    for line in sample.lines() {
        if line.starts_with("# --- example") {
            inside = true;
        } else if line.starts_with("# --- end of the example") {
            inside = false;
        } else if inside {
            let line = line.strip_prefix('#').unwrap_or(line);
            edited.push_str(line.strip_prefix(' ').unwrap_or(line));
            edited.push('\n');
        }
    }
    assert!(edited.contains("virtual www {"), "no example in the sample");
    let file = scratch.path().join("edited.cf");
    std::fs::write(&file, &edited).expect("write the edited file");
    let out = check(&lvsd, &file);
    assert!(
        out.status.success(),
        "the sample's example does not pass lvsd --check: {}\n{edited}",
        text(&out)
    );
}

#[test]
fn make_install_local_prefix_rewrites_the_units() {
    let test = "make_install_local_prefix_rewrites_the_units";
    if !have(test, "make", &["--version"], "apt-get install make") {
        return;
    }
    let scratch = Scratch::new("local");
    let root = scratch.path().join("root");
    // No PREFIX: the default, /usr/local.
    make("install", &[("DESTDIR", &root)]);
    let unitdir = "/usr/local/lib/systemd/system";
    check_layout(&root, "/usr/local", unitdir);
    let pulse = std::fs::read_to_string(under(&root, &format!("{unitdir}/pulse.service")))
        .expect("pulse.service");
    assert!(
        pulse.contains("\nExecStart=/usr/local/sbin/pulse ") && !pulse.contains("/usr/sbin/"),
        "pulse.service not rewritten to /usr/local:\n{pulse}"
    );
    verify(test, &root, "/usr/local", unitdir);
}

#[test]
fn make_install_and_uninstall_keep_an_existing_lvs_cf() {
    let test = "make_install_and_uninstall_keep_an_existing_lvs_cf";
    if !have(test, "make", &["--version"], "apt-get install make") {
        return;
    }
    let scratch = Scratch::new("keep");
    let root = scratch.path().join("root");
    let conf = under(&root, "/etc/sysconfig/ha/lvs.cf");
    std::fs::create_dir_all(conf.parent().expect("a directory")).expect("mkdir");
    let mine = "# the operator's own file\nservice = lvs\n";
    std::fs::write(&conf, mine).expect("write lvs.cf");

    let out = make_install(&root, "/usr");
    assert_eq!(std::fs::read_to_string(&conf).expect("lvs.cf"), mine);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("keeping the existing"),
        "make install does not say it kept lvs.cf: {}",
        text(&out)
    );
    assert!(under(&root, "/usr/sbin/pulse").is_file());

    make(
        "uninstall",
        &[("DESTDIR", &root), ("PREFIX", Path::new("/usr"))],
    );
    assert_eq!(std::fs::read_to_string(&conf).expect("lvs.cf kept"), mine);
    let left: Vec<String> = files(&root)
        .into_iter()
        .filter(|f| f != "etc/sysconfig/ha/lvs.cf")
        .collect();
    assert!(left.is_empty(), "make uninstall left {left:?}");
}

#[test]
fn the_debian_package_installs_the_same_files() {
    let test = "the_debian_package_installs_the_same_files";
    if !have(test, "make", &["--version"], "apt-get install make")
        || !have(
            test,
            "cargo",
            &["deb", "--version"],
            "cargo install cargo-deb --locked; not building the package",
        )
        || !have(test, "dpkg-deb", &["--version"], "not on a Debian system")
    {
        return;
    }
    let scratch = Scratch::new("deb");
    // cargo-deb packages `target/release/*`: give it a target directory whose release/
    // holds this run's binaries (hard links, else copies).
    let target = scratch.path().join("target");
    let release = target.join("release");
    std::fs::create_dir_all(&release).expect("mkdir target/release");
    for b in BINS {
        let from = build_dir().join(b);
        if std::fs::hard_link(&from, release.join(b)).is_err() {
            std::fs::copy(&from, release.join(b)).expect("copy a binary");
        }
    }
    let deb = scratch.path().join("lvs-rs.deb");
    let out = Command::new(env!("CARGO"))
        .current_dir(workspace())
        .args([
            "deb",
            "-p",
            "pulse",
            "--no-build",
            "--no-strip",
            "--fast",
            "-o",
        ])
        .arg(&deb)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("run cargo deb");
    assert!(out.status.success(), "cargo deb: {}", text(&out));

    let root = scratch.path().join("root");
    let out = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&root)
        .output()
        .expect("dpkg-deb -x");
    assert!(out.status.success(), "dpkg-deb -x: {}", text(&out));
    check_layout(&root, "/usr", "/lib/systemd/system");

    // The same files as make install PREFIX=/usr (cargo-deb adds the copyright file).
    let made = Scratch::new("deb-make");
    let made_root = made.path().join("root");
    make_install(&made_root, "/usr");
    let mut in_deb = files(&root);
    in_deb.remove("usr/share/doc/lvs-rs/copyright");
    assert_eq!(
        in_deb,
        files(&made_root),
        "the .deb and make install differ"
    );

    // Control: the name, lvs.cf a conffile, and no unit enabled or started by the scripts.
    let field = Command::new("dpkg-deb")
        .arg("-f")
        .arg(&deb)
        .arg("Package")
        .output()
        .expect("dpkg-deb -f");
    assert_eq!(String::from_utf8_lossy(&field.stdout).trim(), "lvs-rs");
    let control = scratch.path().join("control");
    let out = Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb)
        .arg(&control)
        .output()
        .expect("dpkg-deb -e");
    assert!(out.status.success(), "dpkg-deb -e: {}", text(&out));
    let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap_or_default();
    assert!(
        conffiles.lines().any(|l| l == "/etc/sysconfig/ha/lvs.cf"),
        "lvs.cf is not a conffile: {conffiles:?}"
    );
    for script in ["preinst", "postinst", "prerm", "postrm"] {
        let Ok(body) = std::fs::read_to_string(control.join(script)) else {
            continue;
        };
        let code: String = body
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        for word in [
            "enable",
            "systemctl start",
            "systemctl restart",
            "deb-systemd-invoke",
        ] {
            assert!(!code.contains(word), "{script} has {word:?}:\n{body}");
        }
    }

    verify(test, &root, "/usr", "/lib/systemd/system");
}
