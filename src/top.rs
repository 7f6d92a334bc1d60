//! `plutos top [--once] COLLECTOR…`: a live view of one or more collectors, read from their `/metrics` once a
//! second. Rates come from two scrapes; gauges are shown as they are. `--once` prints one view as plain text
//! (two scrapes a second apart) for scripts; otherwise a terminal view (ratatui) refreshes every second, laid out
//! for 80×24, until `q` (or Esc, Ctrl-C).
//!
//! It reads plutos's own exposition (`name{labels} value` lines, one sample each), so a small reader does: no
//! Prometheus client is needed.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// How long a scrape may take before the collector is shown as unreachable.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);
const REFRESH: Duration = Duration::from_secs(1);

/// One scrape of a collector: every sample by its name and labels as written.
#[derive(Debug, Clone)]
pub struct Scrape {
    pub at: Instant,
    pub samples: BTreeMap<String, f64>,
}

impl Scrape {
    /// Reads the exposition text `text` taken at `at`.
    pub fn parse(text: &str, at: Instant) -> Scrape {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (key, value) = l.rsplit_once(' ')?;
                Some((key.to_string(), value.parse().ok()?))
            })
            .collect();
        Scrape { at, samples }
    }

    fn get(&self, key: &str) -> f64 {
        self.samples.get(key).copied().unwrap_or(0.0)
    }

    /// Samples of `name`, with the value of their label `label`.
    fn by_label<'a>(&'a self, name: &'a str, label: &'a str) -> impl Iterator<Item = (&'a str, &'a str, f64)> + 'a {
        let prefix = format!("{name}{{");
        self.samples.iter().filter_map(move |(key, &value)| {
            let labels = key.strip_prefix(&prefix)?;
            let at = labels.find(&format!("{label}=\""))? + label.len() + 2;
            let end = labels[at..].find('"')? + at;
            Some((key.as_str(), &labels[at..end], value))
        })
    }
}

/// What one collector is doing, from two scrapes.
#[derive(Debug, Default, PartialEq)]
pub struct View {
    pub events: f64,
    pub requests: f64,
    pub shipped: f64,
    /// Each worker's events per second and busy share, by its index.
    pub workers: Vec<(f64, f64)>,
    /// Answers per second by route and by status; refusals by reason; bad rows by type (non-zero only).
    pub routes: Vec<(String, f64)>,
    pub statuses: Vec<(String, f64)>,
    pub refusals: Vec<(String, f64)>,
    pub bad_rows: Vec<(String, f64)>,
    pub spool_bytes: f64,
    pub spool_fill: f64,
    pub oldest_unshipped: f64,
    pub queued: f64,
    pub uploading: f64,
    pub upload_failures: f64,
}

impl View {
    /// The view between scrapes `before` and `now`.
    pub fn between(before: &Scrape, now: &Scrape) -> View {
        let seconds = now.at.saturating_duration_since(before.at).as_secs_f64().max(1e-3);
        let rate = |key: &str| ((now.get(key) - before.get(key)) / seconds).max(0.0);
        let by = |name: &str, label: &str| -> Vec<(String, f64)> {
            let mut sums: BTreeMap<String, f64> = BTreeMap::new();
            for (key, value, _) in now.by_label(name, label) {
                *sums.entry(value.to_string()).or_default() += rate(key);
            }
            let mut rates: Vec<(String, f64)> = sums.into_iter().filter(|(_, r)| *r > 0.0).collect();
            rates.sort_by(|a, b| b.1.total_cmp(&a.1));
            rates
        };
        let mut workers: Vec<(usize, (f64, f64))> = now
            .by_label("plutos_worker_utilization", "worker")
            .filter_map(|(_, worker, share)| {
                let events = rate(&format!("plutos_worker_events_accepted_total{{worker=\"{worker}\"}}"));
                Some((worker.parse().ok()?, (events, share)))
            })
            .collect();
        workers.sort_by_key(|(worker, _)| *worker);
        View {
            events: rate("plutos_events_accepted_total"),
            requests: rate("plutos_requests_total"),
            shipped: rate("plutos_events_shipped_total"),
            workers: workers.into_iter().map(|(_, worker)| worker).collect(),
            routes: by("plutos_responses_total", "route"),
            statuses: by("plutos_responses_total", "status"),
            refusals: by("plutos_rejections_total", "reason"),
            bad_rows: by("plutos_bad_rows_total", "type"),
            spool_bytes: now.get("plutos_spool_bytes"),
            spool_fill: now.get("plutos_spool_fill_ratio"),
            oldest_unshipped: now.get("plutos_oldest_unshipped_chunk_age_seconds"),
            queued: now.get("plutos_chunks_queued"),
            uploading: now.get("plutos_uploads_in_flight"),
            upload_failures: rate("plutos_upload_failures_total{kind=\"retryable\"}")
                + rate("plutos_upload_failures_total{kind=\"permanent\"}"),
        }
    }

    /// The view as lines of at most 78 characters: the same text in the terminal and for `--once`.
    pub fn lines(&self) -> Vec<String> {
        let list = |items: &[(String, f64)]| -> String {
            if items.is_empty() {
                return "-".to_string();
            }
            items.iter().take(4).map(|(name, r)| format!("{name} {}/s", human(*r))).collect::<Vec<_>>().join("  ")
        };
        let workers = if self.workers.is_empty() {
            "-".to_string()
        } else {
            let shown: Vec<String> = self
                .workers
                .iter()
                .enumerate()
                .take(4)
                .map(|(i, (events, share))| format!("w{i} {}/s {:.0}%", human(*events), share * 100.0))
                .collect();
            let more = self.workers.len().saturating_sub(4);
            shown.join("  ") + &if more > 0 { format!("  +{more}") } else { String::new() }
        };
        let fit = |line: String| line.chars().take(78).collect::<String>();
        [
            format!(
                "events {}/s  requests {}/s  shipped {}/s",
                human(self.events),
                human(self.requests),
                human(self.shipped)
            ),
            format!("workers  {workers}"),
            format!("routes   {}", list(&self.routes)),
            format!("answers  {}", list(&self.statuses)),
            format!("refused  {}", list(&self.refusals)),
            format!("bad rows {}", list(&self.bad_rows)),
            format!(
                "spool    {} ({:.0}% full)  oldest unshipped {:.0} s",
                bytes(self.spool_bytes),
                self.spool_fill * 100.0,
                self.oldest_unshipped
            ),
            format!(
                "uploads  {} queued  {} in flight  {} failures/s",
                self.queued,
                self.uploading,
                human(self.upload_failures)
            ),
        ]
        .into_iter()
        .map(fit)
        .collect()
    }
}

/// `1234567` as `1.23M`, `12.5` as `12.5`.
fn human(n: f64) -> String {
    match n {
        n if n >= 1e6 => format!("{:.2}M", n / 1e6),
        n if n >= 1e4 => format!("{:.1}k", n / 1e3),
        n if n >= 100.0 => format!("{n:.0}"),
        n => format!("{n:.1}"),
    }
}

fn bytes(n: f64) -> String {
    match n {
        n if n >= (1u64 << 30) as f64 => format!("{:.1} GiB", n / (1u64 << 30) as f64),
        n if n >= (1u64 << 20) as f64 => format!("{:.1} MiB", n / (1u64 << 20) as f64),
        n if n >= 1024.0 => format!("{:.1} KiB", n / 1024.0),
        n => format!("{n:.0} B"),
    }
}

/// `host:port` of a collector given as `host:port` or `http://host:port[/…]`.
fn address(collector: &str) -> &str {
    let bare = collector.strip_prefix("http://").unwrap_or(collector);
    bare.split('/').next().unwrap_or(bare)
}

/// One scrape of `collector`'s `/metrics` (HTTP/1.1, `Connection: close`).
pub fn scrape(collector: &str) -> Result<Scrape, String> {
    let address = address(collector);
    let addr = address
        .to_socket_addrs()
        .map_err(|e| format!("{address}: {e}"))?
        .next()
        .ok_or_else(|| format!("{address}: no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, SCRAPE_TIMEOUT).map_err(|e| format!("{address}: {e}"))?;
    stream.set_read_timeout(Some(SCRAPE_TIMEOUT)).map_err(|e| e.to_string())?;
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(|e| format!("{address}: {e}"))?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(|e| format!("{address}: {e}"))?;
    let at = Instant::now();
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").ok_or_else(|| format!("{address}: not an HTTP answer"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("{address}: {}", head.lines().next().unwrap_or_default()));
    }
    Ok(Scrape::parse(body, at))
}

/// `--once`: two scrapes a second apart per collector, then each collector's view as text.
pub fn once(collectors: &[String]) -> Result<String, String> {
    let first: Vec<Result<Scrape, String>> = collectors.iter().map(|c| scrape(c)).collect();
    std::thread::sleep(REFRESH);
    let mut text = String::new();
    for (collector, before) in collectors.iter().zip(first) {
        text.push_str(&format!("{}\n", address(collector)));
        let view = View::between(&before?, &scrape(collector)?);
        for line in view.lines() {
            text.push_str(&format!("  {line}\n"));
        }
    }
    Ok(text)
}

/// The terminal view, until `q`.
pub fn run(collectors: &[String]) -> Result<(), String> {
    use ratatui::crossterm::event::{self, Event, KeyCode, KeyModifiers};
    use ratatui::layout::{Constraint, Layout};
    use ratatui::widgets::{Block, Borders, Paragraph};

    let mut terminal = ratatui::try_init().map_err(|e| format!("cannot take the terminal: {e}"))?;
    let mut last: Vec<Option<Scrape>> = collectors.iter().map(|c| scrape(c).ok()).collect();
    let mut views: Vec<Result<View, String>> = collectors.iter().map(|_| Err("reading…".to_string())).collect();
    let mut next = Instant::now() + REFRESH;
    let result = loop {
        let drawn = terminal.draw(|frame| {
            let areas = Layout::vertical(collectors.iter().map(|_| Constraint::Fill(1))).split(frame.area());
            for ((collector, view), area) in collectors.iter().zip(&views).zip(areas.iter()) {
                let text = match view {
                    Ok(view) => view.lines().join("\n"),
                    Err(why) => why.clone(),
                };
                let title = format!(" plutos top — {}  (q quits) ", address(collector));
                frame.render_widget(
                    Paragraph::new(text).block(Block::default().borders(Borders::ALL).title(title)),
                    *area,
                );
            }
        });
        if let Err(e) = drawn {
            break Err(e.to_string());
        }
        let wait = next.saturating_duration_since(Instant::now());
        match event::poll(wait) {
            Ok(true) => {
                if let Ok(Event::Key(key)) = event::read() {
                    let ctrl_c = key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
                    if matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) || ctrl_c {
                        break Ok(());
                    }
                }
                continue;
            }
            Ok(false) => {}
            Err(e) => break Err(e.to_string()),
        }
        next = Instant::now() + REFRESH;
        for ((collector, previous), view) in collectors.iter().zip(last.iter_mut()).zip(views.iter_mut()) {
            match (scrape(collector), previous.take()) {
                (Ok(now), Some(before)) => {
                    *view = Ok(View::between(&before, &now));
                    *previous = Some(now);
                }
                (Ok(now), None) => *previous = Some(now),
                (Err(why), _) => *view = Err(why),
            }
        }
    };
    ratatui::restore();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "# HELP x\nplutos_events_accepted_total 100\nplutos_requests_total 10\n\
        plutos_responses_total{route=\"/e\",status=\"200\"} 8\nplutos_responses_total{route=\"/v1/batch\",status=\"200\"} 2\n\
        plutos_rejections_total{reason=\"too_large\"} 0\nplutos_worker_utilization{worker=\"1\"} 0.1\n\
        plutos_worker_utilization{worker=\"0\"} 0.2\nplutos_worker_events_accepted_total{worker=\"0\"} 60\n\
        plutos_worker_events_accepted_total{worker=\"1\"} 40\nplutos_spool_bytes 2048\nplutos_spool_fill_ratio 0.5\n";
    const AFTER: &str = "plutos_events_accepted_total 2100\nplutos_requests_total 30\n\
        plutos_responses_total{route=\"/e\",status=\"200\"} 18\nplutos_responses_total{route=\"/v1/batch\",status=\"200\"} 4\n\
        plutos_responses_total{route=\"/e\",status=\"413\"} 1\nplutos_rejections_total{reason=\"too_large\"} 1\n\
        plutos_worker_utilization{worker=\"1\"} 0.25\nplutos_worker_utilization{worker=\"0\"} 0.9\n\
        plutos_worker_events_accepted_total{worker=\"0\"} 1660\nplutos_worker_events_accepted_total{worker=\"1\"} 540\n\
        plutos_spool_bytes 3145728\nplutos_spool_fill_ratio 0.75\nplutos_oldest_unshipped_chunk_age_seconds 12\n";

    #[test]
    fn rates_come_from_two_scrapes_and_gauges_from_the_last() {
        let start = Instant::now();
        let before = Scrape::parse(BEFORE, start);
        let after = Scrape::parse(AFTER, start + Duration::from_secs(2));
        let view = View::between(&before, &after);
        assert_eq!((view.events, view.requests), (1000.0, 10.0));
        assert_eq!(view.workers, [(800.0, 0.9), (250.0, 0.25)], "by worker index");
        assert_eq!(view.routes, [("/e".to_string(), 5.5), ("/v1/batch".to_string(), 1.0)]);
        assert_eq!(view.statuses, [("200".to_string(), 6.0), ("413".to_string(), 0.5)]);
        assert_eq!(view.refusals, [("too_large".to_string(), 0.5)]);
        let lines = view.lines();
        assert!(lines.iter().all(|l| l.chars().count() <= 78), "{lines:#?}");
        assert_eq!(lines[0], "events 1000/s  requests 10.0/s  shipped 0.0/s");
        assert_eq!(lines[1], "workers  w0 800/s 90%  w1 250/s 25%");
        assert_eq!(lines[6], "spool    3.0 MiB (75% full)  oldest unshipped 12 s");
    }

    #[test]
    fn a_collector_is_named_bare_or_by_url() {
        assert_eq!(address("127.0.0.1:8080"), "127.0.0.1:8080");
        assert_eq!(address("http://[::1]:8080/metrics"), "[::1]:8080");
        assert!(scrape("127.0.0.1:1").is_err(), "nothing listens on port 1");
    }
}
