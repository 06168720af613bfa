//! The manual pages in `docs/man/` against the binaries and the parser they describe.
//!
//! - Every long option (and visible alias) that `pulse`, `lvsd`, `nanny` and `send-arp` list
//!   in their `--help` appears in that binary's page.
//! - `lvsadm`'s help is ipvsadm's layout, not clap's: every long option it lists, and every
//!   long option of ipvsadm 1.31's popt table (which lvsadm parses, `lvsd::lvsadm::cli`, a
//!   private table, so the list is repeated below), appears in `lvsadm.8`.
//! - Every keyword the `lvs.cf` parser knows (`lvsd::lvscf::keywords::{GLOBAL, VIRTUAL,
//!   SERVER}`) is the tag of an entry of `lvs.cf.5` (the first word of a `.B`/`.BI`/`.BR`
//!   line right after `.TP` or `.TQ`), not merely mentioned in passing.
//! - `man --warnings -E UTF-8 -l -Tutf8 -Z PAGE` reports nothing for each page (skipped, with
//!   a note, when `man` or `groff` is not installed).
//!
//! Needs the binaries built (`cargo build --workspace`, see `tests::bin`); no root.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use lvsd::lvscf::keywords::{GLOBAL, SERVER, VIRTUAL};

/// The pages and the binary each documents (`None`: no binary, lvs.cf(5)).
const PAGES: [(&str, Option<&str>); 6] = [
    ("lvs.cf.5", None),
    ("pulse.8", Some("pulse")),
    ("lvsd.8", Some("lvsd")),
    ("nanny.8", Some("nanny")),
    ("send-arp.8", Some("send-arp")),
    ("lvsadm.8", Some("lvsadm")),
];

/// ipvsadm 1.31's long options (its popt table), all of which lvsadm parses.
const IPVSADM_LONG_OPTIONS: &[&str] = &[
    "add-service",
    "edit-service",
    "delete-service",
    "clear",
    "list",
    "zero",
    "add-server",
    "edit-server",
    "delete-server",
    "set",
    "help",
    "version",
    "restore",
    "save",
    "start-daemon",
    "stop-daemon",
    "tcp-service",
    "udp-service",
    "sctp-service",
    "fwmark-service",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "masquerading",
    "ipip",
    "gatewaying",
    "weight",
    "u-threshold",
    "l-threshold",
    "numeric",
    "connection",
    "mcast-interface",
    "syncid",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "sort",
    "exact",
    "ipv6",
    "ops",
    "pe",
    "sched-flags",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "sync-maxlen",
    "tun-info",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
];

fn man_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/man")
}

/// A page's roff source with the escapes that matter here undone: `\-` → `-`, `\e` → `\`.
fn page_text(page: &str) -> String {
    let path = man_dir().join(page);
    let roff = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    roff.replace("\\-", "-").replace("\\e", "\\")
}

fn is_option_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Every `--name` in `text`, without the dashes.
fn long_options(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("--") {
        let after = &rest[i + 2..];
        let preceded_ok = rest[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !is_option_char(c));
        let len = after
            .find(|c: char| !is_option_char(c))
            .unwrap_or(after.len());
        let name = after[..len].trim_end_matches('-');
        if preceded_ok
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
        {
            out.insert(name.to_owned());
        }
        rest = &after[len..];
    }
    out
}

/// Whether `--name` occurs in `text` as a whole option (`--http` is not found in
/// `--https`).
fn mentions_option(text: &str, name: &str) -> bool {
    long_options(text).contains(name)
}

/// The first word of every `.B`, `.BI`, `.BR` line right after `.TP` or `.TQ`: the tags of
/// the page's entries (a keyword merely mentioned in bold elsewhere does not count).
fn bold_entries(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut tag_next = false;
    for l in text.lines() {
        if tag_next
            && let Some(rest) = l
                .strip_prefix(".BI ")
                .or_else(|| l.strip_prefix(".BR "))
                .or_else(|| l.strip_prefix(".B "))
            && let Some(word) = rest.split_whitespace().next()
        {
            out.insert(word.trim_matches('"').to_owned());
        }
        tag_next = l == ".TP" || l == ".TQ";
    }
    out
}

fn help_of(binary: &str) -> String {
    let out = Command::new(tests::bin(binary))
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {binary} --help: {e}"));
    assert!(
        out.status.success(),
        "{binary} --help exited with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_page_exists_and_names_itself() {
    for (page, _) in PAGES {
        let text = page_text(page);
        let (name, section) = page.rsplit_once('.').expect("NAME.SECTION");
        let th = text
            .lines()
            .find(|l| l.starts_with(".TH "))
            .unwrap_or_else(|| panic!("{page}: no .TH line"));
        let mut words = th.split_whitespace().skip(1);
        assert_eq!(
            words.next().map(str::to_ascii_lowercase),
            Some(name.to_ascii_lowercase()),
            "{page}: .TH names another page: {th}"
        );
        assert_eq!(words.next(), Some(section), "{page}: .TH section: {th}");
        for heading in ["NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"] {
            assert!(
                text.lines()
                    .any(|l| l == format!(".SH {heading}") || l == format!(".SH \"{heading}\"")),
                "{page}: no .SH {heading}"
            );
        }
    }
}

#[test]
fn every_long_option_of_every_help_is_in_its_page() {
    let mut missing = Vec::new();
    for (page, binary) in PAGES {
        let Some(binary) = binary else { continue };
        let help = help_of(binary);
        let options = long_options(&help);
        assert!(
            options.contains("help"),
            "{binary} --help lists no --help: is this its help?\n{help}"
        );
        let text = page_text(page);
        for o in &options {
            if !mentions_option(&text, o) {
                missing.push(format!("{page}: --{o} (from {binary} --help)"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "options the binaries accept but their pages do not document:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_ipvsadm_long_option_is_in_lvsadm_page() {
    let text = page_text("lvsadm.8");
    let missing: Vec<_> = IPVSADM_LONG_OPTIONS
        .iter()
        .filter(|o| !mentions_option(&text, o))
        .collect();
    assert!(missing.is_empty(), "lvsadm.8 lacks --{missing:?}");
}

#[test]
fn every_lvs_cf_keyword_is_an_entry_of_lvs_cf_5() {
    let entries = bold_entries(&page_text("lvs.cf.5"));
    let keywords: BTreeSet<&str> = GLOBAL
        .iter()
        .chain(VIRTUAL)
        .chain(SERVER)
        .map(|&(k, _)| k)
        .collect();
    assert!(keywords.len() > 60, "the keyword tables look empty");
    let missing: Vec<_> = keywords.iter().filter(|k| !entries.contains(**k)).collect();
    assert!(
        missing.is_empty(),
        "lvs.cf keywords the parser accepts without an entry in lvs.cf.5: {missing:?}"
    );
}

/// Whether `program --version` runs.
fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn pages_format_without_warnings() {
    if !installed("man") || !installed("groff") {
        println!("SKIP pages_format_without_warnings: man or groff is not installed");
        return;
    }
    let mut problems = Vec::new();
    for (page, _) in PAGES {
        let path = man_dir().join(page);
        let out = Command::new("man")
            .args(["--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z"])
            .arg(&path)
            .env("MANWIDTH", "80")
            .output()
            .expect("man runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || !stderr.trim().is_empty() {
            problems.push(format!("{page} ({}):\n{stderr}", out.status));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_helpers_find_what_they_should() {
    let opts = long_options(
        "  -c, --configfile <FILE>  x [alias: --config]\n --https --http-get, \\-\\-no",
    );
    assert_eq!(
        opts,
        ["config", "configfile", "http-get", "https"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    assert!(mentions_option("use --https here", "https"));
    assert!(!mentions_option("use --https here", "http"));
    assert!(!mentions_option("a--b", "b"));
    let entries = bold_entries(
        ".TP\n.BI keepalive \" = SECONDS\"\n.TQ\n.B port\ntext\n.B heartbeat\n.TP\n.BR nat | direct\n",
    );
    assert_eq!(
        entries,
        ["keepalive", "nat", "port"]
            .into_iter()
            .map(String::from)
            .collect()
    );
}
