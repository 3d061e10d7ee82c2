//! The families of one rendering, written as Prometheus text by [`Families::text`].
//!
//! Why not the `prometheus` crate's registry (the brokers use it, for live instruments):
//! this text is a dump of a snapshot, built once per cycle and thrown away, and the
//! registry's per-series children (label vectors, hash maps, then the protobuf families
//! `gather` copies them into) cost about 15 times the text: rendering 100,000 partitions
//! and 1,000 groups took 1.3 s and peaked at 360 MB for 23 MB of text. Writing each
//! series' line straight into its family's buffer keeps the exposition format (HELP, TYPE,
//! labels sorted by name and escaped, families sorted by name, empty families left out)
//! at the cost of the text alone.

use std::fmt::Write as _;

/// The metric families of one rendering.
#[derive(Default)]
pub(super) struct Families {
    all: std::cell::RefCell<Vec<Family>>,
}

/// One metric family: its header and the lines of its series.
#[derive(Clone)]
pub(super) struct Family(std::rc::Rc<std::cell::RefCell<FamilyText>>);

struct FamilyText {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    /// Label names sorted, and for each the index of its value in `set`'s argument.
    labels: Vec<(&'static str, usize)>,
    lines: String,
}

/// A sample value as the text format spells it.
pub(super) trait SampleValue {
    fn write(&self, out: &mut String);
}

impl SampleValue for i64 {
    fn write(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl SampleValue for u64 {
    fn write(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl SampleValue for f64 {
    fn write(&self, out: &mut String) {
        if self.is_nan() {
            out.push_str("NaN");
        } else if self.is_infinite() {
            out.push_str(if *self > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(out, "{self}");
        }
    }
}

impl Families {
    pub(super) fn family(
        &self,
        name: &'static str,
        help: &'static str,
        kind: &'static str,
        labels: &[&'static str],
    ) -> Family {
        let mut sorted: Vec<(&'static str, usize)> =
            labels.iter().enumerate().map(|(i, l)| (*l, i)).collect();
        sorted.sort();
        let f = Family(std::rc::Rc::new(std::cell::RefCell::new(FamilyText {
            name,
            help,
            kind,
            labels: sorted,
            lines: String::new(),
        })));
        self.all.borrow_mut().push(f.clone());
        f
    }

    /// The exposition text of every family with a series, sorted by name.
    pub(super) fn text(&self) -> String {
        let all = self.all.borrow();
        let mut fams: Vec<_> = all.iter().map(|f| f.0.borrow()).collect();
        fams.sort_by_key(|f| f.name);
        let mut out = String::with_capacity(fams.iter().map(|f| f.lines.len() + 160).sum());
        for f in fams.iter().filter(|f| !f.lines.is_empty()) {
            let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(f.help));
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
            out.push_str(&f.lines);
        }
        out
    }
}

impl Family {
    /// Writes one series: `values` in the order the labels were declared.
    pub(super) fn set(&self, values: &[&str], v: impl SampleValue) {
        let mut f = self.0.borrow_mut();
        debug_assert_eq!(values.len(), f.labels.len(), "{}", f.name);
        let FamilyText {
            name,
            labels,
            lines,
            ..
        } = &mut *f;
        lines.push_str(name);
        if !labels.is_empty() {
            lines.push('{');
            for (k, (label, i)) in labels.iter().enumerate() {
                if k > 0 {
                    lines.push(',');
                }
                lines.push_str(label);
                lines.push_str("=\"");
                escape_label(values.get(*i).copied().unwrap_or(""), lines);
                lines.push('"');
            }
            lines.push('}');
        }
        lines.push(' ');
        v.write(lines);
        lines.push('\n');
    }
}

fn escape_label(v: &str, out: &mut String) {
    for ch in v.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(h: &str) -> String {
    h.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A gauge family; integer or float is the value's type, not the family's.
pub(super) fn gauge(
    r: &Families,
    name: &'static str,
    help: &'static str,
    labels: &[&'static str],
) -> Family {
    r.family(name, help, "gauge", labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_prometheus_exposition_format() {
        let r = Families::default();
        let b = r.family("b_total", "B\\ with\na newline", "counter", &["z", "a"]);
        let a = gauge(&r, "a_seconds", "A", &["x"]);
        let empty = gauge(&r, "c_empty", "never set", &[]);
        b.set(&["q\"uote", "back\\slash\nnl"], 3_u64);
        a.set(&["1"], f64::INFINITY);
        a.set(&["2"], 0.25);
        a.set(&["3"], f64::NAN);
        drop(empty);
        assert_eq!(
            r.text(),
            "# HELP a_seconds A\n# TYPE a_seconds gauge\n\
             a_seconds{x=\"1\"} +Inf\na_seconds{x=\"2\"} 0.25\na_seconds{x=\"3\"} NaN\n\
             # HELP b_total B\\\\ with\\na newline\n# TYPE b_total counter\n\
             b_total{a=\"back\\\\slash\\nnl\",z=\"q\\\"uote\"} 3\n"
        );
    }
}
