//! A lab whose construction fails half-way leaves nothing behind. Alone in its own test
//! binary, so that no other lab of this process exists while it counts namespaces.

use tests::lab::{Lab, LabError, Mode, privileged};

fn my_namespaces() -> Vec<String> {
    let prefix = format!("lvs-{}-", std::process::id());
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_lab_that_fails_to_build_is_torn_down() {
    if !privileged("a_lab_that_fails_to_build_is_torn_down") {
        return;
    }
    // Everything is created, then starting lab-decap on the TUN real server fails.
    let err = Lab::builder()
        .real_servers(Mode::Nat, 1)
        .real_servers(Mode::Tun, 1)
        .decap_bin("/nonexistent/lab-decap")
        .build()
        .expect_err("the decapsulator cannot start");
    assert!(
        matches!(err, LabError::ProcExited { .. } | LabError::Spawn { .. }),
        "{err}"
    );
    assert_eq!(my_namespaces(), Vec::<String>::new());

    // A refused topology creates nothing at all.
    let err = Lab::builder()
        .directors(3)
        .build()
        .expect_err("3 directors");
    assert!(matches!(err, LabError::Topology(_)), "{err}");
    assert_eq!(my_namespaces(), Vec::<String>::new());

    // And a good one afterwards still builds.
    let lab = Lab::builder().build().expect("lab builds");
    assert_eq!(my_namespaces().len(), 3);
    drop(lab);
    assert_eq!(my_namespaces(), Vec::<String>::new());
}
