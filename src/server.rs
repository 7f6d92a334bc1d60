//! `run`: recover the spool, start the uploader and one pinned worker per listener, wait for the shutdown
//! trigger, then drain, close, seal and ship until the deadline (README "Shutdown", ARCHITECTURE.md "Shutdown").

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::config::{Config, HttpConfig, IoBackend, ShutdownConfig};
use crate::enrich::{EnrichError, Enrichment};
use crate::event::ids::{host_name, new_boot_id, random_u64};
use crate::listener::Listeners;
use crate::reload::{self, Reloadable};
use crate::schema::Schemas;
use crate::ship::Uploader;
use crate::ship::notify::Notifier;
use crate::ship::sink::Sink;
use crate::spool::chunk::ChunkWriter;
use crate::spool::{SpoolDirs, Stream, UploadJob, recover};
use crate::state::{Phase, Shared};
use crate::tls::{Tls, TlsError};
use crate::worker::quic::{Quic, QuicShared};
use crate::worker::request::Requests;
use crate::worker::udp::Datagrams;
use crate::worker::wake::Wake;
use crate::worker::{Backend, Parts, WorkerSettings, WorkerSetup};

/// Room in the worker → uploader channel, in sealed chunks.
const UPLOAD_QUEUE: usize = 1024;
/// The longest the start-up check of the sink holds back readiness (the uploader gives it 5 s).
const SINK_CHECK_WAIT: Duration = Duration::from_secs(6);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("spool directory {path}: {source}")]
    Spool { path: String, source: io::Error },
    #[error("cannot start a thread: {0}")]
    Thread(io::Error),
    #[error("event loop: {0}")]
    Poll(io::Error),
    #[error("IO_BACKEND=uring: {0}")]
    Uring(String),
    #[error("{0} panicked; everything acknowledged is in the spool for the next start")]
    Panicked(&'static str),
    #[error("{0}")]
    Sink(String),
    #[error(transparent)]
    Enrich(#[from] EnrichError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("SCHEMAS_DIR: {0}")]
    Schemas(#[from] crate::schema::LoadError),
}

/// Serves until `shutdown` yields (or its sender is dropped), then shuts down gracefully. Returns once every
/// worker has sealed its chunk and the uploader has shipped everything or reached the shutdown timeout.
pub fn run(config: Config, listeners: Listeners, shutdown: Receiver<()>) -> Result<(), RunError> {
    let spool_error = |source| RunError::Spool { path: config.spool.dir.display().to_string(), source };
    let dirs = SpoolDirs::create(&config.spool.dir).map_err(spool_error)?;
    let _lock = dirs.lock().map_err(spool_error)?;
    let recovered = recover(&dirs).map_err(spool_error)?;
    let spool_bytes = dirs.total_bytes().map_err(spool_error)?;
    let aside_bytes = dirs.aside_bytes().map_err(spool_error)?;
    if !recovered.is_empty() {
        tracing::info!(chunks = recovered.len(), "queued sealed chunks from the spool");
    }
    let workers = listeners.workers();
    let Prepared { enrichment, tls, schemas, backend } = prepare(&config)?;
    tracing::info!(backend = backend.name(), "io backend: {}", backend.name());
    let shared = Arc::new(
        Shared::new(workers, spool_bytes, config.spool.max_bytes)
            .with_io_backend(backend.name())
            .with_enrichment(enrichment.clone())
            .with_tls(tls.clone())
            .with_schemas(schemas.clone())
            .with_udp(config.udp.is_some())
            .with_http2(config.http.http2_max_streams.is_some())
            .with_quic(config.quic.is_some()),
    );
    shared.aside_bytes.store(aside_bytes, std::sync::atomic::Ordering::Relaxed);
    let boot = new_boot_id();
    tracing::info!(boot = %boot, workers, "starting");

    let (jobs, jobs_rx) = crossbeam_channel::bounded(UPLOAD_QUEUE);
    let (checked_tx, checked) = crossbeam_channel::bounded(1);
    let sink = Sink::from_config(&config.sink, &config.upload.key_prefix, &config.spool.dir, &shared)
        .map_err(RunError::Sink)?;
    let notifier = match &config.upload.notify {
        Some(notify) => {
            let (source, bucket) = sink.notification_source();
            shared.uploader.notify_enabled.store(true, std::sync::atomic::Ordering::Relaxed);
            Some(Notifier::new(notify, source, bucket).map_err(RunError::Sink)?)
        }
        None => None,
    };
    let uploader = Uploader {
        sink,
        notifier,
        dirs: dirs.clone(),
        host: host_name(),
        boot: boot.clone(),
        shared: shared.clone(),
        settings: config.upload.clone(),
    };
    let uploader = thread::Builder::new()
        .name("plutos-uploader".into())
        .spawn(move || uploader.run(jobs_rx, recovered, checked_tx))
        .map_err(RunError::Thread)?;
    let (workers, wakers) = start_workers(&config, backend, listeners, &boot, &dirs, jobs, &shared)?;
    // SIGHUP reloads what can be reloaded (its default action would end the process).
    let hangup = Arc::new(AtomicBool::new(false));
    let hangup_signal =
        signal_hook::flag::register(signal_hook::consts::SIGHUP, hangup.clone()).map_err(RunError::Thread)?;
    let (stop_reload, reload_stopped) = crossbeam_channel::bounded::<()>(1);
    let mut reloadable: Vec<Arc<dyn Reloadable>> = Vec::new();
    if let Some(geo) = enrichment.as_ref().and_then(|e| e.geo.clone()) {
        reloadable.push(geo);
    }
    if let Some(tls) = tls {
        reloadable.push(tls);
    }
    if let Some(schemas) = schemas {
        reloadable.push(schemas);
    }
    let reload = reload::spawn(reloadable, hangup, reload_stopped).map_err(RunError::Thread)?;

    // Ready once the sink was checked (or the check gave up): a sink that is down still lets ingest run into
    // the spool, but the operator hears of it before the service reports ready.
    let _ = checked.recv_timeout(SINK_CHECK_WAIT);
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    wait_for_shutdown(&shutdown, &shared, &workers, &uploader);
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    shut_down(config.shutdown, &shared, &wakers);

    // The binary aborts on any panic (main.rs); a library caller learns of one here.
    let mut panicked = None;
    for worker in workers {
        if worker.join().is_err() {
            panicked = Some("a worker");
        }
    }
    if uploader.join().is_err() {
        panicked = Some("the uploader");
    }
    signal_hook::low_level::unregister(hangup_signal);
    drop(stop_reload);
    if reload.join().is_err() {
        panicked = Some("the reload thread");
    }
    if let Some(thread) = panicked {
        return Err(RunError::Panicked(thread));
    }
    tracing::info!("shutdown complete");
    Ok(())
}

/// The worker threads, and the wakes that end their waits.
type Workers = (Vec<thread::JoinHandle<()>>, Vec<Arc<Wake>>);

/// What a start needs besides the configuration, loaded and checked once — by `run`, and by `--check-config`,
/// which stops there — so a deployment's check refuses exactly what its start would: the GeoIP databases and
/// user-agent lists, the TLS certificate and key (they must load and match), the schemas (every one must
/// compile), and the event loop (`IO_BACKEND=uring` must pass the probe; `auto` falls back).
pub struct Prepared {
    pub enrichment: Option<Arc<Enrichment>>,
    pub tls: Option<Arc<Tls>>,
    pub schemas: Option<Arc<Schemas>>,
    pub backend: Backend,
}

pub fn prepare(config: &Config) -> Result<Prepared, RunError> {
    let enrichment = match config.edge.enrich.enabled() {
        true => Some(Arc::new(Enrichment::new(&config.edge.enrich, config.edge.ip_mode)?)),
        false => None,
    };
    let tls = match &config.tls {
        Some(tls) => {
            let http2 = config.http.http2_max_streams.is_some();
            Some(Arc::new(Tls::load(&tls.cert, &tls.key, http2, config.quic.is_some())?))
        }
        None => None,
    };
    let schemas = match &config.validation.schemas_dir {
        Some(dir) => {
            let validation = &config.validation;
            Some(Arc::new(Schemas::load(dir, validation.tracking_plan.as_deref(), config.workers, validation.mode)?))
        }
        None => None,
    };
    let backend = io_backend(config.io_backend)?;
    Ok(Prepared { enrichment, tls, schemas, backend })
}

/// `IO_BACKEND` resolved: `auto` is io_uring when the probe passes, else epoll with one line saying why.
fn io_backend(configured: IoBackend) -> Result<Backend, RunError> {
    let backend = match configured {
        IoBackend::Epoll => Backend::Epoll,
        IoBackend::Uring => {
            crate::uring::probe().map_err(RunError::Uring)?;
            Backend::Uring
        }
        IoBackend::Auto => match crate::uring::probe() {
            Ok(()) => Backend::Uring,
            Err(why) => {
                tracing::info!(reason = %why, "io_uring is not available; using epoll");
                Backend::Epoll
            }
        },
    };
    Ok(backend)
}

/// One pinned worker thread per listener; returns their handles and the wakes that end their waits.
fn start_workers(
    config: &Config,
    backend: Backend,
    listeners: Listeners,
    boot: &str,
    dirs: &SpoolDirs,
    jobs: Sender<UploadJob>,
    shared: &Arc<Shared>,
) -> Result<Workers, RunError> {
    let count = listeners.workers();
    // HTTPS answers advertise the QUIC port as bound (`QUIC_PORT` may say 0).
    let http = HttpConfig { alt_svc: listeners.quic_local_addr().map(|addr| addr.port()), ..config.http };
    let boot_random = random_u64() as u32;
    let settings = WorkerSettings {
        max_connections: config.http.max_connections.div_ceil(count),
        header_timeout: config.http.header_timeout,
        idle_timeout: config.http.idle_timeout,
        fsync: config.spool.chunk.fsync,
        shutdown_timeout: config.shutdown.timeout,
    };
    let mut wakers = Vec::with_capacity(count);
    let mut handles = Vec::with_capacity(count);
    let max_datagram = config.udp.map_or(0, |udp| udp.max_datagram);
    let wakes = (0..count).map(|_| Wake::new().map(Arc::new)).collect::<Result<Vec<_>, _>>().map_err(RunError::Poll)?;
    let (handoffs, mut inboxes): (Vec<_>, Vec<_>) =
        (0..count).map(|_| crossbeam_channel::bounded(crate::worker::quic::HANDOFF_QUEUE)).unzip();
    let routes: Vec<_> = handoffs.into_iter().zip(wakes.iter().cloned()).collect();
    let quic = config.quic.map(|quic| {
        let limits = crate::worker::quic::session::Limits {
            // A request stream: its largest body and field section, and room for the frames' headers.
            max_request: config.http.max_body_bytes + crate::worker::request::MAX_FIELD_SECTION as usize + 64,
            max_field_section: crate::worker::request::MAX_FIELD_SECTION,
            header_timeout: config.http.header_timeout,
        };
        Arc::new(QuicShared::new(quic.max_streams, quic.retry, limits, config.http.idle_timeout, routes))
    });
    for ((index, sockets), inbox) in listeners.into_workers().enumerate().zip(inboxes.drain(..)) {
        let wake = wakes[index].clone();
        wakers.push(wake.clone());
        let setup = WorkerSetup {
            backend,
            listener: sockets.http.map(mio::net::TcpListener::from_std),
            tls_listener: sockets.https.map(mio::net::TcpListener::from_std),
            parts: Parts {
                index,
                wake,
                tls: shared.tls.clone(),
                udp: sockets.udp.map(|socket| Datagrams::new(mio::net::UdpSocket::from_std(socket), max_datagram)),
                quic: sockets.quic.zip(quic.clone()).map(|(socket, quic)| {
                    let crypto = shared.tls.as_ref().and_then(|tls| tls.published.current().quic.clone());
                    let socket = mio::net::UdpSocket::from_std(socket);
                    Quic::new(socket, quic, index, settings.max_connections, crypto, inbox)
                }),
                settings,
                requests: Requests::new(http, &config.edge, shared.clone(), index, boot_random),
                chunks: Stream::ALL
                    .map(|stream| ChunkWriter::new(index, stream, boot.to_string(), dirs.clone(), config.spool.chunk)),
                jobs: jobs.clone(),
                shared: shared.clone(),
            },
        };
        let cpu = (!config.cpus.is_empty()).then(|| config.cpus[index % config.cpus.len()]);
        let handle = thread::Builder::new()
            .name(format!("plutos-w{index}"))
            .spawn(move || {
                // Pinning keeps a worker's connections, buffers and chunk state in one core's caches; the
                // kernel's SO_REUSEPORT spread then maps connections to cores.
                if let Some(id) = cpu
                    && !core_affinity::set_for_current(core_affinity::CoreId { id })
                {
                    tracing::warn!(worker = index, cpu = id, "cannot pin worker");
                }
                if let Err(e) = crate::worker::run(setup) {
                    tracing::error!(worker = index, error = %e, "worker stopped");
                }
            })
            .map_err(RunError::Thread)?;
        handles.push(handle);
    }
    Ok((handles, wakers))
}

/// The phases after the trigger: drain (`/health` 503, ingest goes on), then closing (listeners closed,
/// requests in flight finished, chunks sealed) with the uploader's deadline set.
fn shut_down(config: ShutdownConfig, shared: &Shared, wakers: &[Arc<Wake>]) {
    tracing::info!(drain_seconds = config.drain.as_secs(), "shutdown: draining (/health answers 503)");
    shared.set_phase(Phase::Draining);
    if !config.drain.is_zero() {
        thread::sleep(config.drain);
    }
    tracing::info!("shutdown: closing listeners, finishing in-flight requests, sealing chunks");
    let _ = shared.upload_deadline.set(Instant::now() + config.timeout);
    shared.set_phase(Phase::Closing);
    for waker in wakers {
        waker.wake();
    }
}

/// Waits for the shutdown trigger. Under a systemd watchdog, pings it every half period while every worker's
/// loop is turning (each wakes at least once a second) and the uploader thread lives.
fn wait_for_shutdown(
    shutdown: &Receiver<()>,
    shared: &Shared,
    workers: &[thread::JoinHandle<()>],
    uploader: &thread::JoinHandle<()>,
) {
    let Some(period) = sd_notify::watchdog_enabled() else {
        let _ = shutdown.recv();
        return;
    };
    let ping_every = period / 2;
    let stale_after = Duration::from_secs(3).max(period);
    let iterations = |i: usize| shared.workers[i].loop_iterations.load(Ordering::Relaxed);
    let mut last_seen: Vec<(u64, Instant)> = (0..workers.len()).map(|i| (iterations(i), Instant::now())).collect();
    loop {
        match shutdown.recv_timeout(ping_every) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let now = Instant::now();
        for (i, seen) in last_seen.iter_mut().enumerate() {
            let count = iterations(i);
            if count != seen.0 {
                *seen = (count, now);
            }
        }
        let workers_alive = last_seen.iter().all(|(_, at)| now.duration_since(*at) < stale_after)
            && workers.iter().all(|w| !w.is_finished());
        if workers_alive && !uploader.is_finished() {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
        } else {
            tracing::error!("a worker or the uploader is stuck or gone; withholding the watchdog ping");
        }
    }
}
