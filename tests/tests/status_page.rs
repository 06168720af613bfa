//! lvsd's status page and Prometheus metrics, read by headless Chromium (Debian's `chromium`
//! package) from the lab's client namespace, as an operator's browser would: the page
//! renders the role, the services and their real servers, and shows a real server going
//! down with the reason and the event; `/metrics` says the same, also while lvsd reloads. A
//! `status_address` that cannot be bound is logged and forwarding goes on.
//!
//! lvsd runs with `--no-nannies` and the server is set down through the API (what a nanny
//! does when its probe fails): the test is about what the page shows, and nanny's probes
//! are tested in health.rs. Without Chromium the page tests print SKIP and pass (.ci/run
//! installs it).

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use lvsd::control::api::{ServerPatch, ServerState, ServiceId};
use lvsd::control::client::Client;
use tests::lab::{Lab, Mode, Role, privileged};
use tests::lvsd::{Cf, READY, READY_TIMEOUT, Virtual, http, socket_path, spawn};

const C0: Role = Role::Client(0);
const PORT: u16 = 9180;

fn chromium() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

/// The DOM of `url` as Chromium renders it, fetched from the client's namespace. Chromium
/// now and then exits 0 without printing anything (seen under load): up to three tries.
fn dump_dom(lab: &Lab, browser: &str, url: &str) -> String {
    let mut last = String::new();
    for _ in 0..3 {
        match try_dump_dom(lab, browser, url) {
            Ok(dom) => return dom,
            Err(e) => last = e,
        }
    }
    panic!("chromium printed nothing three times: {last}");
}

fn try_dump_dom(lab: &Lab, browser: &str, url: &str) -> Result<String, String> {
    let dir = lab.dir().join("chromium");
    let out = lab
        .exec_timeout(
            C0,
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-dev-shm-usage",
                &format!("--user-data-dir={}", dir.display()),
                "--dump-dom",
                url,
            ],
            Duration::from_secs(60),
        )
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    if dom.is_empty() {
        return Err(format!(
            "{:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(dom)
}

/// The file with `status_address` among the global keywords.
fn with_status(cf: &str, addr: &str) -> String {
    cf.replacen(
        "network = ",
        &format!("status_address = {addr}\nnetwork = "),
        1,
    )
}

#[test]
fn the_page_renders_and_shows_a_real_server_going_down() {
    if !privileged("the_page_renders_and_shows_a_real_server_going_down") {
        return;
    }
    let Some(browser) = chromium() else {
        eprintln!("SKIP the_page_renders_and_shows_a_real_server_going_down: no chromium");
        return;
    };
    Lab::builder().real_servers(Mode::Nat, 2).run(|lab| {
        let _http = lab.start_http(80).expect("http servers");
        let d0 = lab.addr(Role::Director(0));
        let cf = with_status(
            &Cf::new("nat")
                .virtual_(Virtual::http(lab, "rr").servers(lab, &[1, 1]))
                .render(lab),
            &format!("{d0}:{PORT}"),
        );
        let mut lvsd = spawn(lab, &cf, &["--no-nannies"]).expect("spawn");
        lvsd.wait_for_log(READY, READY_TIMEOUT)
            .expect("lvsd forwards");
        // Logged by the control thread once it listens, independently of READY.
        lvsd.wait_for_log(&format!("status page on http://{d0}:{PORT}/"), READY_TIMEOUT)
            .expect("the status page listens");
        let vip = format!("{}:80", lab.vip());
        http(lab, C0, &["--to", &vip, "--requests", "10"]).expect("traffic");
        let rs1 = lab.addr(lab.real_servers()[1]);
        let url = format!("http://{d0}:{PORT}/");

        let dom = dump_dom(lab, browser, &url);
        assert!(
            dom.contains("<span id=\"role\" class=\"active\">active</span>"),
            "{dom}"
        );
        assert!(dom.contains(&format!("<tr class=\"up\" data-server=\"{rs1}:80\">")), "{dom}");
        assert!(dom.contains("No takeover since lvsd started"), "{dom}");

        // rs1 goes down (as a nanny reports a failed probe).
        let api = Client::new(socket_path(lab));
        let id: ServiceId = format!("tcp:{vip}").parse().expect("id");
        api.patch_server(
            &id,
            SocketAddrV4::new(rs1, 80),
            &ServerPatch {
                state: Some(ServerState::Down),
                weight: None,
                reason: Some("connect: connection refused".into()),
            },
        )
        .expect("patch");
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut dom = dump_dom(lab, browser, &url);
        while !dom.contains(&format!("<tr class=\"down\" data-server=\"{rs1}:80\">"))
            && Instant::now() < deadline
        {
            dom = dump_dom(lab, browser, &url);
        }
        assert!(
            dom.contains(&format!("<tr class=\"down\" data-server=\"{rs1}:80\">")),
            "{dom}"
        );
        assert!(dom.contains("connect: connection refused"), "{dom}");
        assert!(
            dom.contains(&format!("real server {rs1}:80 of web is down: connect: connection refused")),
            "the event is listed: {dom}"
        );

        let metrics = dump_dom(lab, browser, &format!("http://{d0}:{PORT}/metrics"));
        assert!(metrics.contains("lvs_director_active 1"), "{metrics}");
        assert!(
            metrics.contains(&format!(
                "lvs_server_up{{service=\"tcp:{vip}\",name=\"web\",server=\"{rs1}:80\",server_name=\"rs1\"}} 0"
            )),
            "{metrics}"
        );
        assert!(metrics.contains("# EOF"), "{metrics}");

        // Scrapes while lvsd reloads: each is answered whole (the views come through the
        // worker's queue, between the reload's turns).
        for _ in 0..3 {
            lvsd.signal("HUP").expect("SIGHUP");
            let m = dump_dom(lab, browser, &format!("http://{d0}:{PORT}/metrics"));
            assert!(
                m.contains("lvs_director_active 1") && m.contains("# EOF"),
                "{m}"
            );
        }
        assert!(lvsd.log().contains("reloaded"), "{}", lvsd.log());
    });
}

#[test]
fn a_status_address_that_cannot_be_bound_leaves_forwarding_alone() {
    if !privileged("a_status_address_that_cannot_be_bound_leaves_forwarding_alone") {
        return;
    }
    Lab::builder().real_servers(Mode::Nat, 1).run(|lab| {
        let _http = lab.start_http(80).expect("http servers");
        let d0 = lab.addr(Role::Director(0));
        // The port is taken on the director (EADDRINUSE) by another server.
        let taken = format!("{d0}:{PORT}");
        let mut squatter = lab
            .spawn(
                Role::Director(0),
                [
                    tests::bin("lab-http").to_string_lossy().as_ref(),
                    "--name",
                    "squatter",
                    "--listen",
                    taken.as_str(),
                ],
            )
            .expect("lab-http");
        squatter
            .wait_for_log("ready", READY_TIMEOUT)
            .expect("the port is taken");
        // In use, then an address no interface of the director has (EADDRNOTAVAIL).
        for addr in [taken.clone(), format!("198.19.255.254:{PORT}")] {
            let cf = with_status(
                &Cf::new("nat")
                    .virtual_(Virtual::http(lab, "rr").servers(lab, &[1]))
                    .render(lab),
                &addr,
            );
            let mut lvsd = spawn(lab, &cf, &["--no-nannies"]).expect("spawn");
            lvsd.wait_for_log(READY, READY_TIMEOUT)
                .expect("lvsd forwards");
            let vip = format!("{}:80", lab.vip());
            let t = http(lab, C0, &["--to", &vip, "--requests", "10"]).expect("traffic");
            assert_eq!((t.ok, t.failed), (10, 0), "{t:?}");
            lvsd.wait_for_log(
                &format!("status page: cannot listen on {addr} (status_address in lvs.cf)"),
                READY_TIMEOUT,
            )
            .expect("the refusal is logged");
            assert!(lvsd.log().contains("forwarding goes on"), "{}", lvsd.log());
            tests::lvsd::stop_clean(lab, &mut lvsd).expect("clean stop");
        }
    });
}
