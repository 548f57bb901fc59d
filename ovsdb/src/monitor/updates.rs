//! A table-updates object as received: the JSON text of a monitor reply or of an
//! `update`/`update2` notification, kept as text until the replica decodes it with the
//! schema's column types (see `decode`).

use std::fmt;

use serde_json::Value;
use serde_json::value::RawValue;

/// The JSON text of a table-updates object (a monitor reply, or `update`/`update2`
/// params). [`crate::Replica::apply`] decodes it straight into rows.
#[derive(Clone)]
pub struct TableUpdates(Box<RawValue>);

impl TableUpdates {
    /// Wraps JSON text already known to be one valid JSON value.
    pub(crate) fn from_raw(raw: Box<RawValue>) -> TableUpdates {
        TableUpdates(raw)
    }

    /// Checks that `json` is one JSON value; its shape is checked when it is applied.
    pub fn from_json_text(json: String) -> Result<TableUpdates, serde_json::Error> {
        RawValue::from_string(json).map(TableUpdates)
    }

    pub fn from_value(v: &Value) -> TableUpdates {
        // Serialising a `Value` cannot fail (its map keys are strings); were it to, `null`
        // is rejected when applied as not a table-updates object.
        TableUpdates(serde_json::value::to_raw_value(v).unwrap_or_default())
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// Parses the text as a `Value` (for tools and tests; the replica does not need it).
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }
}

impl fmt::Debug for TableUpdates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TableUpdates({})", self.0.get())
    }
}

impl PartialEq for TableUpdates {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

/// What [`crate::Replica::apply`] and [`crate::Replica::reset`] accept: [`TableUpdates`]
/// text (what the client delivers) or a parsed `Value` (tools and tests).
#[derive(Debug, Clone, Copy)]
pub enum UpdatesRef<'a> {
    Value(&'a Value),
    Text(&'a TableUpdates),
}

impl<'a> From<&'a Value> for UpdatesRef<'a> {
    fn from(v: &'a Value) -> Self {
        UpdatesRef::Value(v)
    }
}

impl<'a> From<&'a TableUpdates> for UpdatesRef<'a> {
    fn from(t: &'a TableUpdates) -> Self {
        UpdatesRef::Text(t)
    }
}
