//! The saturation signal an autoscaler follows (README "Scaling out"): how much of its time each worker spends
//! working rather than waiting for work, and how full the spool is.
//!
//! A worker's loop adds the time from each wake to its next wait to `busy_nanos` (no extra clock read: the one
//! that computes the wait's timeout ends the busy span), and once a second, at housekeeping, publishes the share
//! of that second it was busy as `utilization` — near 0 idle, toward 1 when its core cannot take more.

use std::fmt::Write;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use super::{WorkerCounter, WorkerMetrics};

/// A worker's own accounting of busy time (only its thread touches it).
#[derive(Debug)]
pub struct BusyClock {
    /// When the loop last woke from its wait.
    woke: Instant,
    /// Busy time since `window_start`.
    window_busy: Duration,
    window_start: Instant,
}

impl BusyClock {
    pub fn new(now: Instant) -> BusyClock {
        BusyClock { woke: now, window_busy: Duration::ZERO, window_start: now }
    }

    /// The loop woke at `now`.
    pub fn woke(&mut self, now: Instant) {
        self.woke = now;
    }

    /// The loop is about to wait at `now`: the span since it woke was work.
    pub fn waits(&mut self, now: Instant, metrics: &WorkerMetrics) {
        let busy = now.saturating_duration_since(self.woke);
        self.window_busy += busy;
        add_to(&metrics.busy_nanos, busy.as_nanos() as u64);
    }

    /// Publishes the busy share of the window that ends at `now` and starts the next one.
    pub fn publish(&mut self, now: Instant, metrics: &WorkerMetrics) {
        let window = now.saturating_duration_since(self.window_start);
        if window.is_zero() {
            return;
        }
        let share = (self.window_busy.as_secs_f64() / window.as_secs_f64()).min(1.0);
        metrics.utilization.store(share.to_bits(), Relaxed);
        self.window_busy = Duration::ZERO;
        self.window_start = now;
    }
}

/// A counter only its worker writes: a load and a store, no locked instruction.
fn add_to(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed) + n, Relaxed);
}

/// Per-worker events, loop iterations, busy time and utilization, and the spool's fill.
pub fn render_saturation(out: &mut String, workers: &[CachePadded<WorkerMetrics>], fill: f64) {
    let per_worker: [(&str, &str, WorkerCounter); 2] = [
        ("plutos_worker_events_accepted_total", "events each worker acknowledged (in the spool)", |w| {
            &w.events_accepted
        }),
        ("plutos_worker_loop_iterations_total", "each worker's event-loop iterations (at least one a second)", |w| {
            &w.loop_iterations
        }),
    ];
    for (name, help, counter) in per_worker {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (i, w) in workers.iter().enumerate() {
            let _ = writeln!(out, "{name}{{worker=\"{i}\"}} {}", counter(w).load(Relaxed));
        }
    }
    let _ = writeln!(
        out,
        "# HELP plutos_worker_busy_seconds_total time each worker spent handling work rather than waiting for it\n\
         # TYPE plutos_worker_busy_seconds_total counter"
    );
    for (i, w) in workers.iter().enumerate() {
        let seconds = w.busy_nanos.load(Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "plutos_worker_busy_seconds_total{{worker=\"{i}\"}} {seconds:.6}");
    }
    let _ = writeln!(
        out,
        "# HELP plutos_worker_utilization share of the last second each worker was busy (0 idle, 1 saturated)\n\
         # TYPE plutos_worker_utilization gauge"
    );
    for (i, w) in workers.iter().enumerate() {
        let share = f64::from_bits(w.utilization.load(Relaxed));
        let _ = writeln!(out, "plutos_worker_utilization{{worker=\"{i}\"}} {share:.4}");
    }
    let _ = writeln!(
        out,
        "# HELP plutos_spool_fill_ratio the spool's bytes (and what is set aside there) over MAX_SPOOL_BYTES; ingest \
         answers 503 at 1\n# TYPE plutos_spool_fill_ratio gauge\nplutos_spool_fill_ratio {fill:.4}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busy_share_of_a_window_is_published_and_the_window_starts_again() {
        let metrics = WorkerMetrics::default();
        let start = Instant::now();
        let mut clock = BusyClock::new(start);
        let ms = Duration::from_millis;
        // Busy 0-100 ms and 500-800 ms of a one-second window.
        clock.waits(start + ms(100), &metrics);
        clock.woke(start + ms(500));
        clock.waits(start + ms(800), &metrics);
        clock.publish(start + ms(1000), &metrics);
        assert!((f64::from_bits(metrics.utilization.load(Relaxed)) - 0.4).abs() < 1e-9);
        assert_eq!(metrics.busy_nanos.load(Relaxed), 400_000_000);
        // An idle second after it.
        clock.woke(start + ms(1999));
        clock.waits(start + ms(1999), &metrics);
        clock.publish(start + ms(2000), &metrics);
        assert_eq!(f64::from_bits(metrics.utilization.load(Relaxed)), 0.0);
        let mut text = String::new();
        render_saturation(&mut text, &[CachePadded::new(metrics)], 0.25);
        assert!(text.contains("plutos_worker_busy_seconds_total{worker=\"0\"} 0.400000\n"), "{text}");
        assert!(text.contains("plutos_worker_utilization{worker=\"0\"} 0.0000\n"), "{text}");
        assert!(text.contains("plutos_spool_fill_ratio 0.2500\n"), "{text}");
        assert!(text.contains("plutos_worker_events_accepted_total{worker=\"0\"} 0\n"), "{text}");
    }
}
