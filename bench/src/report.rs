//! Results: one JSON line each as they come, and a table at the end.

use serde::Serialize;

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// The part of the suite: `registry`, `scale`, `chat`, `core`.
    pub part: &'static str,
    /// What was measured, e.g. `keepalive replies/s`.
    pub name: String,
    /// The figure.
    pub value: f64,
    /// Its unit, e.g. `replies/s`, `us`, `B/user`.
    pub unit: &'static str,
    /// The reference it is compared with in the same run, if any: its name,
    /// its figure, and `value / reference` (or the target's ratio).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<Reference>,
}

impl Record {
    /// A figure without a reference.
    pub fn new(
        part: &'static str,
        name: impl Into<String>,
        value: f64,
        unit: &'static str,
    ) -> Self {
        Self { part, name: name.into(), value, unit, reference: None }
    }

    /// The same figure compared with `value` of `name`, measured in the same
    /// run (no ratio when the reference is zero).
    pub fn vs(mut self, name: impl Into<String>, value: f64) -> Self {
        let ratio = if value != 0.0 { self.value / value } else { f64::NAN };
        self.reference = Some(Reference { name: name.into(), value, ratio });
        self
    }
}

/// The figure a [`Record`] is compared with.
#[derive(Debug, Clone, Serialize)]
pub struct Reference {
    /// What the reference is, e.g. `plain echo`.
    pub name: String,
    /// Its figure, in the record's unit.
    pub value: f64,
    /// `record / reference` (`null` in JSON when the reference is zero).
    pub ratio: f64,
}

/// Collects records, printing each as a JSON line when added.
#[derive(Debug, Default)]
pub struct Report {
    records: Vec<Record>,
}

impl Report {
    /// Prints `record` as a JSON line and keeps it for the table.
    pub fn add(&mut self, record: Record) {
        match serde_json::to_string(&record) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("cannot print a record as JSON: {e}"),
        }
        self.records.push(record);
    }

    /// Prints every record as a table.
    pub fn print_table(&self) {
        println!();
        println!(
            "{:<9} {:<58} {:>12} {:<10} {:<30} {:>12} {:>7}",
            "part", "measure", "value", "unit", "reference", "ref value", "ratio"
        );
        for r in &self.records {
            let (rname, rvalue, ratio) = match &r.reference {
                Some(x) => (x.name.as_str(), format!("{:.1}", x.value), format!("{:.2}", x.ratio)),
                None => ("", String::new(), String::new()),
            };
            println!(
                "{:<9} {:<58} {:>12.1} {:<10} {:<30} {:>12} {:>7}",
                r.part, r.name, r.value, r.unit, rname, rvalue, ratio
            );
        }
    }
}
