//! HTTPS's lines in `/metrics` (only with `TLS_PORT`): the certificate's expiry, its reloads, the handshakes
//! by kind and the TLS connections that failed.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use crossbeam_utils::CachePadded;

use super::WorkerMetrics;
use crate::tls::Tls;

pub fn render_tls(out: &mut String, workers: &[CachePadded<WorkerMetrics>], tls: Option<&Tls>) {
    let Some(tls) = tls else {
        return;
    };
    let sum = |f: fn(&WorkerMetrics) -> &std::sync::atomic::AtomicU64| {
        workers.iter().map(|w| f(w).load(Relaxed)).sum::<u64>()
    };
    let failures = sum(|w| &w.tls_failures);
    let _ = writeln!(
        out,
        "# HELP plutos_tls_cert_not_after_seconds when the TLS certificate in service expires (Unix seconds)\n\
         # TYPE plutos_tls_cert_not_after_seconds gauge\n\
         plutos_tls_cert_not_after_seconds {}\n\
         # HELP plutos_tls_reloads_total TLS certificate reloads by result (a failed one keeps the pair in service)\n\
         # TYPE plutos_tls_reloads_total counter\n\
         plutos_tls_reloads_total{{result=\"ok\"}} {}\nplutos_tls_reloads_total{{result=\"failed\"}} {}\n\
         # HELP plutos_tls_failures_total TLS connections closed on a failed handshake, a bad record from the \
         client or a handshake that did not end within HEADER_TIMEOUT_SECONDS\n\
         # TYPE plutos_tls_failures_total counter\n\
         plutos_tls_failures_total {failures}\n\
         # HELP plutos_tls_handshakes_total TLS handshakes completed, by kind (resumed: a session ticket or cached \
         session)\n\
         # TYPE plutos_tls_handshakes_total counter\n\
         plutos_tls_handshakes_total{{kind=\"full\"}} {}\nplutos_tls_handshakes_total{{kind=\"resumed\"}} {}",
        tls.not_after.load(Relaxed),
        tls.reloads.load(Relaxed),
        tls.reload_failures.load(Relaxed),
        sum(|w| &w.tls_full),
        sum(|w| &w.tls_resumed),
    );
}
