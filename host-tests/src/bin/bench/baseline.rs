//! The before-and-after table: this build of the component against another (`--baseline`),
//! the `log` layout on both, every operation timed in the same interleaved run.

use std::fmt::Write as _;

use crate::report::Report;
use crate::tables::{ms, ratio};

/// The system name the baseline build runs under.
pub const BEFORE: &str = "log, before";

const OPS: [(&str, &str); 6] = [
    ("turn", "turn: `get-items()` + `add-items`"),
    ("turn20", "turn: `get-items(20)` + `add-items`"),
    ("add", "`add-items` (2 items)"),
    ("get20", "`get-items(limit=20)`"),
    ("getall", "`get-items()`"),
    ("pop", "`pop-item`"),
];

impl Report {
    /// "Before and after", when the run had a baseline.
    pub fn baseline_table(&self, m: &mut String) {
        let Some(b) = &self.baseline else { return };
        let _ = writeln!(m, "### Before and after\n");
        let _ = writeln!(
            m,
            "This build ({} bytes, compiled in {:.0} ms) against `{}` ({} bytes, compiled in \
             {:.0} ms), both with the `log` layout in long-lived instances on the same pool, \
             their blocks interleaved with every other system's in the same run. Medians in ms; \
             each cell is after / before (after ÷ before; below 1.0× is faster).\n",
            self.costs.wasm_bytes,
            self.costs.compile.as_secs_f64() * 1000.0,
            b.path,
            b.wasm_bytes,
            b.compile.as_secs_f64() * 1000.0,
        );
        let header: Vec<&str> = OPS.iter().map(|(_, t)| *t).collect();
        let _ = writeln!(m, "| items | {} |", header.join(" | "));
        let _ = writeln!(m, "|---:|{}", "---:|".repeat(OPS.len()));
        for &length in &self.lengths {
            let cells: Vec<String> = OPS
                .iter()
                .map(|(op, _)| {
                    let after = self.median(length, "log", op);
                    let before = self.median(length, BEFORE, op);
                    match (after, before) {
                        (Some(a), Some(b)) => {
                            format!("{} / {} ({})", ms(a), ms(b), ratio(Some(a), Some(b)))
                        }
                        _ => "-".into(),
                    }
                })
                .collect();
            let _ = writeln!(m, "| {length} | {} |", cells.join(" | "));
        }
        let _ = writeln!(m);
    }
}
