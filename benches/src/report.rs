//! Output: one [`Row`] per comparison, as a CSV line (`scenario,ours_us,reference_name,
//! reference_us,ratio`) or as a line of the human table.

use std::fmt::Write as _;
use std::time::Duration;

/// The CSV header, for documentation; the binary prints rows only.
pub const CSV_HEADER: &str = "scenario,ours_us,reference_name,reference_us,ratio";

/// One comparison: our median against one reference's median, measured in the same run.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The scenario id, e.g. `thread.roundtrip`.
    pub scenario: String,
    /// Our median for one operation, or why there is none.
    pub ours: Result<Duration, String>,
    /// The reference's name, e.g. `rayon-spawn`.
    pub reference: String,
    /// The reference's median for one operation, or why there is none.
    pub theirs: Result<Duration, String>,
    /// Bytes moved by one operation, when throughput is what the scenario is about.
    pub bytes: Option<u64>,
}

fn us(d: &Result<Duration, String>) -> String {
    match d {
        Ok(d) => format!("{:.3}", d.as_secs_f64() * 1e6),
        Err(_) => "NA".to_string(),
    }
}

impl Row {
    /// ours / theirs, when both were measured.
    pub fn ratio(&self) -> Option<f64> {
        match (&self.ours, &self.theirs) {
            (Ok(o), Ok(t)) if !t.is_zero() => Some(o.as_secs_f64() / t.as_secs_f64()),
            _ => None,
        }
    }

    /// Whether both sides were measured.
    pub fn is_complete(&self) -> bool {
        self.ratio().is_some()
    }

    /// The CSV line, without a newline: medians in microseconds and the ratio with three
    /// decimals; `NA` where a side is missing.
    pub fn csv(&self) -> String {
        let ratio = self
            .ratio()
            .map_or_else(|| "NA".to_string(), |r| format!("{r:.3}"));
        format!(
            "{},{},{},{},{}",
            self.scenario,
            us(&self.ours),
            self.reference,
            us(&self.theirs),
            ratio
        )
    }
}

fn human(d: &Result<Duration, String>, bytes: Option<u64>) -> String {
    match d {
        Ok(d) => {
            let secs = d.as_secs_f64();
            let time = if secs >= 0.1 {
                format!("{:.3} s", secs)
            } else if secs >= 1e-3 {
                format!("{:.3} ms", secs * 1e3)
            } else {
                format!("{:.2} µs", secs * 1e6)
            };
            match bytes {
                Some(b) if secs > 0.0 => format!("{time} ({:.2} GB/s)", b as f64 / secs / 1e9),
                _ => time,
            }
        }
        Err(e) => format!("failed: {e}"),
    }
}

/// The human table of `rows`, one line per row, with a header.
pub fn table(rows: &[Row]) -> String {
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.scenario.clone(),
                human(&r.ours, r.bytes),
                r.reference.clone(),
                human(&r.theirs, r.bytes),
                r.ratio()
                    .map_or_else(|| "-".to_string(), |x| format!("{x:.3}")),
            ]
        })
        .collect();
    let head = [
        "scenario",
        "ours",
        "reference",
        "reference time",
        "ours/ref",
    ];
    let mut width = head.map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        for (i, (c, w)) in cells.iter().zip(width).enumerate() {
            let pad = w - c.chars().count();
            if i == 1 || i == 3 || i == 4 {
                let _ = write!(out, "{}{c}  ", " ".repeat(pad));
            } else {
                let _ = write!(out, "{c}{}  ", " ".repeat(pad));
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    };
    line(&head.map(String::from));
    line(&width.map(|w| "-".repeat(w)));
    for row in &cells {
        line(row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ours: Result<Duration, String>) -> Row {
        Row {
            scenario: "thread.roundtrip".into(),
            ours,
            reference: "rayon-spawn".into(),
            theirs: Ok(Duration::from_nanos(4_000)),
            bytes: None,
        }
    }

    #[test]
    fn csv_has_five_fields_and_three_decimals() {
        let r = row(Ok(Duration::from_nanos(3_000)));
        assert_eq!(r.csv(), "thread.roundtrip,3.000,rayon-spawn,4.000,0.750");
        assert_eq!(r.csv().split(',').count(), CSV_HEADER.split(',').count());
    }

    #[test]
    fn missing_side_is_na_and_has_no_ratio() {
        let r = row(Err("not built".into()));
        assert_eq!(r.csv(), "thread.roundtrip,NA,rayon-spawn,4.000,NA");
        assert!(!r.is_complete());
        assert!(table(&[r]).contains("failed: not built"));
    }
}
