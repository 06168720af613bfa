//! The fuzz body (`lvsd::fuzzing::lvscf_body`) over the seed corpus, plus proptests: arbitrary
//! bytes and line-shaped text never panic the parser; C integers round-trip.

use std::path::Path;

use lvsd::fuzzing::lvscf_body;
use lvsd::lvscf::value::parse_c_long;
use proptest::prelude::*;

#[test]
fn fuzz_body_over_the_seed_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/lvscf");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("seed corpus exists") {
        let path = entry.expect("readable dir entry").path();
        let data = std::fs::read(&path).expect("readable seed");
        lvscf_body(&data);
        // Every prefix too: truncated files are where parsers break.
        for cut in (0..data.len()).step_by(7) {
            lvscf_body(&data[..cut]);
        }
        n += 1;
    }
    assert!(n >= 10, "only {n} seeds in {}", dir.display());
}

const WORDS: &[&str] = &[
    "virtual",
    "server",
    "failover",
    "{",
    "}",
    "=",
    "active",
    "address",
    "port",
    "weight",
    "1",
    "0",
    "0x1F",
    "017",
    "-1",
    "198.18.0.10",
    "eth0:1",
    "\"q\"",
    "'s'",
    "\"",
    "#",
    "[",
    "]",
    "dirs",
    "network",
    "direct",
    "scheduler",
    "sh",
    "sched_flags",
    "sh-port",
    "fwmark",
    "persistent",
    "pmask",
    "255.255.255.0",
    "keepalive",
    "0.2",
    "http",
    "\r\n",
    "\n",
    "\r",
    " ",
    "\t",
];

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        lvscf_body(&data);
    }

    #[test]
    fn keyword_soup_never_panics(words in proptest::collection::vec(proptest::sample::select(WORDS), 0..80)) {
        lvscf_body(words.concat().as_bytes());
        lvscf_body(words.join(" ").as_bytes());
    }

    #[test]
    fn c_integers_round_trip(n in any::<i64>()) {
        prop_assert_eq!(parse_c_long(&n.to_string()), Ok(n));
        let (sign, abs) = if n < 0 { ("-", n.unsigned_abs()) } else { ("", n.unsigned_abs()) };
        prop_assert_eq!(parse_c_long(&format!("{sign}0x{abs:x}")), Ok(n));
        prop_assert_eq!(parse_c_long(&format!("{sign}0X{abs:X}")), Ok(n));
        prop_assert_eq!(parse_c_long(&format!("{sign}0{abs:o}")), Ok(n));
    }

    #[test]
    fn weights_in_range_parse_and_out_of_range_fail(w in -100_000i64..200_000) {
        let sign = if w < 0 { "-" } else { "" };
        let text = format!(
            "virtual v {{\n    server s {{\n        weight = {sign}{:#x}\n    }}\n}}\n",
            w.unsigned_abs()
        );
        let res = lvsd::lvscf::parse_str("t.cf", &text, &lvsd::lvscf::StaticLookup::new());
        match res {
            Ok(c) => {
                prop_assert!((0..=65535).contains(&w));
                prop_assert_eq!(i64::from(c.virtuals[0].servers[0].weight), w);
            }
            Err(e) => {
                prop_assert!(!(0..=65535).contains(&w));
                prop_assert!(e.to_string().starts_with("t.cf:3: expected an integer in 0..=65535"), "{}", e);
            }
        }
    }
}
