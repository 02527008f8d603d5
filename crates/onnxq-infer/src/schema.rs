//! ONNX Runtime 1.31's operator schemas, for the input check: the table `schemas.txt` (written by
//! `scripts/gen_op_schemas.py` from ORT's own registry, with what ORT really enforces of each
//! schema tried on one-node models) parsed once into [`Schema`]s, looked up by domain, op type and
//! the model's opset for that domain the way ORT resolves a node.
//!
//! The table borrows from the `include_str!` text, so parsing allocates only the vectors. A table
//! that does not parse leaves every lookup empty: the check then refuses nothing, and the unit
//! tests here fail instead.

use std::collections::HashMap;
use std::sync::OnceLock;

const TABLE: &str = include_str!("schemas.txt");

/// How ORT treats a node of a schema at load (what the generator saw it do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enforced {
    /// Op resolution, input/output counts, attributes and input types are all checked.
    All,
    /// As `All`, but attributes the schema does not list are accepted.
    OpenAttributes,
    /// The op is refused as deprecated at this version.
    Deprecated,
    /// Nothing of the node is checked against the schema (Constant, ORT's experimental ops).
    Nothing,
}

/// The element types a slot or type variable allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Types {
    /// Tensor element types (ONNX `TensorProto` data type numbers).
    pub tensors: Vec<i32>,
    /// Whether sequence, optional, sparse or map types are allowed too. Inference facts do not
    /// say a value is a tensor rather than a sequence, so such slots are not type-checked.
    pub other: bool,
}

/// What an input or output slot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SlotType<'a> {
    /// A type variable, resolved through [`Schema::constraint`].
    Var(&'a str),
    /// A fixed type (`tensor(int64)` for Reshape's shape).
    Fixed(Types),
}

/// How many values a slot takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arity {
    /// Exactly one, never an empty name.
    Single,
    /// One, possibly an empty name (absent).
    Optional,
    /// The rest of the list; `same` when all share one type (the variable binds once).
    Variadic { same: bool },
}

/// One formal input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slot<'a> {
    pub ty: SlotType<'a>,
    pub arity: Arity,
}

/// An attribute the schema lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attr<'a> {
    pub name: &'a str,
    /// ONNX `AttributeProto.AttributeType` number.
    pub ty: i32,
    pub required: bool,
}

/// One version of one operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Schema<'a> {
    pub since: i64,
    pub enforced: Enforced,
    /// Input count bounds (`max` is `None` without a bound).
    pub inputs: (usize, Option<usize>),
    pub input_slots: Vec<Slot<'a>>,
    pub outputs: (usize, Option<usize>),
    pub output_slots: Vec<Slot<'a>>,
    pub constraints: Vec<(&'a str, Types)>,
    pub attributes: Vec<Attr<'a>>,
}

impl Schema<'_> {
    /// The types type variable `var` allows.
    pub(crate) fn constraint(&self, var: &str) -> Option<&Types> {
        self.constraints
            .iter()
            .find(|(v, _)| *v == var)
            .map(|(_, t)| t)
    }

    /// The formal input that node input `i` binds to (the last, variadic one for the rest).
    pub(crate) fn input_slot(&self, i: usize) -> Option<&Slot<'_>> {
        match self.input_slots.get(i) {
            Some(s) => Some(s),
            None => self
                .input_slots
                .last()
                .filter(|s| matches!(s.arity, Arity::Variadic { .. })),
        }
    }

    /// The attribute called `name`.
    pub(crate) fn attribute(&self, name: &str) -> Option<&Attr<'_>> {
        self.attributes.iter().find(|a| a.name == name)
    }
}

/// Every schema, by domain and op type, versions ascending.
type Table = HashMap<&'static str, HashMap<&'static str, Vec<Schema<'static>>>>;

fn table() -> Option<&'static Table> {
    static PARSED: OnceLock<Result<Table, String>> = OnceLock::new();
    PARSED.get_or_init(|| parse(TABLE)).as_ref().ok()
}

/// The table's domain name for a node's domain ("" and "ai.onnx" are one).
fn domain_key(domain: &str) -> &str {
    if domain.is_empty() { "ai.onnx" } else { domain }
}

/// Whether the table has schemas for `domain` (nodes of other domains are not checked).
pub(crate) fn covers(domain: &str) -> bool {
    let d = domain_key(domain);
    table().is_some_and(|t| t.contains_key(d))
}

/// Every version of `op` in `domain`, ascending (empty when ORT knows no such op).
pub(crate) fn versions(domain: &str, op: &str) -> &'static [Schema<'static>] {
    table()
        .and_then(|t| t.get(domain_key(domain))?.get(op))
        .map_or(&[], Vec::as_slice)
}

/// The schema ORT resolves `op` of `domain` to at the model's `opset` for that domain: the
/// newest version not newer than the opset.
pub(crate) fn lookup(domain: &str, op: &str, opset: i64) -> Option<&'static Schema<'static>> {
    versions(domain, op).iter().rev().find(|s| s.since <= opset)
}

/// Parses the whole table; an error names the line.
fn parse(text: &'static str) -> Result<Table, String> {
    let mut table = Table::new();
    let mut domain = None;
    for (no, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(d) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            domain = Some(d);
            continue;
        }
        let at = |e: String| format!("schemas.txt line {}: {e}", no + 1);
        let d = domain.ok_or_else(|| at("a schema before any [domain]".into()))?;
        let (op, schema) = parse_line(line).map_err(at)?;
        table
            .entry(d)
            .or_default()
            .entry(op)
            .or_default()
            .push(schema);
    }
    for versions in table.values_mut().flat_map(HashMap::values_mut) {
        versions.sort_by_key(|s| s.since);
    }
    Ok(table)
}

/// One schema line: `OP SINCE [flags] in ARITY SLOT... out ARITY SLOT... [VAR=TYPES]...
/// [ATTR:TYPE[!]]...` (the format is described in the table's header).
fn parse_line(line: &'static str) -> Result<(&'static str, Schema<'static>), String> {
    let mut words = line.split(' ').peekable();
    let op = words.next().ok_or("an empty line")?;
    let since = number(words.next().unwrap_or_default())?;
    let mut enforced = Enforced::All;
    while let Some(&w) = words.peek() {
        enforced = match w {
            "deprecated" => Enforced::Deprecated,
            "unverified" => Enforced::Nothing,
            "open" => Enforced::OpenAttributes,
            _ => break,
        };
        words.next();
    }
    if words.next() != Some("in") {
        return Err(format!("{op}: no `in`"));
    }
    let inputs = bounds(words.next().unwrap_or_default())?;
    let mut input_slots = Vec::new();
    for w in words.by_ref() {
        if w == "out" {
            break;
        }
        input_slots.push(slot(w)?);
    }
    let outputs = bounds(words.next().unwrap_or_default())?;
    let (mut output_slots, mut constraints, mut attributes) = (Vec::new(), Vec::new(), Vec::new());
    for w in words {
        if let Some((var, types)) = w.split_once('=') {
            constraints.push((var, parse_types(types)?));
        } else if let Some((name, ty)) = w.split_once(':') {
            let (ty, required) = ty.strip_suffix('!').map_or((ty, false), |t| (t, true));
            let ty = attr_type(ty).ok_or_else(|| format!("{op}: attribute type {ty}"))?;
            attributes.push(Attr { name, ty, required });
        } else {
            output_slots.push(slot(w)?);
        }
    }
    let schema = Schema {
        since,
        enforced,
        inputs,
        input_slots,
        outputs,
        output_slots,
        constraints,
        attributes,
    };
    Ok((op, schema))
}

fn number<T: std::str::FromStr>(w: &str) -> Result<T, String> {
    w.parse().map_err(|_| format!("`{w}` is not a number"))
}

/// `N`, `MIN..MAX` or `MIN..`.
fn bounds(w: &str) -> Result<(usize, Option<usize>), String> {
    match w.split_once("..") {
        None => number(w).map(|n| (n, Some(n))),
        Some((lo, "")) => Ok((number(lo)?, None)),
        Some((lo, hi)) => Ok((number(lo)?, Some(number(hi)?))),
    }
}

/// A slot: `T`, `T?`, `T*`, `T*~`, or a fixed type `[7]` with the same suffixes.
fn slot(w: &'static str) -> Result<Slot<'static>, String> {
    let (ty, arity) = if let Some(t) = w.strip_suffix("*~") {
        (t, Arity::Variadic { same: false })
    } else if let Some(t) = w.strip_suffix('*') {
        (t, Arity::Variadic { same: true })
    } else if let Some(t) = w.strip_suffix('?') {
        (t, Arity::Optional)
    } else {
        (w, Arity::Single)
    };
    let ty = match ty.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        Some(fixed) => SlotType::Fixed(parse_types(fixed)?),
        None => SlotType::Var(ty),
    };
    Ok(Slot { ty, arity })
}

/// `1-7,10,s1-15,m7_1`: tensor numbers and runs; anything with a letter is a non-tensor type.
fn parse_types(w: &str) -> Result<Types, String> {
    let mut types = Types::default();
    for code in w.split(',') {
        if code.starts_with(|c: char| c.is_ascii_alphabetic()) {
            types.other = true;
        } else if let Some((lo, hi)) = code.split_once('-') {
            types
                .tensors
                .extend(number::<i32>(lo)?..=number::<i32>(hi)?);
        } else {
            types.tensors.push(number(code)?);
        }
    }
    Ok(types)
}

/// The `AttributeProto.AttributeType` number of the table's attribute type name.
fn attr_type(name: &str) -> Option<i32> {
    ATTR_TYPES
        .iter()
        .position(|&n| n == name)
        .and_then(|i| i32::try_from(i + 1).ok())
}

/// Attribute type names in `AttributeProto.AttributeType` order (FLOAT = 1 .. TYPE_PROTOS = 14).
pub(crate) const ATTR_TYPES: [&str; 14] = [
    "float",
    "int",
    "string",
    "tensor",
    "graph",
    "floats",
    "ints",
    "strings",
    "tensors",
    "graphs",
    "sparse_tensor",
    "sparse_tensors",
    "type_proto",
    "type_protos",
];

/// The name of attribute type number `ty` (`"undefined"` for 0 and unknown numbers).
pub(crate) fn attr_type_name(ty: i32) -> &'static str {
    usize::try_from(ty - 1)
        .ok()
        .and_then(|i| ATTR_TYPES.get(i))
        .copied()
        .unwrap_or("undefined")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_parses_and_resolves_like_ort() {
        let t = parse(TABLE).unwrap_or_else(|e| panic!("{e}"));
        let ops: usize = t.values().map(HashMap::len).sum();
        let versions: usize = t.values().flat_map(HashMap::values).map(Vec::len).sum();
        assert!(
            ops > 350 && versions > 800,
            "{ops} ops, {versions} versions"
        );
        for d in ["", "ai.onnx", "ai.onnx.ml", "com.microsoft"] {
            assert!(covers(d), "{d}");
        }
        assert!(!covers("com.example"));
        // Add: versions 1, 6, 7, 13, 14; opset 17 resolves to 14.
        let add = lookup("", "Add", 17).unwrap_or_else(|| panic!("no Add"));
        assert_eq!(add.since, 14);
        assert_eq!(add.inputs, (2, Some(2)));
        assert_eq!(add.enforced, Enforced::All);
        let t = add.constraint("T").unwrap_or_else(|| panic!("no T"));
        assert!(t.tensors.contains(&1) && t.tensors.contains(&16) && !t.other);
        assert!(lookup("", "Gelu", 17).is_none());
        assert_eq!(lookup("", "Gelu", 20).map(|s| s.since), Some(20));
        let up = lookup("ai.onnx", "Upsample", 10).map(|s| s.enforced);
        assert_eq!(up, Some(Enforced::Deprecated));
        let clip = lookup("", "Clip", 13).unwrap_or_else(|| panic!("no Clip"));
        assert_eq!(clip.inputs, (1, Some(3)));
        assert_eq!(clip.input_slots[1].arity, Arity::Optional);
        let concat = lookup("", "Concat", 13).unwrap_or_else(|| panic!("no Concat"));
        assert_eq!(concat.inputs, (1, None));
        assert!(concat.input_slot(5).is_some());
        let cast = lookup("", "Cast", 19).unwrap_or_else(|| panic!("no Cast"));
        assert_eq!(
            cast.attribute("to").map(|a| (a.ty, a.required)),
            Some((2, true))
        );
        let reshape = lookup("", "Reshape", 14).unwrap_or_else(|| panic!("no Reshape"));
        assert_eq!(
            reshape.input_slots[1].ty,
            SlotType::Fixed(Types {
                tensors: vec![7],
                other: false
            })
        );
        let seq = lookup("", "SequenceAt", 11).unwrap_or_else(|| panic!("no SequenceAt"));
        assert!(
            seq.constraint("S")
                .is_some_and(|s| s.other && s.tensors.is_empty())
        );
        assert!(lookup("com.microsoft", "MatMulNBits", 1).is_some());
        assert_eq!(attr_type_name(7), "ints");
        assert_eq!(attr_type_name(0), "undefined");
    }
}
