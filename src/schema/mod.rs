//! Schemas for validating events: an Iglu static registry on disk (`SCHEMAS_DIR`), compiled once and shared
//! read-only by the workers.
//!
//! - `key`: Iglu URIs (`iglu:vendor/name/format/model-revision-addition`), parsed strictly.
//! - `registry`: the registry's files read and compiled (JSON Schema draft 4, `$ref`s resolved from the
//!   registry only, `pattern` with the linear-time `regex` engine), and its validation counters.
//! - `check`: a worker's validation of self-describing events against the registry in service.
//!
//! A reload (SIGHUP, or a file of the registry added, replaced or removed) compiles the whole registry again on
//! the reload thread; if any schema fails, the set in service stays and one line says which file and why.

pub mod badrow;
pub mod check;
pub mod key;
pub mod plan;
pub mod registry;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

pub use check::{Checked, Checker, Validation};
pub use key::{KeyError, SchemaKey, SchemaVer};
pub use registry::{Compiled, LoadError, Registry};

use crate::reload::{Published, Reloadable};

/// The registry in service, and its reloads.
pub struct Schemas {
    dir: PathBuf,
    /// `TRACKING_PLAN`, loaded with the registry.
    plan: Option<PathBuf>,
    /// The workers counting validations.
    workers: usize,
    mode: Validation,
    published: Published<Registry>,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
}

impl Schemas {
    /// Loads and compiles the registry at `dir` (and the tracking plan at `plan`) for `workers` that validate as
    /// `mode` says; an error names the first file that failed.
    pub fn load(dir: &Path, plan: Option<&Path>, workers: usize, mode: Validation) -> Result<Schemas, LoadError> {
        let started = Instant::now();
        let registry = load(dir, plan, workers)?;
        tracing::info!(
            dir = %dir.display(),
            schemas = registry.len(),
            planned_events = registry.plan().map(|p| p.len()),
            ms = started.elapsed().as_millis() as u64,
            "schemas compiled"
        );
        Ok(Schemas {
            dir: dir.to_path_buf(),
            plan: plan.map(Path::to_path_buf),
            workers,
            mode,
            published: Published::new(registry),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
        })
    }

    /// What a failed validation does.
    pub fn mode(&self) -> Validation {
        self.mode
    }

    /// The registry in service.
    pub fn current(&self) -> Arc<Registry> {
        self.published.current()
    }

    pub fn published(&self) -> &Published<Registry> {
        &self.published
    }

    /// Reloads that replaced the registry in service.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Reloads that failed (the registry before stayed in service).
    pub fn reload_failures(&self) -> u64 {
        self.reload_failures.load(Ordering::Relaxed)
    }
}

/// The registry at `dir`, with the tracking plan at `plan` if there is one.
fn load(dir: &Path, plan: Option<&Path>, workers: usize) -> Result<Registry, LoadError> {
    let registry = Registry::load(dir, workers)?;
    match plan {
        Some(plan) => registry.with_plan(plan),
        None => Ok(registry),
    }
}

impl Reloadable for Schemas {
    fn what(&self) -> &'static str {
        "the schemas"
    }

    /// Every directory and file of the registry in service: a file added or removed changes its directory.
    fn files(&self) -> Vec<PathBuf> {
        self.current().files().to_vec()
    }

    /// Compiles the registry again (a reload thread's look found a change, or SIGHUP); the new set replaces the
    /// old only when every schema compiled.
    fn reload(&self, _forced: bool) {
        let started = Instant::now();
        match load(&self.dir, self.plan.as_deref(), self.workers) {
            Ok(registry) => {
                registry.carry_counts(&self.current());
                tracing::info!(schemas = registry.len(), ms = started.elapsed().as_millis() as u64, "schemas reloaded");
                self.published.publish(registry);
                self.reloads.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.reload_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "schemas not reloaded; the set loaded before stays in service");
            }
        }
    }
}
