//! The binary: parse the config (or run `verify`), set up logging, bind, install signals, call the library, map
//! the result to an exit code (0 done, 1 runtime failure, 2 bad configuration).

use std::process::ExitCode;

use clap::Parser;
use crossbeam_channel::Receiver;
use plutos::config::{Command, LogFormat};
use plutos::{Args, Config};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => return ExitCode::SUCCESS,
        Err(code) => return code,
    };
    match &args.command {
        Some(Command::Verify { target, peek }) => return verify(&args, target, *peek),
        Some(Command::Top { once, collectors }) => return top(*once, collectors),
        Some(Command::Convert { source, dest }) => return convert(&args, source, dest),
        None => {}
    }
    let config = match parse_config(&args) {
        Ok(Some(config)) => config,
        Ok(None) => return ExitCode::SUCCESS,
        Err(code) => return code,
    };
    init_logging(&config);
    // One line with everything resolved (secrets print as ***), so a log shows what ran.
    tracing::info!(version = env!("CARGO_PKG_VERSION"), config = ?config, "starting");
    abort_on_panic();
    // Signals first: a SIGTERM that arrives as soon as we announce the address must drain, not kill.
    let shutdown = match install_signals() {
        Ok(shutdown) => shutdown,
        Err(e) => {
            eprintln!("plutos: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    match serve(config, shutdown) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("plutos: {message}");
            ExitCode::from(1)
        }
    }
}

/// `plutos top`: the view (or one as text), exit 1 when a collector cannot be read or the terminal not used.
fn top(once: bool, collectors: &[String]) -> ExitCode {
    let result = match once {
        true => plutos::top::once(collectors).map(|text| print!("{text}")),
        false => plutos::top::run(collectors),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("plutos top: {why}");
            ExitCode::from(1)
        }
    }
}

/// The settings as given; `None` after `--help` or `--version`; a bad one prints one line and gives exit code 2.
fn parse_args() -> Result<Option<Args>, ExitCode> {
    match Args::try_parse() {
        Ok(args) => Ok(Some(args.with_environment(std::env::vars()))),
        Err(e) if !e.use_stderr() => {
            let _ = e.print(); // --help, --version
            Ok(None)
        }
        Err(e) => {
            // One line: clap's first, with the possible values it lists below it.
            let text = e.to_string();
            let mut lines = text.lines().map(str::trim);
            let first = lines.next().unwrap_or("invalid arguments");
            match lines.find(|l| l.starts_with("[possible values")) {
                Some(values) => eprintln!("plutos: {first} {values}"),
                None => eprintln!("plutos: {first}"),
            }
            Err(ExitCode::from(2))
        }
    }
}

/// The validated configuration; `None` when there is nothing to run (`--check-config`, `--print-env-file`);
/// a bad setting prints one line and gives exit code 2.
fn parse_config(args: &Args) -> Result<Option<Config>, ExitCode> {
    if args.print_env_file {
        print!("{}", plutos::config::env_file());
        return Ok(None);
    }
    let config = match Config::from_args(args, &plutos::available_cpus()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("plutos: {e}");
            return Err(ExitCode::from(2));
        }
    };
    if args.check_config {
        // What a start would load and check (the GeoIP databases, the TLS pair, the event loop), found here,
        // before the old instance is stopped.
        if let Err(e) = plutos::prepare(&config) {
            eprintln!("plutos: {e}");
            return Err(ExitCode::from(2));
        }
        println!("plutos: configuration ok: {config:?}");
        return Ok(None);
    }
    Ok(Some(config))
}

/// `plutos verify`: the report on stdout; exit 1 on a gap or a bad object, 2 when the target cannot be read.
fn verify(args: &Args, target: &str, peek: bool) -> ExitCode {
    match plutos::verify::run(args, target, peek) {
        Ok(report) => {
            println!("{report}");
            if report.failed() { ExitCode::from(1) } else { ExitCode::SUCCESS }
        }
        Err(e) => {
            eprintln!("plutos verify: {e}");
            ExitCode::from(2)
        }
    }
}

/// `plutos convert`: one summary line on stdout; exit 1 when a source object was left out, 2 when a source or
/// the destination cannot be used.
fn convert(args: &Args, source: &str, dest: &str) -> ExitCode {
    match plutos::convert::run(args, source, dest) {
        Ok(done) => {
            for line in &done.skipped {
                println!("left out {line}");
            }
            println!(
                "plutos convert: {} NDJSON objects, {} events into {} Parquet objects; {} left out",
                done.sources,
                done.events,
                done.objects,
                done.skipped.len()
            );
            if done.skipped.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) }
        }
        Err(e) => {
            eprintln!("plutos convert: {e}");
            ExitCode::from(2)
        }
    }
}

/// Logs go to stderr (stdout belongs to the stdout sink): text lines, or with LOG_FORMAT=json one JSON object
/// per line with the event's fields at the top level (journald, Loki).
fn init_logging(config: &Config) {
    let logs = tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(config.log_level).with_ansi(false);
    match config.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).with_current_span(false).with_span_list(false).init(),
    }
}

/// The first SIGTERM or SIGINT triggers the graceful shutdown; a second one exits at once.
fn install_signals() -> std::io::Result<Receiver<()>> {
    let (trigger, shutdown) = crossbeam_channel::bounded(1);
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    std::thread::spawn(move || {
        let mut seen = 0;
        for signal in signals.forever() {
            seen += 1;
            if seen == 1 {
                tracing::info!(signal, "shutdown requested");
                let _ = trigger.try_send(());
            } else {
                // Everything acknowledged is already in the spool; the next start ships it.
                eprintln!("plutos: second signal: exiting now; unshipped chunks stay in the spool");
                std::process::exit(1);
            }
        }
    });
    Ok(shutdown)
}

/// Binds and runs the collector until the shutdown trigger; an error is one line.
fn serve(config: Config, shutdown: Receiver<()>) -> Result<(), String> {
    // Refuse a spool another process holds before binding: with SO_REUSEPORT our listener would otherwise take
    // a share of that process's connections until we exit. (`run` takes the lock for good.)
    if let Err(e) = plutos::spool::SpoolDirs::create(&config.spool.dir).and_then(|d| d.lock()) {
        return Err(format!("spool directory {}: {e}", config.spool.dir.display()));
    }
    let fd_limit = plutos::raise_fd_limit();
    let max_connections = config.http.max_connections;
    if fd_limit < max_connections as u64 + 64 {
        tracing::warn!(fd_limit, max_connections, "descriptor limit below MAX_CONNECTIONS");
    }
    let listeners = plutos::bind(&config).map_err(|e| e.to_string())?;
    if config.listen.is_some() {
        match listeners.local_addr() {
            Ok(addr) => tracing::info!("listening on {addr}"),
            Err(e) => tracing::warn!(error = %e, "bound, but cannot read the local address"),
        }
    }
    if let Some(addr) = listeners.tls_local_addr() {
        tracing::info!("listening for HTTPS on {addr}");
    }
    if let Some(addr) = listeners.udp_local_addr() {
        tracing::info!("listening for UDP datagrams on {addr}");
    }
    if let Some(addr) = listeners.quic_local_addr() {
        tracing::info!("listening for HTTP/3 (QUIC) on {addr}");
    }
    let buffers = [
        ("UDP_RCVBUF", config.udp.and_then(|udp| udp.rcvbuf), listeners.udp_receive_buffer()),
        ("QUIC_RCVBUF", config.quic.and_then(|quic| quic.rcvbuf), listeners.quic_receive_buffer()),
    ];
    for (setting, asked, set) in buffers {
        // The kernel doubles what it is asked for (bookkeeping) and caps it at net.core.rmem_max.
        if let (Some(asked), Some(set)) = (asked, set)
            && set / 2 < asked
        {
            tracing::warn!(asked, set, "{setting} is capped by net.core.rmem_max");
        }
    }
    plutos::run(config, listeners, shutdown).map_err(|e| e.to_string())
}

/// A panic in any thread ends the process (exit by SIGABRT). A worker that died would take its listener and
/// connections with it while the others carried on at reduced capacity, unnoticed; ending the process lets
/// the service manager (`Restart=on-failure`) start a fresh one, whose spool recovery ships everything that
/// was acknowledged. Release builds also set `panic = "abort"`, so nothing can unwind past this.
fn abort_on_panic() {
    let print_panic = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        print_panic(info);
        eprintln!("plutos: a thread panicked; aborting (everything acknowledged is in the spool for the next start)");
        std::process::abort();
    }));
}
