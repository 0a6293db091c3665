//! The `go_*` functions translated Go templates call where Go's semantics differ from Jinja's:
//! text/template's builtins (field access, `index`, `slice`, `len`, comparisons, printing) and
//! the confd functions whose Go results have other types than the Jinja ones (JSON numbers are
//! float64). Errors read like Go's.

use std::collections::BTreeMap;

use minijinja::value::{Rest, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Value};

use super::fmt::{self, is_no_value, no_value, type_name};
use crate::render::funcs::KvPair;

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

pub fn register(env: &mut Environment<'static>) {
    env.add_global("go_nil", no_value());
    env.add_global("go_root", no_value());
    env.add_filter("go_fmt", |v: Value| fmt::print_action(&v));
    env.add_function("go_fail", |msg: String| -> Result<Value, Error> {
        Err(err(msg))
    });
    env.add_function("go_field", field);
    env.add_function("go_range", |v: Value| -> Result<Vec<Value>, Error> {
        Ok(pairs(&v, "range")?.into_iter().map(|(_, v)| v).collect())
    });
    env.add_function("go_pairs", |v: Value| -> Result<Vec<Value>, Error> {
        Ok(pairs(&v, "range")?
            .into_iter()
            .map(|(k, v)| Value::from(vec![k, v]))
            .collect())
    });
    env.add_function("go_len", len);
    env.add_function("go_index", index);
    env.add_function("go_slice", slice);
    env.add_function("go_print", |args: Rest<Value>| fmt::sprint(&args));
    env.add_function("go_println", |args: Rest<Value>| fmt::sprintln(&args));
    env.add_function("go_printf", |format: String, args: Rest<Value>| {
        fmt::sprintf(&format, &args)
    });
    env.add_function("go_html", |args: Rest<Value>| {
        fmt::html_escape(&eval_args(&args))
    });
    env.add_function("go_js", |args: Rest<Value>| {
        fmt::js_escape(&eval_args(&args))
    });
    env.add_function("go_urlquery", |args: Rest<Value>| {
        fmt::query_escape(&eval_args(&args))
    });
    env.add_function("go_and", |args: Rest<Value>| logic(&args, "and", false));
    env.add_function("go_or", |args: Rest<Value>| logic(&args, "or", true));
    env.add_function("go_not", |args: Rest<Value>| -> Result<bool, Error> {
        match args.as_slice() {
            [v] => Ok(!v.is_true()),
            _ => Err(arity("not", 1, args.len())),
        }
    });
    env.add_function("go_eq", |args: Rest<Value>| eq_any(&args));
    env.add_function("go_ne", |args: Rest<Value>| -> Result<bool, Error> {
        match args.as_slice() {
            [a, b] => Ok(!eq(a, b)?),
            _ => Err(arity("ne", 2, args.len())),
        }
    });
    for (name, want) in [
        ("go_lt", [std::cmp::Ordering::Less].as_slice()),
        (
            "go_le",
            &[std::cmp::Ordering::Less, std::cmp::Ordering::Equal],
        ),
        ("go_gt", &[std::cmp::Ordering::Greater]),
        (
            "go_ge",
            &[std::cmp::Ordering::Greater, std::cmp::Ordering::Equal],
        ),
    ] {
        env.add_function(name, move |args: Rest<Value>| -> Result<bool, Error> {
            match args.as_slice() {
                [a, b] => Ok(want.contains(&order(a, b)?)),
                _ => Err(arity(&name[3..], 2, args.len())),
            }
        });
    }
    env.add_function("go_json", |s: String| json(&s, false));
    env.add_function("go_json_array", |s: String| json(&s, true));
    env.add_function("go_map", map);
    env.add_function("go_reverse", |v: Value| reverse(v));
    env.add_function("go_call", |_: Rest<Value>| -> Result<Value, Error> {
        Err(err("call: confd templates have no function values to call"))
    });
}

fn arity(name: &str, want: usize, got: usize) -> Error {
    err(format!(
        "wrong number of args for {name}: want {want} got {got}"
    ))
}

/// The one string text/template's html/js/urlquery escape: a lone string as it is, else Sprint
/// with each nil or missing argument as the string "<no value>" (Go's evalArgs).
fn eval_args(args: &[Value]) -> String {
    match args {
        [v] if v.kind() == ValueKind::String => v.as_str().unwrap_or_default().to_owned(),
        _ => {
            let args: Vec<Value> = args
                .iter()
                .map(|v| {
                    if is_no_value(v) || v.is_none() {
                        Value::from("<no value>")
                    } else {
                        v.clone()
                    }
                })
                .collect();
            fmt::sprint(&args)
        }
    }
}

fn logic(args: &[Value], name: &str, stop_on: bool) -> Result<Value, Error> {
    let Some(last) = args.last() else {
        return Err(err(format!(
            "wrong number of args for {name}: want at least 1 got 0"
        )));
    };
    Ok(args
        .iter()
        .find(|v| v.is_true() == stop_on)
        .unwrap_or(last)
        .clone())
}

/// `.a.b.c` with Go's rules: a missing key gives no value (and so does every field after it),
/// a field of nil or of a non-map is an error.
fn field(v: Value, names: Rest<String>) -> Result<Value, Error> {
    let mut cur = v;
    for name in names.iter() {
        if is_no_value(&cur) {
            return Ok(no_value());
        }
        if let Some(kv) = cur.downcast_object_ref::<KvPair>() {
            cur = match name.as_str() {
                "Key" => Value::from(kv.key.as_str()),
                "Value" => Value::from(kv.value.as_str()),
                _ => {
                    return Err(err(format!(
                        "can't evaluate field {name} in type memkv.KVPair"
                    )))
                }
            };
            continue;
        }
        cur = match cur.kind() {
            ValueKind::Map => lookup(&cur, &Value::from(name.as_str())),
            ValueKind::None => {
                return Err(err(format!("nil pointer evaluating interface {{}}.{name}")))
            }
            _ => {
                return Err(err(format!(
                    "can't evaluate field {name} in type {}",
                    type_name(&cur)
                )))
            }
        };
    }
    Ok(cur)
}

/// A map's entry; a missing key is Go's zero value of interface{}: no value.
fn lookup(map: &Value, key: &Value) -> Value {
    match map.get_item(key) {
        Ok(v) if !v.is_undefined() => v,
        _ => no_value(),
    }
}

/// What `range` visits: (index, element) of a list, (key, value) of a map in key order.
fn pairs(v: &Value, what: &str) -> Result<Vec<(Value, Value)>, Error> {
    if is_no_value(v) || v.is_none() {
        return Ok(Vec::new());
    }
    match v.kind() {
        ValueKind::Seq | ValueKind::Iterable => Ok(v
            .try_iter()?
            .enumerate()
            .map(|(i, x)| (Value::from(i), x))
            .collect()),
        ValueKind::Map => {
            let mut out: Vec<(Value, Value)> = v
                .try_iter()?
                .map(|k| {
                    let x = v.get_item(&k).unwrap_or_default();
                    (k, x)
                })
                .collect();
            out.sort_by_key(|a| a.0.to_string());
            Ok(out)
        }
        _ => Err(err(format!(
            "{what} can't iterate over {}",
            fmt::sprint(std::slice::from_ref(v))
        ))),
    }
}

fn len(v: Value) -> Result<usize, Error> {
    if let Some(s) = v.as_str() {
        return Ok(s.len());
    }
    match v.kind() {
        ValueKind::Seq | ValueKind::Map if v.downcast_object_ref::<KvPair>().is_none() => {
            v.len().ok_or_else(|| err("len of value without length"))
        }
        _ if is_no_value(&v) || v.is_none() => Err(err("len of nil pointer")),
        _ => Err(err(format!("len of type {}", type_name(&v)))),
    }
}

fn int_arg(v: &Value, what: &str) -> Result<i64, Error> {
    match v.as_i64() {
        Some(i) if v.is_integer() => Ok(i),
        _ => Err(err(format!(
            "cannot {what} with non-integer {}",
            type_name(v)
        ))),
    }
}

fn index(v: Value, idx: Rest<Value>) -> Result<Value, Error> {
    let mut cur = v;
    for i in idx.iter() {
        if is_no_value(&cur) || cur.is_none() {
            return Err(err("index of untyped nil"));
        }
        cur = match cur.kind() {
            ValueKind::String => {
                let s = cur.as_str().unwrap_or_default();
                let n = int_arg(i, "index")?;
                let b = usize::try_from(n)
                    .ok()
                    .and_then(|n| s.as_bytes().get(n))
                    .ok_or_else(|| err(format!("index out of range: {n}")))?;
                Value::from(*b)
            }
            ValueKind::Seq => {
                let n = int_arg(i, "index")?;
                let len = cur.len().unwrap_or(0);
                match usize::try_from(n).ok().filter(|n| *n < len) {
                    Some(n) => cur.get_item(&Value::from(n))?,
                    None => return Err(err(format!("index out of range: {n}"))),
                }
            }
            ValueKind::Map => lookup(&cur, i),
            _ => return Err(err(format!("can't index item of type {}", type_name(&cur)))),
        };
    }
    Ok(cur)
}

fn slice(v: Value, idx: Rest<Value>) -> Result<Value, Error> {
    let len = match v.kind() {
        ValueKind::String => v.as_str().map_or(0, str::len),
        ValueKind::Seq => v.len().unwrap_or(0),
        _ => return Err(err(format!("can't slice item of type {}", type_name(&v)))),
    };
    if idx.len() > 3 || (idx.len() == 3 && v.kind() == ValueKind::String) {
        return Err(err(format!("too many slice indexes: {}", idx.len())));
    }
    let mut bounds = [0usize, len, len];
    for (slot, i) in bounds.iter_mut().zip(idx.iter()) {
        let n = int_arg(i, "slice")?;
        *slot = usize::try_from(n)
            .ok()
            .filter(|n| *n <= len)
            .ok_or_else(|| err(format!("index out of range: {n}")))?;
    }
    let (from, to) = (bounds[0], if idx.len() >= 2 { bounds[1] } else { len });
    if from > to {
        return Err(err(format!("invalid slice index: {from} > {to}")));
    }
    if let Some(s) = v.as_str() {
        let bytes = &s.as_bytes()[from..to];
        return Ok(Value::from(String::from_utf8_lossy(bytes).into_owned()));
    }
    Ok(Value::from(
        v.try_iter()?.skip(from).take(to - from).collect::<Vec<_>>(),
    ))
}

/// Go's basic kinds, as far as templates meet them.
#[derive(PartialEq, Clone, Copy, Debug)]
enum Kind {
    Bool,
    Int,
    Float,
    Str,
    Nil,
    Other,
}

fn kind(v: &Value) -> Kind {
    if is_no_value(v) || v.is_none() {
        return Kind::Nil;
    }
    match v.kind() {
        ValueKind::Bool => Kind::Bool,
        ValueKind::Number if v.is_integer() => Kind::Int,
        ValueKind::Number => Kind::Float,
        ValueKind::String => Kind::Str,
        _ => Kind::Other,
    }
}

fn comparable(v: &Value) -> bool {
    !matches!(v.kind(), ValueKind::Seq | ValueKind::Map)
        || v.downcast_object_ref::<KvPair>().is_some()
}

fn eq_any(args: &[Value]) -> Result<bool, Error> {
    let Some((first, rest)) = args.split_first() else {
        return Err(err("wrong number of args for eq: want at least 1 got 0"));
    };
    if rest.is_empty() {
        return Err(err("missing argument for comparison"));
    }
    for b in rest {
        if eq(first, b)? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn eq(a: &Value, b: &Value) -> Result<bool, Error> {
    if kind(a) != Kind::Nil && !comparable(a) || kind(b) != Kind::Nil && !comparable(b) {
        return Err(err("invalid type for comparison"));
    }
    let (ka, kb) = (kind(a), kind(b));
    if ka != kb {
        if ka == Kind::Nil || kb == Kind::Nil {
            return Ok(false);
        }
        return Err(err("incompatible types for comparison"));
    }
    Ok(match ka {
        Kind::Nil => true,
        Kind::Other => match (
            a.downcast_object_ref::<KvPair>(),
            b.downcast_object_ref::<KvPair>(),
        ) {
            (Some(x), Some(y)) => x.key == y.key && x.value == y.value,
            _ => a == b,
        },
        _ => a == b,
    })
}

fn order(a: &Value, b: &Value) -> Result<std::cmp::Ordering, Error> {
    let (ka, kb) = (kind(a), kind(b));
    if !matches!(ka, Kind::Int | Kind::Float | Kind::Str)
        || !matches!(kb, Kind::Int | Kind::Float | Kind::Str)
    {
        return Err(err("invalid type for comparison"));
    }
    if ka != kb {
        return Err(err("incompatible types for comparison"));
    }
    a.partial_cmp(b)
        .ok_or_else(|| err("invalid type for comparison"))
}

/// confd's json/jsonArray: Go's encoding/json into interface{}, so every number is a float64.
fn json(s: &str, array: bool) -> Result<Value, Error> {
    let name = if array { "jsonArray" } else { "json" };
    let v: serde_json::Value = serde_json::from_str(s).map_err(|e| err(format!("{name}: {e}")))?;
    match (&v, array) {
        (serde_json::Value::Array(_), true) | (serde_json::Value::Object(_), false) => {
            Ok(from_json(v))
        }
        _ => Err(err(format!(
            "{name}: cannot unmarshal {} into Go value of type {}",
            json_kind(&v),
            if array {
                "[]interface {}"
            } else {
                "map[string]interface {}"
            }
        ))),
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Null => "null",
    }
}

fn from_json(v: serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(b),
        serde_json::Value::Number(n) => Value::from(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Value::from(s),
        serde_json::Value::Array(a) => {
            Value::from(a.into_iter().map(from_json).collect::<Vec<_>>())
        }
        serde_json::Value::Object(o) => Value::from(
            o.into_iter()
                .map(|(k, v)| (k, from_json(v)))
                .collect::<BTreeMap<String, Value>>(),
        ),
    }
}

/// confd's `map`: string keys, values as given.
fn map(args: Rest<Value>) -> Result<Value, Error> {
    if args.len() % 2 != 0 {
        return Err(err("invalid dict call"));
    }
    let mut out = BTreeMap::new();
    for kv in args.chunks(2) {
        let key = kv[0]
            .as_str()
            .ok_or_else(|| err("dict keys must be strings"))?;
        out.insert(key.to_owned(), kv[1].clone());
    }
    Ok(Value::from(out))
}

/// confd's `reverse` reverses a []string or a []KVPair; anything else comes back as it was.
/// (A `gets` result is a KVPairs, which it leaves alone too: the translator sees those.)
fn reverse(v: Value) -> Value {
    let reversible = v.kind() == ValueKind::Seq
        && v.try_iter()
            .map(|mut it| {
                it.all(|x| {
                    x.kind() == ValueKind::String || x.downcast_object_ref::<KvPair>().is_some()
                })
            })
            .unwrap_or(false);
    if !reversible {
        return v;
    }
    let mut items: Vec<Value> = v.try_iter().map(Iterator::collect).unwrap_or_default();
    items.reverse();
    Value::from(items)
}
