//! The binary: parse the config, set up logging, bind, install signals, call the library, map the result to
//! an exit code (0 done, 1 runtime failure, 2 bad configuration).

use std::process::ExitCode;

use clap::Parser;
use plutos::{Args, Config};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => {
            let _ = e.print(); // --help, --version
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.to_string();
            eprintln!("plutos: {}", text.lines().next().unwrap_or("invalid arguments"));
            return ExitCode::from(2);
        }
    };
    let config = match Config::from_args(&args, &plutos::available_cpus()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("plutos: {e}");
            return ExitCode::from(2);
        }
    };
    if args.check_config {
        println!("plutos: configuration ok: {config:?}");
        return ExitCode::SUCCESS;
    }
    // Logs go to stderr: stdout belongs to the stdout sink.
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(config.log_level).with_ansi(false).init();
    abort_on_panic();

    // Signals first: a SIGTERM that arrives as soon as we announce the address must drain, not kill.
    let (trigger, shutdown) = crossbeam_channel::bounded(1);
    let mut signals = match Signals::new([SIGTERM, SIGINT]) {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("plutos: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
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

    // Refuse a spool another process holds before binding: with SO_REUSEPORT our listener would otherwise take
    // a share of that process's connections until we exit. (`run` takes the lock for good.)
    if let Err(e) = plutos::spool::SpoolDirs::create(&config.spool_dir).and_then(|d| d.lock()) {
        eprintln!("plutos: spool directory {}: {e}", config.spool_dir.display());
        return ExitCode::from(1);
    }
    let fd_limit = plutos::raise_fd_limit();
    if fd_limit < config.max_connections as u64 + 64 {
        tracing::warn!(fd_limit, max_connections = config.max_connections, "descriptor limit below MAX_CONNECTIONS");
    }
    let listeners = match plutos::bind(config.listen, config.workers) {
        Ok(listeners) => listeners,
        Err(e) => {
            eprintln!("plutos: cannot listen on {}: {e}", config.listen);
            return ExitCode::from(1);
        }
    };
    match listeners.local_addr() {
        Ok(addr) => tracing::info!("listening on {addr}"),
        Err(e) => tracing::warn!(error = %e, "bound, but cannot read the local address"),
    }

    match plutos::run(config, listeners, shutdown) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plutos: {e}");
            ExitCode::from(1)
        }
    }
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
