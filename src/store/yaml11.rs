//! Key files read as confd's file backend reads them: YAML 1.1 (go-yaml v2), so a plain `yes`
//! is a boolean, `0755` is octal and `1e3` a float, while quoted scalars stay text. Values come
//! out as the strings confd would store: floats in Go's shortest decimal form (`1000`,
//! `150000000000000000000`, `+Inf`), integers beyond int64 dropped (null) as confd drops them.
//! A map key that is not a string (`80:`, `on:`) is an error naming its line; confd crashes there.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A YAML document as JSON values with confd's scalar rules.
pub fn parse(text: &str) -> Result<Value, String> {
    let mut b = Builder::default();
    Parser::new_from_str(text)
        .load(&mut b, false)
        .map_err(|e| e.to_string())?;
    if let Some(e) = b.error {
        return Err(e);
    }
    Ok(b.done.unwrap_or(Value::Null))
}

#[derive(Default)]
struct Builder {
    /// Open sequences and maps; a map holds its pending key.
    stack: Vec<Open>,
    anchors: HashMap<usize, Value>,
    done: Option<Value>,
    error: Option<String>,
}

enum Open {
    Seq(Vec<Value>, usize),
    Map(Map<String, Value>, Option<String>, usize),
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let plain =
                    style == TScalarStyle::Plain && tag.as_ref().is_none_or(|t| t.suffix != "str");
                let v = if plain {
                    resolve(&text)
                } else {
                    Value::String(text)
                };
                self.value(v, anchor, mark);
            }
            Event::Alias(id) => {
                let v = self.anchors.get(&id).cloned().unwrap_or(Value::Null);
                self.value(v, 0, mark);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Open::Seq(Vec::new(), anchor)),
            Event::MappingStart(anchor, _) => self.stack.push(Open::Map(Map::new(), None, anchor)),
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Open::Seq(items, anchor)) => self.value(Value::Array(items), anchor, mark),
                Some(Open::Map(map, _, anchor)) => self.value(Value::Object(map), anchor, mark),
                None => {}
            },
            _ => {}
        }
    }
}

impl Builder {
    fn value(&mut self, v: Value, anchor: usize, mark: Marker) {
        if anchor > 0 {
            self.anchors.insert(anchor, v.clone());
        }
        match self.stack.last_mut() {
            None => self.done = Some(v),
            Some(Open::Seq(items, _)) => items.push(v),
            Some(Open::Map(map, key, _)) => match key.take() {
                Some(k) => {
                    map.insert(k, v);
                }
                None => match v {
                    Value::String(k) => *key = Some(k),
                    other => {
                        self.error = Some(format!(
                            "line {}: map key {other} is not a string (quote it: \"{}\")",
                            mark.line(),
                            other.to_string().trim_matches('"')
                        ));
                    }
                },
            },
        }
    }
}

/// A plain scalar under go-yaml v2's YAML 1.1 rules.
fn resolve(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false)
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return float(f64::NAN),
        _ => {}
    }
    if !s.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '+' | '-' | '.')) {
        return Value::String(s.to_owned());
    }
    let plain = s.replace('_', "");
    if let Some(i) = parse_int(&plain) {
        return match i {
            Int::Fits(i) => Value::Number(Number::from(i)),
            // go-yaml gives a uint64, which confd's file backend has no case for.
            Int::TooBig => Value::Null,
        };
    }
    if is_yaml_float(&plain) {
        if let Ok(f) = plain.parse::<f64>() {
            return float(f);
        }
    }
    Value::String(s.to_owned())
}

enum Int {
    Fits(i64),
    TooBig,
}

/// Go's `strconv.ParseInt(s, 0, 64)`, then ParseUint: 0x, 0o, 0b and a leading 0 (octal).
fn parse_int(s: &str) -> Option<Int> {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(h) = lower.strip_prefix("0x") {
        (16, h)
    } else if let Some(o) = lower.strip_prefix("0o") {
        (8, o)
    } else if let Some(b) = lower.strip_prefix("0b") {
        (2, b)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u128::from_str_radix(body, radix).ok()?;
    let value = if neg {
        -i128::try_from(magnitude).ok()?
    } else {
        i128::try_from(magnitude).ok()?
    };
    match i64::try_from(value) {
        Ok(i) => Some(Int::Fits(i)),
        Err(_) if !neg && u64::try_from(value).is_ok() => Some(Int::TooBig),
        Err(_) => None,
    }
}

/// go-yaml v2's float pattern: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mant, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let mant_ok = match mant.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mant),
    };
    let exp_ok = exp.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mant_ok && exp_ok
}

fn float(f: f64) -> Value {
    Value::String(go_float(f))
}

/// A float as confd stores it: Go's `strconv.FormatFloat(f, 'f', -1, 64)`.
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        // Rust's Display is the shortest round-trip form without an exponent, as 'f', -1 is.
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Value {
        parse(&format!("k: {text}\n")).expect("parses")["k"].clone()
    }

    #[test]
    fn plain_scalars_resolve_as_yaml_1_1() {
        assert_eq!(one("yes"), Value::Bool(true));
        assert_eq!(one("n"), Value::Bool(false));
        assert_eq!(one("\"yes\""), Value::String("yes".into()));
        assert_eq!(one("0755"), Value::Number(493.into()));
        assert_eq!(one("0o17"), Value::Number(15.into()));
        assert_eq!(one("0x1F"), Value::Number(31.into()));
        assert_eq!(one("09"), Value::String("9".into()));
        assert_eq!(one("1_000"), Value::Number(1000.into()));
        assert_eq!(one("+7"), Value::Number(7.into()));
        assert_eq!(one("1e3"), Value::String("1000".into()));
        assert_eq!(one("1.5e20"), Value::String("150000000000000000000".into()));
        assert_eq!(one("-0.0"), Value::String("-0".into()));
        assert_eq!(one(".inf"), Value::String("+Inf".into()));
        assert_eq!(one("12345678901234567890"), Value::Null);
        assert_eq!(one("~"), Value::Null);
        assert_eq!(one("1.2.3"), Value::String("1.2.3".into()));
        assert_eq!(one("10.0.0.1:80"), Value::String("10.0.0.1:80".into()));
    }

    #[test]
    fn non_string_keys_are_refused_with_their_line() {
        let err = parse("ports:\n  80: http\n").unwrap_err();
        assert!(
            err.contains("line 2") && err.contains("not a string"),
            "{err}"
        );
        assert!(parse("s:\n  on: x\n").is_err());
        assert!(parse("p:\n  \"443\": https\n").is_ok());
    }

    #[test]
    fn anchors_and_aliases_are_followed() {
        let v = parse("a: &x {p: 1}\nb: *x\n").expect("parses");
        assert_eq!(v["b"]["p"], Value::Number(1.into()));
    }
}
