//! What an operator looks at rather than reads: the saturation signal an autoscaler follows (each worker's busy
//! share, the spool's fill).

mod common;

use common::*;

/// Idle, a worker's busy share stays near 0; under keep-alive load from several clients it rises, and its busy
/// time grows with it.
#[test]
fn the_busy_ratio_rises_under_load_and_stays_near_zero_idle() {
    let server = TestServer::start(&["--workers", "1"]);
    let utilization = || metric_f64(server.addr, "plutos_worker_utilization{worker=\"0\"}");
    let busy = || metric_f64(server.addr, "plutos_worker_busy_seconds_total{worker=\"0\"}");
    let iterations = || server.metric("plutos_loop_iterations_total");
    // Idle: the worker wakes for housekeeping once a second (and for these scrapes); a few wakes later at least
    // one whole window was published.
    let start = iterations();
    wait_until("two housekeeping windows", || iterations() >= start + 6);
    assert!(utilization() < 0.05, "idle: {}", utilization());
    assert_eq!(metric_f64(server.addr, "plutos_spool_fill_ratio"), 0.0);

    let before = busy();
    let loads: Vec<KeepAliveLoad> =
        (0..4).map(|_| KeepAliveLoad::start(server.addr, b"GET /e?tag=load HTTP/1.1\r\nHost: t\r\n\r\n")).collect();
    let sent = || loads.iter().map(KeepAliveLoad::sent).sum::<u64>();
    wait_until("load running", || sent() >= 2_000);
    let loaded = sent();
    // The shares published while the load runs (each value once): the second is of a window all under load.
    let mut shares: Vec<f64> = Vec::new();
    wait_until("two windows under load", || {
        let share = utilization();
        if shares.last() != Some(&share) {
            shares.push(share);
        }
        shares.len() >= 3 && sent() >= loaded + 20_000
    });
    let share = *shares.last().unwrap();
    for load in loads {
        assert_eq!(load.stop().1, 0, "no request failed");
    }
    println!("busy shares published under load: {shares:?}");
    assert!(share > 0.3, "under load from 4 clients: {share} ({shares:?})");
    assert!(busy() - before > 0.1, "busy time grew: {} s", busy() - before);
    assert!(server.metric("plutos_spool_bytes") > 0);
    assert!(metric_f64(server.addr, "plutos_spool_fill_ratio") > 0.0, "the spool holds the load's chunk");
}

/// `scripts/prometheus.sh`: Debian's Prometheus and promtool, unpacked into the tools cache once.
fn promtool() -> std::path::PathBuf {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/prometheus.sh");
    let output = std::process::Command::new(script).stderr(std::process::Stdio::inherit()).output().unwrap();
    assert!(output.status.success(), "scripts/prometheus.sh failed");
    std::path::PathBuf::from(String::from_utf8(output.stdout).unwrap().trim()).join("promtool")
}

/// The alert rules are valid for Prometheus, each fires from synthetic series in its unit tests (and only where it
/// should), and every series they name is one plutos exposes.
#[test]
fn the_alert_rules_pass_promtool_and_name_only_series_plutos_exposes() {
    let dashboards = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards");
    let promtool = promtool();
    for args in [["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]] {
        let output = std::process::Command::new(&promtool).args(args).current_dir(dashboards).output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "promtool {args:?}:\n{text}{}", String::from_utf8_lossy(&output.stderr));
        assert!(text.contains("SUCCESS"), "{text}");
    }
    // A collector with HTTPS, so the certificate's series is there too.
    let certs = tempfile::tempdir().unwrap();
    let pki = common::pki::Pki::new(certs.path(), "operator");
    let (cert, key) = (pki.cert.to_str().unwrap(), pki.key.to_str().unwrap());
    let server = TestServer::start(&["--tls-port", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key]);
    let exposed = String::from_utf8(get(server.addr, "/metrics").body).unwrap();
    let rules = std::fs::read_to_string(format!("{dashboards}/alerts.yml")).unwrap();
    let mut named: Vec<&str> = rules
        .match_indices("plutos_")
        .map(|(at, _)| {
            let rest = &rules[at..];
            &rest[..rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len())]
        })
        .collect();
    named.sort_unstable();
    named.dedup();
    for name in named {
        // Only with GEOIP_DB (tests/enrich.rs reads it).
        if name == "plutos_geoip_database_build_timestamp_seconds" {
            continue;
        }
        assert!(exposed.contains(&format!("\n# TYPE {name} ")), "{name} is not in /metrics");
    }
}

/// The Grafana dashboard is provisioning-ready: a data source chosen by variable (no UID baked in), `job` and
/// `instance` variables, and every panel with a query, that data source and a unit.
#[test]
fn the_dashboard_has_the_structure_grafana_expects() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/plutos.json");
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let variables: Vec<&str> =
        dashboard["templating"]["list"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    for name in ["datasource", "job", "instance"] {
        assert!(variables.contains(&name), "variable {name}: {variables:?}");
    }
    let panels = dashboard["panels"].as_array().unwrap();
    let mut queries = 0;
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let title = panel["title"].as_str().unwrap();
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        assert!(panel["fieldConfig"]["defaults"]["unit"].as_str().is_some_and(|u| !u.is_empty()), "{title}: a unit");
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}: a query");
        for target in targets {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{title}");
            let expr = target["expr"].as_str().unwrap();
            assert!(expr.contains("plutos_") && expr.contains("job=~\"$job\""), "{title}: {expr}");
            queries += 1;
        }
        let grid = &panel["gridPos"];
        assert!(grid["w"].as_u64().unwrap() + grid["x"].as_u64().unwrap() <= 24, "{title}: fits the 24-column grid");
    }
    assert!(queries >= 30, "{queries} queries");
    for row in panels.iter().filter(|p| p["repeat"].is_string()) {
        let over = row["repeat"].as_str().unwrap();
        assert!(variables.contains(&over), "{}: repeated over an unknown variable", row["title"]);
    }
}

/// A real Prometheus (Debian's) scrapes a collector that has taken GETs, POSTs, an SDK batch, a bad row, a
/// datagram, an HTTPS request and a refusal, and shipped chunks: every panel's query returns series except the
/// rows shown only when their series exist (Kafka, enrichment: not configured here), and every alert rule
/// evaluates without error.
#[test]
fn every_dashboard_query_returns_data_from_a_real_prometheus_and_every_rule_evaluates() {
    let certs = tempfile::tempdir().unwrap();
    let pki = common::pki::Pki::new(certs.path(), "dashboard");
    let (cert, key) = (pki.cert.to_str().unwrap(), pki.key.to_str().unwrap());
    let registry = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iglu");
    let server = TestServer::start(&[
        "--tls-port",
        "127.0.0.1:0",
        "--tls-cert",
        cert,
        "--tls-key",
        key,
        "--udp-port",
        "127.0.0.1:0",
        "--schemas-dir",
        registry,
        "--max-chunk-events",
        "5",
    ]);
    for i in 0..20 {
        assert_eq!(get(server.addr, &format!("/e?n={i}")).status, 200);
    }
    assert_eq!(post(server.addr, "application/json", br#"[{"a":1},{"a":2}]"#).status, 200);
    let bad = br#"{"schema":"iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0","data":{"id":"x"}}"#;
    assert_eq!(post(server.addr, "application/json", bad).status, 200);
    let batch = br#"{"batch":[{"type":"track","event":"Signed Up","userId":"u1","messageId":"m1"}]}"#;
    assert_eq!(post_to(server.addr, "/v1/batch", "application/json", batch).status, 200);
    assert_eq!(get(server.addr, "/nowhere").status, 404);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(br#"{"via":"udp"}"#, server.udp_addr.unwrap()).unwrap();
    let tls = pki.client(&[&rustls::version::TLS13], &[]);
    let mut client = Client::connect_tls(server.tls_addr.unwrap(), &tls);
    assert_eq!(client.request(b"GET /e?via=https HTTP/1.1\r\nHost: t\r\n\r\n").status, 200);
    wait_until("chunks shipped", || server.metric("plutos_chunks_shipped_total") >= 2);

    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let web = listener.local_addr().unwrap();
    drop(listener);
    let dashboards = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards");
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
         rule_files: ['{dashboards}/alerts.yml']\n\
         scrape_configs:\n  - job_name: plutos\n    static_configs: [{{targets: ['{}']}}]\n",
        server.addr
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let prometheus = promtool().with_file_name("prometheus");
    let mut child = std::process::Command::new(prometheus)
        .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address={web}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let python = &common::sdks::sdks().0;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/dashboard_queries.py");
    let base = format!("http://{web}");
    let query = || {
        let output = std::process::Command::new(python)
            .args([script, &base, concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/plutos.json")])
            .output()
            .unwrap();
        output.status.success().then(|| serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap())
    };
    // Rates need two scrapes; the rules a first evaluation.
    let mut report = serde_json::Value::Null;
    wait_until("Prometheus to hold two scrapes and to have evaluated the rules", || {
        report = query().unwrap_or_default();
        let events = &report["panels"]["Events accepted"]["series"];
        let rules = report["rules"].as_object().map_or(0, |r| r.len());
        events.as_u64().is_some_and(|n| n > 0)
            && rules == 11
            && report["rules"].as_object().unwrap().values().all(|r| r["health"] == "ok")
    });
    let _ = child.kill();
    let _ = child.wait();
    println!("{report}");
    let by_design = [
        "Messages acknowledged",
        "Messages in flight",
        "Kafka errors by kind",
        "Enrichment lookups",
        "GeoIP database age",
    ];
    for (title, panel) in report["panels"].as_object().unwrap() {
        assert!(panel["error"].is_null(), "{title}: {}", panel["error"]);
        if by_design.contains(&title.as_str()) {
            assert_eq!(panel["series"], 0, "{title}: its row is shown only when its series exist");
        } else {
            assert!(panel["series"].as_u64().unwrap() > 0, "{title} returned no series: {report}");
        }
    }
    for (name, rule) in report["rules"].as_object().unwrap() {
        assert_eq!((&rule["health"], &rule["lastError"]), (&"ok".into(), &serde_json::Value::Null), "{name}");
    }
}

/// The events rate `plutos top` shows in `text` (`events 1.2k/s`), if it shows one above zero.
fn events_rate(text: &str) -> Option<String> {
    let rate = text.split("events ").nth(1)?.split("/s").next()?.to_string();
    (rate != "0.0").then_some(rate)
}

/// `plutos top` against a collector under load: `--once` prints its rates; the terminal view, run in a tmux pane
/// of 80×24, shows them live and quits on `q`.
#[test]
fn plutos_top_shows_live_rates_in_a_terminal_and_once_as_text() {
    use std::process::Command;
    let server = TestServer::start(&[]);
    let load = KeepAliveLoad::start(server.addr, b"GET /e?tag=top HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_until("load running", || load.sent() >= 100);
    let bin = env!("CARGO_BIN_EXE_plutos");
    let addr = server.addr.to_string();
    let once = Command::new(bin).args(["top", "--once", &addr]).output().unwrap();
    let text = String::from_utf8(once.stdout).unwrap();
    assert!(once.status.success(), "{text}{}", String::from_utf8_lossy(&once.stderr));
    assert!(text.starts_with(&format!("{addr}\n")) && events_rate(&text).is_some(), "{text}");
    assert!(text.contains("workers  w0 ") && text.contains("routes   /e "), "{text}");
    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");

    let socket = format!("plutos-top-{}", std::process::id());
    let tmux = |args: &[&str]| Command::new("tmux").arg("-L").arg(&socket).args(args).output().expect("tmux runs");
    let started = tmux(&["new-session", "-d", "-x", "80", "-y", "24", &format!("{bin} top {addr}")]);
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
    let mut screen = String::new();
    wait_until("the view to show a rate", || {
        screen = String::from_utf8_lossy(&tmux(&["capture-pane", "-p"]).stdout).into_owned();
        events_rate(&screen).is_some()
    });
    assert!(screen.contains(&format!("plutos top — {addr}")) && screen.contains("workers  w0 "), "{screen}");
    assert!(screen.lines().count() <= 24 && screen.lines().all(|l| l.chars().count() <= 80), "{screen}");
    tmux(&["send-keys", "q"]);
    wait_until("q to end it", || !tmux(&["has-session"]).status.success());
    let _ = tmux(&["kill-server"]);
    assert_eq!(load.stop().1, 0);
}

/// REDbot (the HTTP linter, from PyPI) finds nothing bad in the answers an operator's tools and a page's pixel
/// get: the pixel, `/health`, `/ready` and `/metrics`.
#[test]
fn redbot_finds_nothing_bad_in_the_pixel_health_and_metrics() {
    let server = TestServer::start(&["--response", "pixel"]);
    let redbot = common::sdks::sdks().0.with_file_name("redbot");
    for path in ["/e?page=home&ref=redbot", "/health", "/ready", "/metrics"] {
        let url = format!("http://{}{path}", server.addr);
        let output = std::process::Command::new(&redbot).args(["-o", "har", &url]).output().expect("redbot runs");
        assert!(output.status.success(), "{path}: {}", String::from_utf8_lossy(&output.stderr));
        let har: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let notes = har["log"]["entries"][0]["_red_messages"].as_array().expect("REDbot's notes").clone();
        assert!(!notes.is_empty(), "{path}: REDbot said nothing");
        let bad: Vec<&serde_json::Value> = notes.iter().filter(|n| n["level"] == "BAD").collect();
        assert!(bad.is_empty(), "{path}: {bad:#?}");
    }
}
