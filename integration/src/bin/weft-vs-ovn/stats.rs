//! Summaries of repeated measurements and the markdown table they are printed in: kept
//! apart from the lab code so that the arithmetic and the layout can be unit-tested
//! without root or Open vSwitch.

/// The samples of one row for one control plane.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Samples(pub Vec<f64>);

impl Samples {
    pub fn push(&mut self, v: f64) {
        self.0.push(v);
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    /// The median (mean of the two middle values for an even count); `None` when empty.
    pub fn median(&self) -> Option<f64> {
        let v = self.sorted();
        let n = v.len();
        match n {
            0 => None,
            _ if n % 2 == 1 => Some(v[n / 2]),
            _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
        }
    }

    /// The 95th percentile, nearest rank (the smallest sample with at least 95 % of the
    /// samples at or below it): with 10 samples, the largest.
    pub fn p95(&self) -> Option<f64> {
        let v = self.sorted();
        if v.is_empty() {
            return None;
        }
        let rank = (0.95 * v.len() as f64).ceil() as usize;
        Some(v[rank.clamp(1, v.len()) - 1])
    }
}

/// How a row's cells are summarised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Summary {
    /// Median and p95 (the single-port rows).
    MedianP95,
    /// Median only (batch and restart rows, one-off readings).
    Median,
}

/// One table row: a label and each plane's samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub label: String,
    pub summary: Summary,
    pub weft: Samples,
    pub ovn: Samples,
}

impl Row {
    pub fn new(label: &str, summary: Summary) -> Self {
        Row {
            label: label.to_string(),
            summary,
            weft: Samples::default(),
            ovn: Samples::default(),
        }
    }

    fn cell(&self, s: &Samples) -> String {
        match (self.summary, s.median(), s.p95()) {
            (_, None, _) => "n/a".to_string(),
            (Summary::Median, Some(m), _) => num(m),
            (Summary::MedianP95, Some(m), Some(p)) => format!("{} (p95 {})", num(m), num(p)),
            (Summary::MedianP95, Some(m), None) => num(m),
        }
    }

    /// Weft's median over OVN's; "n/a" when either is missing, "∞"/"1.00" around zero.
    fn ratio(&self) -> String {
        match (self.weft.median(), self.ovn.median()) {
            (Some(w), Some(o)) if o == 0.0 && w == 0.0 => "1.00".to_string(),
            (Some(_), Some(0.0)) => "∞".to_string(),
            (Some(w), Some(o)) => format!("{:.2}", w / o),
            _ => "n/a".to_string(),
        }
    }
}

/// A number as a table shows it: integers without decimals, others with one.
fn num(v: f64) -> String {
    // Sums of 10 ms ticks come out as 1360.0000000000002.
    if (v - v.round()).abs() < 1e-6 && v.abs() < 1e15 {
        format!("{:.0}", v.round())
    } else {
        format!("{v:.1}")
    }
}

/// The markdown table: `row | Weft | OVN | ratio (Weft/OVN)`.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from("| row | Weft | OVN | ratio (Weft/OVN) |\n|---|---|---|---|\n");
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            r.label,
            r.cell(&r.weft),
            r.cell(&r.ovn),
            r.ratio()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(Samples(vec![3.0, 1.0, 2.0]).median(), Some(2.0));
        assert_eq!(Samples(vec![4.0, 1.0, 2.0, 3.0]).median(), Some(2.5));
        assert_eq!(Samples(vec![]).median(), None);
    }

    #[test]
    fn p95_is_nearest_rank() {
        let ten = Samples((1..=10).map(f64::from).collect());
        assert_eq!(ten.p95(), Some(10.0));
        let hundred = Samples((1..=100).map(f64::from).collect());
        assert_eq!(hundred.p95(), Some(95.0));
        assert_eq!(Samples(vec![7.0]).p95(), Some(7.0));
    }

    #[test]
    fn table_has_cells_and_ratio() {
        let mut a = Row::new("plug → installed, ms", Summary::MedianP95);
        a.weft = Samples(vec![10.0, 12.0, 11.0]);
        a.ovn = Samples(vec![20.0, 22.0, 24.0]);
        let mut b = Row::new("pings lost", Summary::Median);
        b.weft = Samples(vec![0.0]);
        b.ovn = Samples(vec![2.0]);
        let mut c = Row::new("empty", Summary::Median);
        c.weft = Samples(vec![1.5]);
        let t = markdown(&[a, b, c]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "| row | Weft | OVN | ratio (Weft/OVN) |");
        assert_eq!(
            lines[2],
            "| plug → installed, ms | 11 (p95 12) | 22 (p95 24) | 0.50 |"
        );
        assert_eq!(lines[3], "| pings lost | 0 | 2 | 0.00 |");
        assert_eq!(lines[4], "| empty | 1.5 | n/a | n/a |");
        assert_eq!(num(1360.0000000000002), "1360");
    }
}
