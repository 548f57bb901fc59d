//! The Prometheus text exposition format (version 0.0.4), written by hand: a family's
//! `# HELP` and `# TYPE` lines once, then its samples, with label values escaped.

use std::fmt::Write;

use super::instrument::HistogramSnapshot;

/// The `Content-Type` of a scrape answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's kind, as `# TYPE` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// The text of one scrape, built family by family.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a family: its help line and type. Every sample of it must follow.
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
    }

    /// One sample line: `name{labels} value`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        write_labels(&mut self.out, labels);
        self.out.push(' ');
        push_value(&mut self.out, value);
        self.out.push('\n');
    }

    /// The `_bucket`, `_sum` and `_count` samples of one histogram of a family.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramSnapshot) {
        let bucket = format!("{name}_bucket");
        for (bound, count) in &h.buckets {
            let le = if bound.is_infinite() {
                "+Inf".to_string()
            } else {
                bound.to_string()
            };
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, *count as f64);
        }
        self.sample(&format!("{name}_sum"), labels, h.sum_seconds);
        self.sample(&format!("{name}_count"), labels, h.count as f64);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn write_labels(out: &mut String, labels: &[(&str, &str)]) {
    if labels.is_empty() {
        return;
    }
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

fn push_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_escapes() {
        let mut e = Exposition::new();
        e.family("weft_x_total", "Things.\nMore", Kind::Counter);
        e.sample("weft_x_total", &[("node", "a\"b\\c\nd")], 3.0);
        e.sample("weft_x_total", &[], 0.25);
        assert_eq!(
            e.finish(),
            "# HELP weft_x_total Things.\\nMore\n# TYPE weft_x_total counter\n\
             weft_x_total{node=\"a\\\"b\\\\c\\nd\"} 3\nweft_x_total 0.25\n"
        );
    }

    #[test]
    fn histogram_lines() {
        let mut e = Exposition::new();
        let h = HistogramSnapshot {
            buckets: vec![(0.5, 1), (f64::INFINITY, 2)],
            sum_seconds: 1.5,
            count: 2,
        };
        e.histogram("weft_h_seconds", &[("method", "m")], &h);
        assert_eq!(
            e.finish(),
            "weft_h_seconds_bucket{method=\"m\",le=\"0.5\"} 1\n\
             weft_h_seconds_bucket{method=\"m\",le=\"+Inf\"} 2\n\
             weft_h_seconds_sum{method=\"m\"} 1.5\n\
             weft_h_seconds_count{method=\"m\"} 2\n"
        );
    }
}
