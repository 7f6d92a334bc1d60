//! Validation's lines in `/metrics`: bad rows by type, and (only with `SCHEMAS_DIR`) the schemas in service,
//! their reloads, and the validations by schema and result — a label per schema the registry holds, one for
//! every unknown schema.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use crossbeam_utils::CachePadded;

use super::WorkerMetrics;
use crate::schema::Schemas;
use crate::schema::badrow::BadRowKind;

/// Bad rows written to the bad stream, by type (Snowplow's bad-row schema name); part of the events accepted.
pub fn render_bad_rows(out: &mut String, workers: &[CachePadded<WorkerMetrics>]) {
    let _ = writeln!(
        out,
        "# HELP plutos_bad_rows_total events stored as bad rows in the bad stream (counted in events accepted), by \
         type\n# TYPE plutos_bad_rows_total counter"
    );
    for kind in BadRowKind::ALL {
        let n: u64 = workers.iter().map(|w| w.bad_rows[kind as usize].load(Relaxed)).sum();
        let _ = writeln!(out, "plutos_bad_rows_total{{type=\"{}\"}} {n}", kind.name());
    }
}

pub fn render_schemas(out: &mut String, workers: &[CachePadded<WorkerMetrics>], schemas: Option<&Schemas>) {
    let Some(schemas) = schemas else {
        return;
    };
    let registry = schemas.current();
    let _ = writeln!(
        out,
        "# HELP plutos_schemas the schemas in service (SCHEMAS_DIR), compiled\n\
         # TYPE plutos_schemas gauge\n\
         plutos_schemas {}\n\
         # HELP plutos_schema_reloads_total reloads of SCHEMAS_DIR by result (a failed one keeps the set in service)\n\
         # TYPE plutos_schema_reloads_total counter\n\
         plutos_schema_reloads_total{{result=\"ok\"}} {}\nplutos_schema_reloads_total{{result=\"failed\"}} {}\n\
         # HELP plutos_validations_total self-describing events validated, by schema and result (an unknown schema \
         is one label whatever its URI)\n\
         # TYPE plutos_validations_total counter\n\
         plutos_validations_total{{schema=\"unknown\",result=\"unknown\"}} {}",
        registry.len(),
        schemas.reloads(),
        schemas.reload_failures(),
        workers.iter().map(|w| w.validations_unknown.load(Relaxed)).sum::<u64>(),
    );
    for (index, key) in registry.keys().iter().enumerate() {
        let (valid, invalid) = registry.counts(index);
        if valid + invalid > 0 {
            let _ = writeln!(
                out,
                "plutos_validations_total{{schema=\"{key}\",result=\"valid\"}} {valid}\n\
                 plutos_validations_total{{schema=\"{key}\",result=\"invalid\"}} {invalid}"
            );
        }
    }
}
