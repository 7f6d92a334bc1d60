//! Enrichment against the real server: GeoIP from databases the tests write (exact fields, IPv4 and IPv6,
//! misses, private ranges, precision under IP_MODE) and from a real database (well-known addresses), the user
//! agent and bot verdicts in records, BOTS=drop, and the databases' reload under a keep-alive load (rename,
//! a broken file written in place, SIGHUP).

mod common;

use std::path::{Path, PathBuf};

use common::mmdb::MmdbWriter;
use common::*;
use serde_json::{Value, json};

const CITY_EPOCH: u64 = 1_700_000_000;

/// A City database: London (IPv4 and IPv6) and Paris, with MaxMind's layout.
fn city_db(country_of_london: &str) -> Vec<u8> {
    let london = json!({
        "country": {"iso_code": country_of_london, "names": {"en": "United Kingdom"}},
        "subdivisions": [{"iso_code": "ENG", "names": {"en": "England"}}],
        "city": {"names": {"en": "London", "de": "London"}},
        "location": {"latitude": 51.5142, "longitude": -0.0931, "time_zone": "Europe/London"},
    });
    let paris = json!({
        "country": {"iso_code": "FR"},
        "city": {"names": {"en": "Paris"}},
        "location": {"latitude": 48.8566, "longitude": 2.3522, "time_zone": "Europe/Paris"},
    });
    MmdbWriter::new("GeoIP2-City", CITY_EPOCH)
        .insert("81.2.69.0/24", &london)
        .insert("2a02:8010::/32", &london)
        .insert("90.0.0.0/16", &paris)
        .to_bytes()
}

/// An ASN database covering London's IPv4 network and a network the City database does not know.
fn asn_db() -> Vec<u8> {
    MmdbWriter::new("GeoLite2-ASN", CITY_EPOCH + 1)
        .insert(
            "81.2.64.0/18",
            &json!({"autonomous_system_number": 20712, "autonomous_system_organization": "Andrews & Arnold"}),
        )
        .insert(
            "203.0.113.0/24",
            &json!({"autonomous_system_number": 64500, "autonomous_system_organization": "Example \"Net\""}),
        )
        .to_bytes()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// One GET from `client` (forwarded by the trusted proxy 127.0.0.1) with `user_agent`; its answer's status.
fn get_from(server_addr: std::net::SocketAddr, client: &str, user_agent: &str, tag: &str) -> u16 {
    let head = format!(
        "GET /e?tag={tag} HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: {client}\r\nUser-Agent: {user_agent}\r\n\r\n"
    );
    request(server_addr, head.as_bytes()).status
}

fn by_tag(records: &[Value]) -> std::collections::HashMap<String, Value> {
    records.iter().map(|r| (r["raw_data"]["tag"].as_str().unwrap().to_string(), r.clone())).collect()
}

#[test]
fn geo_fields_come_from_every_database_for_ipv4_and_ipv6_and_are_null_on_a_miss() {
    let data = tempfile::tempdir().unwrap();
    let city = write(data.path(), "city.mmdb", &city_db("GB"));
    let asn = write(data.path(), "asn.mmdb", &asn_db());
    let dbs = format!("{},{}", city.display(), asn.display());
    let server = TestServer::start(&["--geoip-db", &dbs, "--trusted-proxies", "127.0.0.1/32"]);
    for (tag, client) in [
        ("v4", "81.2.69.160"),
        ("v6", "2a02:8010:1::7"),
        ("mapped", "::ffff:81.2.69.1"),
        ("paris", "90.0.255.255"),
        ("asn_only", "203.0.113.9"),
        ("private", "10.1.2.3"),
        ("cgnat", "100.64.0.1"),
        ("loopback_v6", "::1"),
        ("unique_local", "fd00::1"),
        ("unknown", "8.8.8.8"),
    ] {
        assert_eq!(get_from(server.addr, client, "curl/8.5.0", tag), 200);
    }
    let built =
        format!("plutos_geoip_database_build_timestamp_seconds{{path=\"{}\",type=\"GeoIP2-City\"}}", city.display());
    assert_eq!(server.metric(&built), CITY_EPOCH);
    let lookups =
        |result: &str| server.metric(&format!("plutos_enrich_lookups_total{{kind=\"geo\",result=\"{result}\"}}"));
    assert_eq!(lookups("hit") + lookups("miss"), 6);
    assert_eq!(lookups("internal"), 4);
    let records = by_tag(&read_records(&server.stop().path().join("out")));
    let london = json!({"country": "GB", "region": "ENG", "city": "London", "tz": "Europe/London", "lat": 51.5142, "lon": -0.0931});
    let mut london_asn = london.clone();
    london_asn["asn"] = json!(20712);
    london_asn["as_org"] = json!("Andrews & Arnold");
    assert_eq!(records["v4"]["geo"], london_asn);
    assert_eq!(records["mapped"]["geo"], london_asn);
    assert_eq!(records["v6"]["geo"], london);
    assert_eq!(
        records["paris"]["geo"],
        json!({"country": "FR", "city": "Paris", "tz": "Europe/Paris", "lat": 48.8566, "lon": 2.3522})
    );
    assert_eq!(records["asn_only"]["geo"], json!({"asn": 64500, "as_org": "Example \"Net\""}));
    for miss in ["private", "cgnat", "loopback_v6", "unique_local", "unknown"] {
        assert_eq!(records[miss]["geo"], Value::Null, "{miss}");
        assert!(records[miss].as_object().unwrap().contains_key("geo"), "{miss}: geo is always there");
    }
    assert_eq!(records["v4"]["ip"], "81.2.69.160");
}

#[test]
fn geo_precision_follows_ip_mode_and_nothing_finer_reaches_a_record() {
    let data = tempfile::tempdir().unwrap();
    let city = write(data.path(), "city.mmdb", &city_db("GB"));
    let asn = write(data.path(), "asn.mmdb", &asn_db());
    let dbs = format!("{},{}", city.display(), asn.display());
    let region =
        json!({"country": "GB", "region": "ENG", "tz": "Europe/London", "asn": 20712, "as_org": "Andrews & Arnold"});
    let cases: [(&[&str], Value); 4] = [
        // The default under IP_MODE=drop: no city, no coordinates.
        (&["--ip-mode", "drop"], region.clone()),
        (&["--ip-mode", "truncate"], region),
        (&["--geo-precision", "country"], json!({"country": "GB"})),
        // The operator may allow the city with a hashed address.
        (
            &["--ip-mode", "hash", "--ip-hash-key", "0123456789abcdef0123", "--geo-precision", "city"],
            json!({"country": "GB", "region": "ENG", "city": "London", "tz": "Europe/London", "lat": 51.5142,
                   "lon": -0.0931, "asn": 20712, "as_org": "Andrews & Arnold"}),
        ),
    ];
    for (flags, expected) in cases {
        let mut all = vec!["--geoip-db", &dbs, "--trusted-proxies", "127.0.0.1/32"];
        all.extend_from_slice(flags);
        let server = TestServer::start(&all);
        assert_eq!(get_from(server.addr, "81.2.69.160", "curl/8.5.0", "p"), 200);
        let dir = server.stop();
        let records = read_records(&dir.path().join("out"));
        assert_eq!(records.len(), 1);
        assert_eq!(records[0]["geo"], expected, "{flags:?}");
        if flags.contains(&"drop") {
            assert_eq!(records[0]["ip"], "");
            let mut text = Vec::new();
            for chunk in sealed_files(&dir.path().join("out")) {
                text.extend_from_slice(&chunk);
            }
            let text = String::from_utf8(text).unwrap();
            for finer in ["81.2.69", "\"city\"", "\"London\"", "51.5142", "-0.0931"] {
                assert!(!text.contains(finer), "{finer} in a record under IP_MODE=drop");
            }
        }
    }
}

/// The decoded contents of every shipped chunk under `out`.
fn sealed_files(out: &Path) -> Vec<Vec<u8>> {
    read_shipped(out)
        .into_iter()
        .map(|s| s.records.iter().map(|r| format!("{r}\n")).collect::<String>().into_bytes())
        .collect()
}

#[test]
fn a_real_database_places_well_known_addresses_in_their_countries() {
    let db = real_country_db();
    let server = TestServer::start(&["--geoip-db", db.to_str().unwrap(), "--trusted-proxies", "127.0.0.1/32"]);
    let known = [
        ("8.8.8.8", "US"),                   // Google Public DNS
        ("193.0.6.139", "NL"),               // RIPE NCC, Amsterdam
        ("2001:67c:2e8:22::c100:68b", "NL"), // RIPE NCC over IPv6
        ("200.160.2.3", "BR"),               // NIC.br
        ("202.12.27.33", "JP"),              // M-root, WIDE Project
        ("77.88.8.8", "RU"),                 // Yandex DNS
    ];
    for (addr, _) in known {
        assert_eq!(get_from(server.addr, addr, "curl/8.5.0", addr), 200);
    }
    // This database maps 192.168.0.0/16 to a country; a private address is never looked up.
    assert_eq!(get_from(server.addr, "192.168.1.1", "curl/8.5.0", "private"), 200);
    let records = by_tag(&read_records(&server.stop().path().join("out")));
    for (addr, country) in known {
        assert_eq!(records[addr]["geo"], json!({"country": country}), "{addr}");
    }
    assert_eq!(records["private"]["geo"], Value::Null);
}

/// ip-location-db's country database from the npm registry (scripts/geo-data.sh; scripts/test.sh exports its
/// path).
fn real_country_db() -> PathBuf {
    if let Some(path) = std::env::var_os("PLUTOS_GEO_COUNTRY_MMDB") {
        return path.into();
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/geo-data.sh");
    let output = std::process::Command::new(script).output().expect("scripts/geo-data.sh runs");
    assert!(output.status.success(), "scripts/geo-data.sh failed");
    let text = String::from_utf8(output.stdout).unwrap();
    text.lines().find_map(|l| l.strip_prefix("PLUTOS_GEO_COUNTRY_MMDB=")).unwrap().into()
}

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                      Chrome/120.0.6099.217 Safari/537.36";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

#[test]
fn records_carry_the_agent_and_the_bot_verdict() {
    let server = TestServer::start(&["--ua-parse", "on", "--bots", "flag"]);
    for (tag, ua) in [("chrome", CHROME), ("bot", GOOGLEBOT), ("chrome2", CHROME), ("none", "")] {
        let head = format!("GET /e?tag={tag} HTTP/1.1\r\nHost: t\r\nUser-Agent: {ua}\r\n\r\n");
        assert_eq!(request(server.addr, head.as_bytes()).status, 200);
    }
    let agent_lookups = |result: &str| {
        server.metric(&format!("plutos_enrich_lookups_total{{kind=\"user_agent\",result=\"{result}\"}}"))
    };
    assert_eq!(agent_lookups("hit") + agent_lookups("miss"), 4);
    assert!(agent_lookups("miss") >= 3, "three distinct user agents");
    let records = by_tag(&read_records(&server.stop().path().join("out")));
    // No device: uap-core's device regexes name none for a desktop browser.
    let chrome = json!({"browser": "Chrome", "browser_version": "120.0.6099", "os": "Windows", "os_version": "10"});
    assert_eq!(records["chrome"]["agent"], chrome);
    assert_eq!(records["chrome2"]["agent"], chrome);
    assert_eq!((&records["chrome"]["bot"], &records["chrome"]["bot_match"]), (&json!(false), &Value::Null));
    assert_eq!(records["bot"]["agent"]["browser"], "Googlebot");
    assert_eq!((&records["bot"]["bot"], &records["bot"]["bot_match"]), (&json!(true), &json!("Google")));
    assert_eq!(records["none"]["agent"], Value::Null);
    assert!(!records.contains_key("geo"), "no GEOIP_DB, no geo field");
}

/// A burst of new user agents in one write (one or a few loop iterations): the worker classifies a bounded
/// number per iteration, records the rest as not classified (`"agent":null`) and counts them; every lookup is
/// a hit, a miss or unclassified, and the records agree with the counts.
#[test]
fn a_burst_of_new_user_agents_past_the_budget_is_recorded_unclassified_and_counted() {
    let server = TestServer::start(&["--ua-parse", "on", "--workers", "1"]);
    let burst: String = (0..40)
        .map(|i| format!("GET /e?tag=ua-{i} HTTP/1.1\r\nHost: t\r\nUser-Agent: {CHROME} Burst/{i}\r\n\r\n"))
        .collect();
    let mut client = server.client();
    client.send(burst.as_bytes());
    for _ in 0..40 {
        assert_eq!(client.read_response().status, 200);
    }
    let lookups = |result: &str| {
        server.metric(&format!("plutos_enrich_lookups_total{{kind=\"user_agent\",result=\"{result}\"}}"))
    };
    let (hit, miss, unclassified) = (lookups("hit"), lookups("miss"), lookups("unclassified"));
    assert_eq!((hit, hit + miss + unclassified), (0, 40), "40 distinct user agents");
    let records = read_records(&server.stop().path().join("out"));
    let nulls = records.iter().filter(|r| r["agent"].is_null()).count() as u64;
    assert_eq!(nulls, unclassified, "a record without an agent for each one left unclassified");
    assert!(records.iter().filter(|r| !r["agent"].is_null()).all(|r| r["agent"]["browser"] == "Chrome"));
}

#[test]
fn bots_drop_answers_as_if_stored_and_counts_what_it_did_not_store() {
    let server = TestServer::start(&["--bots", "drop"]);
    let mut client = server.client();
    let get = |tag: &str, ua: &str| format!("GET /e?tag={tag} HTTP/1.1\r\nHost: t\r\nUser-Agent: {ua}\r\n\r\n");
    assert_eq!(client.request(get("human", CHROME).as_bytes()).status, 200);
    assert_eq!(client.request(get("bot", GOOGLEBOT).as_bytes()).status, 200);
    let body = b"{\"tag\":\"bot_post_1\"}\n{\"tag\":\"bot_post_2\"}\n";
    let post = format!(
        "POST /e HTTP/1.1\r\nHost: t\r\nUser-Agent: {GOOGLEBOT}\r\nContent-Type: application/x-ndjson\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    let answer = client.request(&[post.as_bytes(), body].concat());
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "{\"accepted\":2}", "the answer a stored batch gets");
    // A bot's bad request is refused like anyone's.
    let bad = format!("GET /e?a=%ff HTTP/1.1\r\nHost: t\r\nUser-Agent: {GOOGLEBOT}\r\n\r\n");
    assert_eq!(client.request(bad.as_bytes()).status, 400);
    let segment = br#"{"batch":[{"type":"track","event":"Crawled","messageId":"m1","anonymousId":"a"}]}"#;
    let sdk = format!(
        "POST /v1/batch HTTP/1.1\r\nHost: t\r\nUser-Agent: {GOOGLEBOT}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        segment.len()
    );
    assert_eq!(client.request(&[sdk.as_bytes(), segment].concat()).status, 200);
    assert_eq!(server.metric("plutos_bot_events_dropped_total"), 4);
    assert_eq!(server.metric("plutos_events_accepted_total"), 1);
    let records = read_records(&server.stop().path().join("out"));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["raw_data"]["tag"], "human");
    assert_eq!(records[0]["bot"], false);
}

#[test]
fn a_database_that_does_not_load_stops_the_start_with_one_line() {
    let data = tempfile::tempdir().unwrap();
    let broken = write(data.path(), "broken.mmdb", &city_db("GB")[..100]);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_plutos"))
        .env_clear()
        .env("PORT", "127.0.0.1:0")
        .env("SPOOL_DIR", data.path().join("spool"))
        .env("OUT_DIR", data.path().join("out"))
        .env("GEOIP_DB", &broken)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let last = stderr.trim().lines().last().unwrap_or_default();
    assert!(last.contains("GEOIP_DB") && last.contains("broken.mmdb"), "{stderr}");
    // --check-config (the unit's ExecStartPre) finds it before a restart.
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_plutos"))
        .env_clear()
        .env("GEOIP_DB", &broken)
        .arg("--check-config")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(2), "{stderr}");
    assert!(stderr.trim().lines().count() == 1 && stderr.contains("broken.mmdb"), "{stderr}");
}

#[test]
fn databases_reload_under_load_on_rename_in_place_writes_and_sighup() {
    let data = tempfile::tempdir().unwrap();
    let city = write(data.path(), "city.mmdb", &city_db("GB"));
    let dir = tempfile::tempdir().unwrap();
    let collector = common::collector::Collector::spawn(
        dir.path(),
        &[("GEOIP_DB", city.to_str().unwrap()), ("TRUSTED_PROXIES", "127.0.0.1/32")],
    );
    let addr = collector.addr;
    // A keep-alive client sending GETs from London the whole time; every answer must be a 200.
    let load =
        KeepAliveLoad::start(addr, b"GET /e?tag=load HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 81.2.69.160\r\n\r\n");
    let reloads = |result: &str| metric(addr, &format!("plutos_geoip_reloads_total{{result=\"{result}\"}}"));
    let country_now = |tag: &str| {
        assert_eq!(get_from(addr, "81.2.69.160", "curl/8.5.0", tag), 200);
        tag.to_string()
    };
    wait_until("the load to run", || load.sent() >= 200);
    let mut expected = vec![(country_now("before"), "GB")];

    // 1. A new file renamed over the old one.
    let next = write(data.path(), "city.mmdb.new", &city_db("IE"));
    std::fs::rename(&next, &city).unwrap();
    wait_until("the renamed database to load", || reloads("ok") == 1);
    expected.push((country_now("after_rename"), "IE"));

    // 2. The file overwritten in place with a broken database: the one in service stays, the process lives.
    std::fs::write(&city, &city_db("FR")[..200]).unwrap();
    wait_until("the broken database to be refused", || reloads("failed") >= 1);
    expected.push((country_now("after_broken"), "IE"));

    // 3. Overwritten in place again, whole this time.
    std::fs::write(&city, city_db("FR")).unwrap();
    wait_until("the rewritten database to load", || reloads("ok") == 2);
    expected.push((country_now("after_rewrite"), "FR"));

    // 4. SIGHUP reads the files again though none changed.
    collector.signal(libc::SIGHUP);
    wait_until("SIGHUP's reload", || reloads("ok") == 3);
    expected.push((country_now("after_sighup"), "FR"));

    wait_until("more load after the reloads", || load.sent() >= 400);
    let (total, failed) = load.stop();
    assert_eq!(failed, 0, "requests failed during the reloads");
    let refused = reloads("failed");
    collector.signal(libc::SIGTERM);
    let (status, stderr) = collector.wait_with_stderr();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("GeoIP database not reloaded"), "one line names the refused file: {stderr}");

    let records = read_records(&dir.path().join("out"));
    let tagged = by_tag(&records);
    for (tag, country) in expected {
        assert_eq!(tagged[&tag]["geo"]["country"], country, "{tag}");
    }
    let load_records = records.iter().filter(|r| r["raw_data"]["tag"] == "load").count() as u64;
    assert_eq!(load_records, total, "every load request stored once");
    eprintln!("reload under load: {total} keep-alive GETs, 0 failed; 3 reloads, {refused} refused loads");
}

#[test]
fn the_visitor_cookie_names_a_visitor_across_requests_unless_it_declines() {
    let server = TestServer::start(&[
        "--visitor-cookie",
        "vid",
        "--visitor-cookie-domain",
        ".shop.example",
        "--honor-gpc",
        "on",
        "--cors-origins",
        "https://shop.example",
    ]);
    let mut client = server.client();
    let first = client.request(b"GET /e?tag=first HTTP/1.1\r\nHost: t\r\nOrigin: https://shop.example\r\n\r\n");
    assert_eq!(first.status, 200);
    assert_eq!(first.header("access-control-allow-origin"), Some("https://shop.example"));
    let cookie = first.header("set-cookie").expect("a new visitor gets the cookie").to_string();
    let id = cookie.strip_prefix("vid=").unwrap().split(';').next().unwrap().to_string();
    assert_eq!(
        cookie,
        format!("vid={id}; Max-Age=31536000; Domain=.shop.example; Path=/; SameSite=None; Secure; HttpOnly")
    );
    assert_eq!(id.len(), 36);

    // The cookie comes back: the same id, and the cookie set again (its year starts over).
    let again =
        client.request(format!("GET /e?tag=again HTTP/1.1\r\nHost: t\r\nCookie: a=1; vid={id}\r\n\r\n").as_bytes());
    assert_eq!(again.header("set-cookie"), Some(cookie.as_str()));
    let body = b"{\"tag\":\"post\"}";
    let post = format!(
        "POST /e HTTP/1.1\r\nHost: t\r\nCookie: vid={id}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    assert_eq!(client.request(&[post.as_bytes(), body].concat()).header("set-cookie"), Some(cookie.as_str()));
    let segment =
        br#"{"type":"track","event":"Viewed","messageId":"m-1","anonymousId":"a-1","properties":{"tag":"segment"}}"#;
    let sdk = format!(
        "POST /v1/track HTTP/1.1\r\nHost: t\r\nCookie: vid={id}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        segment.len()
    );
    assert_eq!(client.request(&[sdk.as_bytes(), segment].concat()).header("set-cookie"), Some(cookie.as_str()));

    // Declined by Global Privacy Control or Do Not Track: no id, no cookie, even with the cookie sent.
    for (tag, line) in [("gpc", "Sec-GPC: 1"), ("dnt", "DNT: 1")] {
        let head = format!("GET /e?tag={tag} HTTP/1.1\r\nHost: t\r\nCookie: vid={id}\r\n{line}\r\n\r\n");
        let answer = client.request(head.as_bytes());
        assert_eq!((answer.status, answer.header("set-cookie")), (200, None), "{tag}");
    }
    let pixel = client.request(b"GET /i?e=pv&tv=js-3&p=web&aid=app HTTP/1.1\r\nHost: t\r\nSec-GPC: 1\r\n\r\n");
    assert_eq!((pixel.status, pixel.header("set-cookie")), (200, None), "Snowplow's cookie is declined too");

    let records = read_records(&server.stop().path().join("out"));
    let visitor = |tag: &str| {
        let record = records
            .iter()
            .find(|r| r["raw_data"]["tag"] == tag || r["raw_data"]["properties"]["tag"] == tag)
            .unwrap_or_else(|| panic!("no record tagged {tag}"));
        record["visitor_id"].clone()
    };
    for tag in ["first", "again", "post", "segment"] {
        assert_eq!(visitor(tag), json!(id), "{tag}");
    }
    for tag in ["gpc", "dnt"] {
        assert_eq!(visitor(tag), Value::Null, "{tag}");
    }
    let snowplow = records.iter().find(|r| r["protocol"] == "snowplow").unwrap();
    assert_eq!(snowplow["visitor_id"], Value::Null);
}
