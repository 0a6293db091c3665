//! Go's `fmt` printing (as of Go 1.19) over minijinja values, for Go text/template compatibility,
//! plus the Go string helpers text/template and confd use (`html`, `js`, `urlquery`, `toUpper`,
//! `toLower`).
//!
//! The printer is a port of Go's `fmt/print.go` and `fmt/format.go` and of the parts of `strconv`
//! they use (`FormatFloat`, `Quote`, `IsPrint`), kept close to the original's structure so that it
//! can be checked against it line by line. Go values are represented as minijinja values thus
//! (Go type name, as `%T` and the error forms print it, in parentheses):
//!
//! - Go string (`string`): a minijinja string (or bytes).
//! - Go int (`int`): an integer number; above `i64::MAX` a `uint64`.
//! - Go float64 (`float64`): a number that is not an integer repr (`Value::from(3.0)` included).
//! - Go bool (`bool`): a bool.
//! - Go nil interface (`<nil>`): none, undefined, or a [`NoValue`].
//! - Go slice: a sequence: `[]string` when every element is a string (confd's `getvs`, `ls`,
//!   `split`), `[]memkv.KVPair` when every element is a `KvPair` (`gets`), else `[]interface {}`.
//! - Go map (`map[string]interface {}`): a map; printed with sorted keys.
//! - confd's `memkv.KVPair` struct: the `KvPair` object.
//!
//! Inside fmt a missing value is a nil interface: text/template hands functions a nil for a
//! missing map key or a JSON null, and only its own top-level printing says `<no value>`
//! ([`print_action`]).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt::Write as _;
use std::sync::Arc;

use minijinja::value::{Object, ObjectRepr, Value, ValueKind};

use super::super::funcs::KvPair;

const NIL_ANGLE: &str = "<nil>";
const NO_VALUE: &str = "<no value>";
const LDIGITS: &[u8; 17] = b"0123456789abcdefx";
const UDIGITS: &[u8; 17] = b"0123456789ABCDEFX";
const MAX_RUNE: u64 = 0x10_FFFF;
const REPLACEMENT: char = '\u{FFFD}';

/// Go's "no value": what text/template gets for a missing map key (an invalid `reflect.Value`).
/// It is false, renders as `<no value>`, and prints through fmt as a nil interface (`<nil>`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoValue;

impl Object for NoValue {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn is_true(self: &Arc<Self>) -> bool {
        false
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result
    where
        Self: Sized + 'static,
    {
        f.write_str(NO_VALUE)
    }
}

/// A fresh [`NoValue`].
pub fn no_value() -> Value {
    Value::from_object(NoValue)
}

/// Whether `v` is Go's "no value": a [`NoValue`] or minijinja's undefined.
pub fn is_no_value(v: &Value) -> bool {
    v.is_undefined() || v.downcast_object_ref::<NoValue>().is_some()
}

/// Whether fmt sees `v` as a nil interface.
fn is_nil(v: &Value) -> bool {
    v.is_none() || is_no_value(v)
}

/// Go's type name for `v`, as `%T` and the error forms (`%!d(string=x)`) print it.
pub fn type_name(v: &Value) -> String {
    match classify(v) {
        Go::Nil => NIL_ANGLE.to_owned(),
        Go::Bool(_) => "bool".to_owned(),
        Go::Int(n) if n > i128::from(i64::MAX) && n <= i128::from(u64::MAX) => "uint64".to_owned(),
        Go::Int(_) => "int".to_owned(),
        Go::Float(_) => "float64".to_owned(),
        Go::Str(_) => "string".to_owned(),
        Go::Kv(_) => "memkv.KVPair".to_owned(),
        Go::Slice(items) => format!("[]{}", elem_type(&items)),
        Go::Map(_) => "map[string]interface {}".to_owned(),
    }
}

/// What `{{x}}` prints in text/template: `<no value>` for a missing value or nil (text/template
/// turns a nil interface into an invalid value before printing), otherwise `%v`.
pub fn print_action(v: &Value) -> String {
    if is_nil(v) {
        return NO_VALUE.to_owned();
    }
    let mut p = Printer::default();
    p.print_arg(v, 'v');
    p.buf
}

/// Go's `fmt.Sprint`: `%v` of each operand, with a space between operands when neither is a
/// string.
pub fn sprint(args: &[Value]) -> String {
    let mut p = Printer::default();
    p.do_print(args);
    p.buf
}

/// Go's `fmt.Sprintln`: `%v` of each operand, space-separated, and a newline.
pub fn sprintln(args: &[Value]) -> String {
    let mut p = Printer::default();
    p.do_println(args);
    p.buf
}

/// Go's `fmt.Sprintf`, with Go's flags, width, precision, argument indexes and error forms.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut p = Printer::default();
    p.do_printf(format, args);
    p.buf
}

/// text/template's `HTMLEscapeString`.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => out.push(REPLACEMENT),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// text/template's `JSEscapeString` (Go 1.19: `\u00XX` for controls, `\uXXXX` with upper-case hex
/// for runes that are not printable).
pub fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u00{:02X}", u32::from(c));
            }
            // DEL and the rest of ASCII pass as they are.
            c if c.is_ascii() || is_print(c) => out.push(c),
            // Go's `\u%04X`: at least four digits, five or six above the BMP.
            c => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
        }
    }
    out
}

/// net/url's `QueryEscape`: unreserved bytes stay, space becomes `+`, the rest `%XX`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(UDIGITS[usize::from(b >> 4)]));
                out.push(char::from(UDIGITS[usize::from(b & 0xF)]));
            }
        }
    }
    out
}

/// Go's `strings.ToUpper`: `unicode.ToUpper` per rune, the simple one-to-one mapping of Go's
/// Unicode tables (ß stays ß, ǆ becomes Ǆ; Rust's `to_uppercase` would give SS and expand
/// ligatures).
pub fn to_upper(s: &str) -> String {
    s.chars().map(|c| go_case(c, true)).collect()
}

/// Go's `strings.ToLower`: `unicode.ToLower` per rune (Σ is always σ, İ becomes i; Rust's
/// `to_lowercase` would use final sigma and give i + U+0307).
pub fn to_lower(s: &str) -> String {
    s.chars().map(|c| go_case(c, false)).collect()
}

/// `unicode.ToUpper`/`unicode.ToLower` over Go's `CaseRanges`.
fn go_case(c: char, upper: bool) -> char {
    if c.is_ascii() {
        return if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        };
    }
    let r = u32::from(c);
    let found = CASE_RANGES.binary_search_by(|&(lo, hi, _, _)| {
        if hi < r {
            Ordering::Less
        } else if lo > r {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    });
    let Some(&(lo, _, up, down)) = found.ok().and_then(|i| CASE_RANGES.get(i)) else {
        return c;
    };
    let delta = if upper { up } else { down };
    let mapped = if delta == UPPER_LOWER {
        // An alternating run that starts with an upper-case letter: even offsets are upper case,
        // odd ones lower case (Go's `to`: `Lo + ((r-Lo)&^1 | _case&1)`, LowerCase being 1).
        lo + (((r - lo) & !1) | u32::from(!upper))
    } else {
        r.checked_add_signed(delta).unwrap_or(r)
    };
    char::from_u32(mapped).unwrap_or(c)
}

/// `strconv.IsPrint` (the same set as `unicode.IsPrint`).
fn is_print(c: char) -> bool {
    let r = u32::from(c);
    PRINT_RANGES
        .binary_search_by(|&(lo, hi)| {
            if hi < r {
                Ordering::Less
            } else if lo > r {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        })
        .is_ok()
}

/// A value as Go's fmt sees it.
enum Go<'a> {
    Nil,
    Bool(bool),
    /// An `int`; above `i64::MAX` it stands for a `uint64`.
    Int(i128),
    Float(f64),
    Str(Cow<'a, str>),
    Kv(&'a KvPair),
    Slice(Vec<Value>),
    /// Entries in the order Go's fmt prints them (sorted keys).
    Map(Vec<(Value, Value)>),
}

fn classify(v: &Value) -> Go<'_> {
    if is_nil(v) {
        return Go::Nil;
    }
    // Before the kinds: KvPair is a map-like object to minijinja but a struct to Go.
    if let Some(kv) = v.downcast_object_ref::<KvPair>() {
        return Go::Kv(kv);
    }
    match v.kind() {
        ValueKind::Bool => Go::Bool(v.is_true()),
        ValueKind::Number => match i128::try_from(v.clone()) {
            // `try_from` also accepts an integral float (3.0), which Go keeps a float64.
            Ok(n) if v.is_integer() => Go::Int(n),
            _ => Go::Float(f64::try_from(v.clone()).unwrap_or(f64::NAN)),
        },
        ValueKind::Seq | ValueKind::Iterable => Go::Slice(
            v.try_iter()
                .map(|items| items.collect())
                .unwrap_or_default(),
        ),
        ValueKind::Map => Go::Map(map_entries(v)),
        // Strings, bytes, and what has no Go counterpart (other plain objects, invalid values):
        // printed as the string minijinja would render.
        _ => Go::Str(string_of(v)),
    }
}

/// Whether Go's `Sprint` sees `v` as a string operand (same test as `classify` giving `Str`).
fn is_go_string(v: &Value) -> bool {
    match v.kind() {
        ValueKind::String | ValueKind::Bytes => true,
        ValueKind::Plain | ValueKind::Invalid => {
            !is_no_value(v) && v.downcast_object_ref::<KvPair>().is_none()
        }
        _ => false,
    }
}

fn string_of(v: &Value) -> Cow<'_, str> {
    if let Some(s) = v.as_str() {
        return Cow::Borrowed(s);
    }
    match v.as_bytes() {
        Some(b) => String::from_utf8_lossy(b),
        None => Cow::Owned(v.to_string()),
    }
}

/// The element type of a Go slice represented by `items`: confd's `getvs`/`ls`/`split` give
/// `[]string`, `gets` gives `[]memkv.KVPair`, anything else (`jsonArray`) is `[]interface {}`.
fn elem_type(items: &[Value]) -> &'static str {
    if !items.is_empty()
        && items
            .iter()
            .all(|v| v.downcast_object_ref::<KvPair>().is_some())
    {
        "memkv.KVPair"
    } else if items
        .iter()
        .all(|v| matches!(v.kind(), ValueKind::String | ValueKind::Bytes))
    {
        "string"
    } else if items.iter().all(|v| v.is_integer()) {
        // Only confd's `seq` makes a list of integers (JSON numbers are float64).
        "int"
    } else {
        "interface {}"
    }
}

/// A map's entries, keys sorted as Go's `internal/fmtsort` sorts them: strings bytewise, numbers
/// numerically (NaN first). Keys of different kinds (which a Go map of `string` keys cannot hold)
/// are ordered by kind, to stay deterministic.
fn map_entries(v: &Value) -> Vec<(Value, Value)> {
    let mut entries: Vec<(Value, Value)> = match v.try_iter() {
        Ok(keys) => keys
            .map(|k| {
                let val = v.get_item(&k).unwrap_or(Value::UNDEFINED);
                (k, val)
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    entries.sort_by(|a, b| compare_keys(&a.0, &b.0));
    entries
}

fn compare_keys(a: &Value, b: &Value) -> Ordering {
    fn rank(g: &Go<'_>) -> u8 {
        match g {
            Go::Nil => 0,
            Go::Bool(_) => 1,
            Go::Int(_) | Go::Float(_) => 2,
            Go::Str(_) => 3,
            Go::Kv(_) | Go::Slice(_) | Go::Map(_) => 4,
        }
    }
    fn float_cmp(x: f64, y: f64) -> Ordering {
        match (x.is_nan(), y.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        }
    }
    let (ga, gb) = (classify(a), classify(b));
    rank(&ga).cmp(&rank(&gb)).then_with(|| match (&ga, &gb) {
        (Go::Bool(x), Go::Bool(y)) => x.cmp(y),
        (Go::Int(x), Go::Int(y)) => x.cmp(y),
        // Int against float compares the int's value as a float (lossy only past 2^53).
        (Go::Int(x), Go::Float(y)) => float_cmp(*x as f64, *y),
        (Go::Float(x), Go::Int(y)) => float_cmp(*x, *y as f64),
        (Go::Float(x), Go::Float(y)) => float_cmp(*x, *y),
        (Go::Str(x), Go::Str(y)) => x.as_bytes().cmp(y.as_bytes()),
        _ => a.to_string().cmp(&b.to_string()),
    })
}

/// Go's `fmtFlags`.
#[derive(Debug, Clone, Copy, Default)]
struct Flags {
    wid_present: bool,
    prec_present: bool,
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    // For %+v and %#v Go moves plus/sharp here, as they are different, flagless formats.
    plus_v: bool,
    sharp_v: bool,
}

/// Go's `pp` and `fmt` in one: the output buffer and the current verb's flags.
#[derive(Debug, Default)]
struct Printer {
    buf: String,
    f: Flags,
    /// Width; 0 when absent (as in Go, where parsenum yields 0).
    wid: usize,
    /// Precision; 0 when absent.
    prec: usize,
}

/// Go's `tooLarge`: widths, precisions and argument numbers are limited to ±1e6.
fn too_large(x: i64) -> bool {
    !(-1_000_000..=1_000_000).contains(&x)
}

/// Go's `parsenum`: the decimal number at `s[start..end]`, whether there was one, and where it
/// stops. An absurdly long number consumes everything (`newi == end`), as in Go.
fn parsenum(s: &[u8], start: usize, end: usize) -> (i64, bool, usize) {
    if start >= end {
        return (0, false, end);
    }
    let mut num: i64 = 0;
    let mut isnum = false;
    let mut newi = start;
    while newi < end && s[newi].is_ascii_digit() {
        if too_large(num) {
            return (0, false, end);
        }
        num = num * 10 + i64::from(s[newi] - b'0');
        isnum = true;
        newi += 1;
    }
    (num, isnum, newi)
}

/// Go's `parseArgNumber` on a format starting at `[`: the zero-based index, the bytes to
/// consume, and whether it parsed.
fn parse_arg_number(format: &[u8]) -> (i64, usize, bool) {
    // There must be at least 3 bytes: [n].
    if format.len() < 3 {
        return (0, 1, false);
    }
    // Find the closing bracket.
    let Some(close) = format.iter().position(|&c| c == b']') else {
        return (0, 1, false);
    };
    let (width, ok, newi) = parsenum(format, 1, close);
    if !ok || newi != close {
        return (0, close + 1, false);
    }
    // Arg numbers are one-indexed; skip the bracket.
    (width - 1, close + 1, true)
}

/// Go's `intFromArg`: the `*` width or precision from `args[arg_num]`, whether it is a usable
/// int, and the next argument number.
fn int_from_arg(args: &[Value], arg_num: usize) -> (i64, bool, usize) {
    let Some(arg) = args.get(arg_num) else {
        return (0, false, arg_num);
    };
    let (num, is_int) = match classify(arg) {
        Go::Int(n) => match i64::try_from(n) {
            Ok(n) => (n, true),
            Err(_) => (0, false),
        },
        _ => (0, false),
    };
    if too_large(num) {
        return (0, false, arg_num + 1);
    }
    (num, is_int, arg_num + 1)
}

/// Clamps a parsed width or precision (never negative here, at most ~1e7) to usize.
fn to_usize(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

impl Printer {
    // ---- pp: arguments and verbs (print.go) ----

    fn do_print(&mut self, args: &[Value]) {
        let mut prev_string = false;
        for (n, arg) in args.iter().enumerate() {
            let is_string = is_go_string(arg);
            // Add a space between two non-string arguments.
            if n > 0 && !is_string && !prev_string {
                self.buf.push(' ');
            }
            self.print_arg(arg, 'v');
            prev_string = is_string;
        }
    }

    fn do_println(&mut self, args: &[Value]) {
        for (n, arg) in args.iter().enumerate() {
            if n > 0 {
                self.buf.push(' ');
            }
            self.print_arg(arg, 'v');
        }
        self.buf.push('\n');
    }

    /// Go's `argNumber`: an explicit `[n]` at `i`, if any. Returns the argument number, the new
    /// `i`, and whether an index was found; sets `reordered` and clears `good_arg_num` as Go does.
    fn arg_number(
        fb: &[u8],
        i: usize,
        arg_num: usize,
        num_args: usize,
        reordered: &mut bool,
        good_arg_num: &mut bool,
    ) -> (usize, usize, bool) {
        if fb.get(i) != Some(&b'[') {
            return (arg_num, i, false);
        }
        *reordered = true;
        let (index, wid, ok) = parse_arg_number(&fb[i..]);
        if let Some(index) = usize::try_from(index).ok().filter(|&n| ok && n < num_args) {
            return (index, i + wid, true);
        }
        *good_arg_num = false;
        (arg_num, i + wid, ok)
    }

    fn do_printf(&mut self, format: &str, args: &[Value]) {
        let fb = format.as_bytes();
        let end = fb.len();
        let mut arg_num = 0usize;
        let mut reordered = false;
        let mut i = 0usize;
        while i < end {
            let mut good_arg_num = true;
            let lasti = i;
            while i < end && fb[i] != b'%' {
                i += 1;
            }
            if i > lasti {
                // Both ends are char boundaries ('%' is ASCII); `get` only to rule out a panic.
                self.buf.push_str(format.get(lasti..i).unwrap_or_default());
            }
            if i >= end {
                break;
            }
            // Process one verb.
            i += 1;
            self.f = Flags::default();
            while i < end {
                match fb[i] {
                    b'#' => self.f.sharp = true,
                    // Only allow zero padding to the left.
                    b'0' => self.f.zero = !self.f.minus,
                    b'+' => self.f.plus = true,
                    b'-' => {
                        self.f.minus = true;
                        // Do not pad with zeros to the right.
                        self.f.zero = false;
                    }
                    b' ' => self.f.space = true,
                    _ => break,
                }
                i += 1;
            }

            // Do we have an explicit argument index? (`after_index`: the previous item in the
            // format was an index like [3].)
            let (next_arg, next_i, mut after_index) = Self::arg_number(
                fb,
                i,
                arg_num,
                args.len(),
                &mut reordered,
                &mut good_arg_num,
            );
            arg_num = next_arg;
            i = next_i;

            // Do we have width?
            if i < end && fb[i] == b'*' {
                i += 1;
                let (num, is_int, next) = int_from_arg(args, arg_num);
                arg_num = next;
                self.f.wid_present = is_int;
                if !is_int {
                    self.buf.push_str("%!(BADWIDTH)");
                }
                // A negative width means left-justify.
                if num < 0 {
                    self.f.minus = true;
                    self.f.zero = false;
                }
                self.wid = to_usize(num.saturating_abs());
                after_index = false;
            } else {
                let (num, isnum, newi) = parsenum(fb, i, end);
                self.wid = to_usize(num);
                self.f.wid_present = isnum;
                i = newi;
                if after_index && self.f.wid_present {
                    // "%[3]2d"
                    good_arg_num = false;
                }
            }

            // Do we have precision?
            if i + 1 < end && fb[i] == b'.' {
                i += 1;
                if after_index {
                    // "%[3].2d"
                    good_arg_num = false;
                }
                (arg_num, i, after_index) = Self::arg_number(
                    fb,
                    i,
                    arg_num,
                    args.len(),
                    &mut reordered,
                    &mut good_arg_num,
                );
                if i < end && fb[i] == b'*' {
                    i += 1;
                    let (num, is_int, next) = int_from_arg(args, arg_num);
                    arg_num = next;
                    // Negative precision arguments don't make sense.
                    self.f.prec_present = is_int && num >= 0;
                    self.prec = if self.f.prec_present {
                        to_usize(num)
                    } else {
                        0
                    };
                    if !self.f.prec_present {
                        self.buf.push_str("%!(BADPREC)");
                    }
                    after_index = false;
                } else {
                    let (num, isnum, newi) = parsenum(fb, i, end);
                    i = newi;
                    // A bare "." means precision 0.
                    self.prec = if isnum { to_usize(num) } else { 0 };
                    self.f.prec_present = true;
                }
            }

            if !after_index {
                (arg_num, i, _) = Self::arg_number(
                    fb,
                    i,
                    arg_num,
                    args.len(),
                    &mut reordered,
                    &mut good_arg_num,
                );
            }

            if i >= end {
                self.buf.push_str("%!(NOVERB)");
                break;
            }

            // `i` is always at a char boundary here: everything consumed so far is ASCII.
            let verb = format
                .get(i..)
                .and_then(|rest| rest.chars().next())
                .unwrap_or(REPLACEMENT);
            i += verb.len_utf8();

            if verb == '%' {
                // Percent does not absorb operands and ignores width and precision.
                self.buf.push('%');
            } else if !good_arg_num {
                self.bad_arg_num(verb);
            } else if let Some(arg) = args.get(arg_num) {
                if verb == 'v' {
                    // Go syntax and struct-field syntax are flagless formats of their own.
                    self.f.sharp_v = self.f.sharp;
                    self.f.sharp = false;
                    self.f.plus_v = self.f.plus;
                    self.f.plus = false;
                }
                self.print_arg(arg, verb);
                arg_num += 1;
            } else {
                self.missing_arg(verb);
            }
        }

        // Extra arguments are reported unless the format used explicit indexes, in which case
        // leaving some unused is arguably fine (Go's rule).
        if !reordered && arg_num < args.len() {
            self.f = Flags::default();
            self.buf.push_str("%!(EXTRA ");
            for (n, arg) in args[arg_num..].iter().enumerate() {
                if n > 0 {
                    self.buf.push_str(", ");
                }
                if is_nil(arg) {
                    self.buf.push_str(NIL_ANGLE);
                } else {
                    self.buf.push_str(&type_name(arg));
                    self.buf.push('=');
                    self.print_arg(arg, 'v');
                }
            }
            self.buf.push(')');
        }
    }

    fn bad_arg_num(&mut self, verb: char) {
        self.buf.push_str("%!");
        self.buf.push(verb);
        self.buf.push_str("(BADINDEX)");
    }

    fn missing_arg(&mut self, verb: char) {
        self.buf.push_str("%!");
        self.buf.push(verb);
        self.buf.push_str("(MISSING)");
    }

    /// Go's `badVerb`: `%!verb(type=value)`, the value printed with `%v` under the current flags.
    fn bad_verb(&mut self, verb: char, arg: Option<&Value>) {
        self.buf.push_str("%!");
        self.buf.push(verb);
        self.buf.push('(');
        match arg {
            Some(v) => {
                self.buf.push_str(&type_name(v));
                self.buf.push('=');
                self.print_arg(v, 'v');
            }
            None => self.buf.push_str(NIL_ANGLE),
        }
        self.buf.push(')');
    }

    /// Go's `printArg`: an operand at the top level.
    fn print_arg(&mut self, arg: &Value, verb: char) {
        let go = classify(arg);
        if let Go::Nil = go {
            match verb {
                'T' | 'v' => self.pad(NIL_ANGLE),
                _ => self.bad_verb(verb, None),
            }
            return;
        }
        match verb {
            'T' => {
                let name = type_name(arg);
                self.fmt_s(&name);
            }
            // Go prints the address of a slice or map, which these values do not have; every
            // other type is a bad verb for %p.
            'p' => self.bad_verb(verb, Some(arg)),
            _ => self.print_go(arg, go, verb),
        }
    }

    /// Go's `printValue` below the top level: an element of a slice or map (or a struct field).
    fn print_value(&mut self, v: &Value, verb: char) {
        let go = classify(v);
        if let Go::Nil = go {
            // A nil `interface{}` element: written as is, never padded nor a bad verb.
            if self.f.sharp_v {
                self.buf.push_str("interface {}(nil)");
            } else {
                self.buf.push_str(NIL_ANGLE);
            }
            return;
        }
        self.print_go(v, go, verb);
    }

    fn print_go(&mut self, v: &Value, go: Go<'_>, verb: char) {
        match go {
            Go::Nil => self.pad(NIL_ANGLE),
            Go::Bool(b) => match verb {
                't' | 'v' => self.fmt_boolean(b),
                _ => self.bad_verb(verb, Some(v)),
            },
            Go::Int(n) => self.print_int(n, verb, v),
            Go::Float(x) => self.print_float(x, verb, v),
            Go::Str(s) => self.print_string(&s, verb, v),
            Go::Kv(kv) => self.print_kv(kv, verb),
            Go::Slice(items) => self.print_slice(&items, verb),
            Go::Map(entries) => self.print_map(&entries, verb),
        }
    }

    fn print_kv(&mut self, kv: &KvPair, verb: char) {
        if self.f.sharp_v {
            self.buf.push_str("memkv.KVPair");
        }
        self.buf.push('{');
        for (n, (name, field)) in [("Key", &kv.key), ("Value", &kv.value)]
            .into_iter()
            .enumerate()
        {
            if n > 0 {
                self.buf.push_str(if self.f.sharp_v { ", " } else { " " });
            }
            if self.f.plus_v || self.f.sharp_v {
                self.buf.push_str(name);
                self.buf.push(':');
            }
            self.print_value(&Value::from(field.as_str()), verb);
        }
        self.buf.push('}');
    }

    fn print_slice(&mut self, items: &[Value], verb: char) {
        if self.f.sharp_v {
            self.buf.push_str("[]");
            self.buf.push_str(elem_type(items));
            self.buf.push('{');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    self.buf.push_str(", ");
                }
                self.print_value(item, verb);
            }
            self.buf.push('}');
        } else {
            self.buf.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    self.buf.push(' ');
                }
                self.print_value(item, verb);
            }
            self.buf.push(']');
        }
    }

    fn print_map(&mut self, entries: &[(Value, Value)], verb: char) {
        if self.f.sharp_v {
            self.buf.push_str("map[string]interface {}{");
        } else {
            self.buf.push_str("map[");
        }
        for (n, (key, value)) in entries.iter().enumerate() {
            if n > 0 {
                self.buf.push_str(if self.f.sharp_v { ", " } else { " " });
            }
            self.print_value(key, verb);
            self.buf.push(':');
            self.print_value(value, verb);
        }
        self.buf.push(if self.f.sharp_v { '}' } else { ']' });
    }

    /// Go's `pp.fmtInteger`.
    fn print_int(&mut self, n: i128, verb: char, v: &Value) {
        // Go ints are signed; only a uint64 (above i64::MAX) is not.
        let signed = n <= i128::from(i64::MAX);
        let negative = n < 0;
        let mag = n.unsigned_abs();
        // Go's uint64(v) for %c, %q and %U: a negative int wraps to a huge code point.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let code = n as u64;
        match verb {
            'v' if self.f.sharp_v && !signed => self.fmt_0x64(mag, true),
            'v' | 'd' => self.fmt_integer(negative, mag, 10, verb, LDIGITS),
            'b' => self.fmt_integer(negative, mag, 2, verb, LDIGITS),
            'o' | 'O' => self.fmt_integer(negative, mag, 8, verb, LDIGITS),
            'x' => self.fmt_integer(negative, mag, 16, verb, LDIGITS),
            'X' => self.fmt_integer(negative, mag, 16, verb, UDIGITS),
            'c' => self.fmt_c(code),
            'q' => self.fmt_qc(code),
            'U' => self.fmt_unicode(code),
            _ => self.bad_verb(verb, Some(v)),
        }
    }

    /// Go's `pp.fmtFloat`: the verb picks strconv's format and the default precision.
    fn print_float(&mut self, x: f64, verb: char, v: &Value) {
        let (fmt, prec) = match verb {
            'v' | 'g' => (b'g', -1),
            'G' => (b'G', -1),
            'b' => (b'b', -1),
            'x' => (b'x', -1),
            'X' => (b'X', -1),
            'e' => (b'e', 6),
            'E' => (b'E', 6),
            'f' | 'F' => (b'f', 6),
            _ => {
                self.bad_verb(verb, Some(v));
                return;
            }
        };
        self.fmt_float(x, fmt, prec);
    }

    /// Go's `pp.fmtString`.
    fn print_string(&mut self, s: &str, verb: char, v: &Value) {
        match verb {
            'v' if self.f.sharp_v => self.fmt_q(s),
            'v' | 's' => self.fmt_s(s),
            'x' => self.fmt_sbx(s.as_bytes(), LDIGITS),
            'X' => self.fmt_sbx(s.as_bytes(), UDIGITS),
            'q' => self.fmt_q(s),
            _ => self.bad_verb(verb, Some(v)),
        }
    }

    // ---- fmt: padding and the basic formats (format.go) ----

    fn write_padding(&mut self, n: usize) {
        let c = if self.f.zero { '0' } else { ' ' };
        self.buf.extend(std::iter::repeat_n(c, n));
    }

    /// Go's `pad`/`padString`: width counts runes.
    fn pad(&mut self, s: &str) {
        if !self.f.wid_present || self.wid == 0 {
            self.buf.push_str(s);
            return;
        }
        let width = self.wid.saturating_sub(s.chars().count());
        if self.f.minus {
            self.buf.push_str(s);
            self.write_padding(width);
        } else {
            self.write_padding(width);
            self.buf.push_str(s);
        }
    }

    /// `pad` with zero padding turned off, as Go does for numbers whose zeros were already
    /// placed (or must not be).
    fn pad_no_zero(&mut self, s: &str) {
        let zero = self.f.zero;
        self.f.zero = false;
        self.pad(s);
        self.f.zero = zero;
    }

    fn fmt_boolean(&mut self, b: bool) {
        self.pad(if b { "true" } else { "false" });
    }

    /// Go's `fmtUnicode`: `U+0078`, or with `#` `U+0078 'x'`.
    fn fmt_unicode(&mut self, u: u64) {
        let prec = if self.f.prec_present && self.prec > 4 {
            self.prec
        } else {
            4
        };
        let hex = format!("{u:X}");
        let mut s = String::from("U+");
        s.extend(std::iter::repeat_n('0', prec.saturating_sub(hex.len())));
        s.push_str(&hex);
        // With `#`, the character itself when it is a printable rune.
        let shown = u32::try_from(u)
            .ok()
            .and_then(char::from_u32)
            .filter(|&c| self.f.sharp && is_print(c));
        if let Some(c) = shown {
            s.push_str(" '");
            s.push(c);
            s.push('\'');
        }
        self.pad_no_zero(&s);
    }

    /// Go's `fmt.fmtInteger`, on a sign and a magnitude (u128 so that the magnitude of any i64
    /// and any u64 fits).
    fn fmt_integer(&mut self, negative: bool, u: u128, base: u32, verb: char, digits: &[u8; 17]) {
        // Two ways to ask for extra leading zero digits: %.3d or %03d. If both are given the
        // zero flag is ignored and padding is with spaces.
        let mut prec = 0usize;
        if self.f.prec_present {
            prec = self.prec;
            // Precision 0 and value 0 means "print nothing" but padding.
            if prec == 0 && u == 0 {
                let zero = self.f.zero;
                self.f.zero = false;
                self.write_padding(self.wid);
                self.f.zero = zero;
                return;
            }
        } else if self.f.zero && self.f.wid_present {
            prec = self.wid;
            if negative || self.f.plus || self.f.space {
                // Leave room for the sign.
                prec = prec.saturating_sub(1);
            }
        }

        // Built right to left, then reversed.
        let mut rev: Vec<u8> = Vec::new();
        let mut u = u;
        let base = u128::from(base);
        loop {
            // The remainder is below 16, so the index is in range.
            rev.push(digits[usize::try_from(u % base).unwrap_or(0)]);
            u /= base;
            if u == 0 {
                break;
            }
        }
        while rev.len() < prec {
            rev.push(b'0');
        }
        if self.f.sharp {
            match base {
                2 => rev.extend_from_slice(b"b0"),
                8 if rev.last() != Some(&b'0') => rev.push(b'0'),
                16 => {
                    rev.push(digits[16]);
                    rev.push(b'0');
                }
                _ => {}
            }
        }
        if verb == 'O' {
            rev.extend_from_slice(b"o0");
        }
        if negative {
            rev.push(b'-');
        } else if self.f.plus {
            rev.push(b'+');
        } else if self.f.space {
            rev.push(b' ');
        }
        let s: String = rev.iter().rev().map(|&b| char::from(b)).collect();
        // Zero padding was already handled as precision, or is ignored for an explicit one.
        self.pad_no_zero(&s);
    }

    /// Go's `fmt0x64`: hexadecimal, with or without a leading 0x as asked.
    fn fmt_0x64(&mut self, u: u128, leading0x: bool) {
        let sharp = self.f.sharp;
        self.f.sharp = leading0x;
        self.fmt_integer(false, u, 16, 'v', LDIGITS);
        self.f.sharp = sharp;
    }

    /// Go's `truncateString`: at most `prec` runes when a precision is given.
    fn truncate<'s>(&self, s: &'s str) -> &'s str {
        if !self.f.prec_present {
            return s;
        }
        match s.char_indices().nth(self.prec) {
            Some((i, _)) => &s[..i],
            None => s,
        }
    }

    fn fmt_s(&mut self, s: &str) {
        let s = self.truncate(s);
        self.pad(s);
    }

    /// Go's `fmtSbx`: the bytes in hexadecimal, with `#` (0x), space (separated) and precision
    /// (bytes to encode).
    fn fmt_sbx(&mut self, b: &[u8], digits: &[u8; 17]) {
        let mut length = b.len();
        // Do not process more bytes than the precision demands.
        if self.f.prec_present && self.prec < length {
            length = self.prec;
        }
        // The width of the encoding, taking the sharp and space flags into account.
        let mut width = 2 * length;
        if width > 0 {
            if self.f.space {
                // Each element encoded by two hexadecimals will get a leading 0x or 0X.
                if self.f.sharp {
                    width *= 2;
                }
                // Elements will be separated by a space.
                width += length - 1;
            } else if self.f.sharp {
                // Only a leading 0x or 0X will be added for the whole string.
                width += 2;
            }
        } else {
            // Nothing to encode.
            if self.f.wid_present {
                self.write_padding(self.wid);
            }
            return;
        }
        if self.f.wid_present && self.wid > width && !self.f.minus {
            self.write_padding(self.wid - width);
        }
        if self.f.sharp {
            self.buf.push('0');
            self.buf.push(char::from(digits[16]));
        }
        for (n, &c) in b[..length].iter().enumerate() {
            if self.f.space && n > 0 {
                self.buf.push(' ');
                if self.f.sharp {
                    self.buf.push('0');
                    self.buf.push(char::from(digits[16]));
                }
            }
            self.buf.push(char::from(digits[usize::from(c >> 4)]));
            self.buf.push(char::from(digits[usize::from(c & 0xF)]));
        }
        if self.f.wid_present && self.wid > width && self.f.minus {
            self.write_padding(self.wid - width);
        }
    }

    /// Go's `fmtQ`: a Go string literal; with `#` a raw one when possible, with `+` ASCII only.
    fn fmt_q(&mut self, s: &str) {
        let s = self.truncate(s);
        if self.f.sharp && can_backquote(s) {
            let raw = format!("`{s}`");
            self.pad(&raw);
            return;
        }
        let quoted = quote_with(s, '"', self.f.plus);
        self.pad(&quoted);
    }

    /// Go's `fmtC`: the code point as a character (U+FFFD when invalid).
    fn fmt_c(&mut self, c: u64) {
        let r = rune_or_replacement(c);
        let mut tmp = [0u8; 4];
        let s: &str = r.encode_utf8(&mut tmp);
        self.pad(s);
    }

    /// Go's `fmtQc`: a Go character literal.
    fn fmt_qc(&mut self, c: u64) {
        let r = rune_or_replacement(c);
        let mut quoted = String::from("'");
        append_escaped_rune(&mut quoted, r, '\'', self.f.plus);
        quoted.push('\'');
        self.pad(&quoted);
    }

    /// Go's `fmt.fmtFloat`: strconv's formatting, then sign, `#` and padding rules.
    fn fmt_float(&mut self, v: f64, verb: u8, prec: i64) {
        // An explicit precision overrules the verb's default.
        let prec = if self.f.prec_present {
            i64::try_from(self.prec).unwrap_or(i64::MAX)
        } else {
            prec
        };
        // The number with a leading sign, + when positive.
        let formatted = format_float(v, verb, prec);
        let mut num = if formatted.starts_with('-') || formatted.starts_with('+') {
            formatted
        } else {
            format!("+{formatted}")
        };
        // The space flag means a leading space instead of a "+" unless plus asks for the sign.
        if self.f.space && num.starts_with('+') && !self.f.plus {
            num.replace_range(0..1, " ");
        }
        // Infinities and NaN don't look like numbers: no zero padding.
        let second = num.as_bytes().get(1).copied();
        if second == Some(b'I') || second == Some(b'N') {
            let zero = self.f.zero;
            self.f.zero = false;
            // No sign before NaN unless asked for.
            if second == Some(b'N') && !self.f.space && !self.f.plus {
                num.replace_range(..1, "");
            }
            self.pad(&num);
            self.f.zero = zero;
            return;
        }
        // The sharp flag forces a decimal point for non-binary formats and keeps trailing
        // zeros, which may need restoring.
        if self.f.sharp && verb != b'b' {
            let mut digits: i64 = 0;
            if matches!(verb, b'v' | b'g' | b'G' | b'x') {
                digits = prec;
                // Without an explicit precision, %g's default of 6 significant digits.
                if digits == -1 {
                    digits = 6;
                }
            }
            // The exponent part ("e+123", "p-1023"), put back after the mantissa is completed.
            let mut tail = String::new();
            let mut has_decimal_point = false;
            let mut saw_nonzero_digit = false;
            // Starting at 1 to skip the sign.
            let mut idx = 1;
            while idx < num.len() {
                let c = num.as_bytes()[idx];
                match c {
                    b'.' => has_decimal_point = true,
                    b'p' | b'P' => {
                        tail = num.split_off(idx);
                    }
                    b'e' | b'E' if verb != b'x' && verb != b'X' => {
                        tail = num.split_off(idx);
                    }
                    _ => {
                        if c != b'0' {
                            saw_nonzero_digit = true;
                        }
                        // Count significant digits after the first non-zero digit.
                        if saw_nonzero_digit {
                            digits -= 1;
                        }
                    }
                }
                idx += 1;
            }
            if !has_decimal_point {
                // A leading digit 0 counts once towards the digits.
                if num.len() == 2 && num.as_bytes()[1] == b'0' {
                    digits -= 1;
                }
                num.push('.');
            }
            while digits > 0 {
                num.push('0');
                digits -= 1;
            }
            num.push_str(&tail);
        }
        // A sign only if asked for or negative.
        if self.f.plus || !num.starts_with('+') {
            // Zero padding goes between the sign and the digits.
            if self.f.zero && self.f.wid_present && self.wid > num.len() {
                let (sign, rest) = num.split_at(1);
                self.buf.push_str(sign);
                self.write_padding(self.wid - num.len());
                self.buf.push_str(rest);
                return;
            }
            self.pad(&num);
            return;
        }
        // Positive and no sign wanted: the number without its "+".
        self.pad(&num[1..]);
    }
}

fn rune_or_replacement(c: u64) -> char {
    if c > MAX_RUNE {
        return REPLACEMENT;
    }
    // Surrogates are not runes either: Go encodes them as U+FFFD.
    u32::try_from(c)
        .ok()
        .and_then(char::from_u32)
        .unwrap_or(REPLACEMENT)
}

/// Go's `strconv.CanBackquote`.
fn can_backquote(s: &str) -> bool {
    s.chars().all(|c| {
        if c.len_utf8() > 1 {
            // BOMs are invisible and should not be quoted; other multibyte runes are fine.
            return c != '\u{FEFF}';
        }
        !((c < ' ' && c != '\t') || c == '`' || c == '\u{7F}')
    })
}

/// Go's `strconv.Quote` (`QuoteToASCII` when `ascii_only`).
fn quote_with(s: &str, quote: char, ascii_only: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        append_escaped_rune(&mut out, c, quote, ascii_only);
    }
    out.push(quote);
    out
}

/// Go's `appendEscapedRune`.
fn append_escaped_rune(out: &mut String, r: char, quote: char, ascii_only: bool) {
    if r == quote || r == '\\' {
        out.push('\\');
        out.push(r);
        return;
    }
    if is_print(r) && (!ascii_only || r.is_ascii()) {
        out.push(r);
        return;
    }
    match r {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        _ => {
            let c = u32::from(r);
            if c < 0x20 || c == 0x7F {
                let _ = write!(out, "\\x{c:02x}");
            } else if c < 0x1_0000 {
                let _ = write!(out, "\\u{c:04x}");
            } else {
                let _ = write!(out, "\\U{c:08x}");
            }
        }
    }
}

// ---- strconv.FormatFloat (ftoa.go) ----

/// Decimal digits of a float's magnitude: `d` without trailing zeros (empty for zero), the decimal
/// point after `dp` digits. Go's `decimalSlice`.
struct Digits {
    d: Vec<u8>,
    dp: i64,
}

impl Digits {
    fn nd(&self) -> i64 {
        i64::try_from(self.d.len()).unwrap_or(i64::MAX)
    }

    /// Digit `j`, or '0' outside the digits.
    fn at(&self, j: i64) -> char {
        usize::try_from(j)
            .ok()
            .and_then(|j| self.d.get(j))
            .map_or('0', |&b| char::from(b))
    }
}

/// Parses Rust's `{:e}` form ("1.048576e6", "0e0", "2.50e-3") into Go's digits: Rust's shortest
/// and fixed-precision conversions are, like Go's, exact and round half to even, so the digits
/// are the same; only the layout differs, and that is Go's (below).
fn parse_sci(s: &str) -> Digits {
    let (mantissa, exp) = s.split_once('e').unwrap_or((s, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    // Go's digit generators trim trailing zeros; %g depends on it.
    while d.last() == Some(&b'0') {
        d.pop();
    }
    if d.is_empty() {
        // Zero: no digits, and Go's exponent 0.
        return Digits { d, dp: 0 };
    }
    Digits { d, dp: exp + 1 }
}

/// Go's `strconv.FormatFloat(v, fmt, prec, 64)`.
fn format_float(v: f64, fmt: u8, prec: i64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        let inf = if v > 0.0 { "+Inf" } else { "-Inf" };
        return inf.to_owned();
    }
    let mut out = String::new();
    match fmt {
        b'b' => {
            fmt_b(&mut out, v);
            return out;
        }
        b'x' | b'X' => {
            fmt_x(&mut out, v, prec, fmt);
            return out;
        }
        _ => {}
    }
    if v.is_sign_negative() {
        out.push('-');
    }
    let abs = v.abs();
    if prec < 0 {
        // Shortest representation that reads back exactly.
        let digs = parse_sci(&format!("{abs:e}"));
        let prec = match fmt {
            b'e' | b'E' => (digs.nd() - 1).max(0),
            b'f' => (digs.nd() - digs.dp).max(0),
            _ => digs.nd(),
        };
        format_digits(&mut out, true, &digs, prec, fmt);
    } else if fmt == b'f' {
        // Fixed notation: Rust's exact formatting is Go's fmtF layout already.
        let _ = write!(out, "{:.*}", to_usize(prec), abs);
    } else {
        let mut prec = prec;
        let digits = match fmt {
            b'e' | b'E' => prec + 1,
            b'g' | b'G' => {
                if prec == 0 {
                    prec = 1;
                }
                prec
            }
            _ => 1,
        };
        let digits = to_usize(digits).max(1);
        let digs = parse_sci(&format!("{:.*e}", digits - 1, abs));
        format_digits(&mut out, false, &digs, prec, fmt);
    }
    out
}

/// Go's `formatDigits`.
fn format_digits(out: &mut String, shortest: bool, digs: &Digits, prec: i64, fmt: u8) {
    match fmt {
        b'e' | b'E' => fmt_e(out, digs, prec, fmt),
        b'f' => fmt_f(out, digs, prec),
        b'g' | b'G' => {
            let mut prec = prec;
            let nd = digs.nd();
            // Trailing fractional zeros in 'e' form are trimmed.
            let mut eprec = prec;
            if eprec > nd && nd >= digs.dp {
                eprec = nd;
            }
            // %e is used if the exponent from the conversion is less than -4 or at least the
            // precision; the shortest form decides with precision 6.
            if shortest {
                eprec = 6;
            }
            let exp = digs.dp - 1;
            if exp < -4 || exp >= eprec {
                if prec > nd {
                    prec = nd;
                }
                let e = if fmt == b'g' { b'e' } else { b'E' };
                fmt_e(out, digs, prec - 1, e);
                return;
            }
            if prec > digs.dp {
                prec = nd;
            }
            fmt_f(out, digs, (prec - digs.dp).max(0));
        }
        _ => {
            out.push('%');
            out.push(char::from(fmt));
        }
    }
}

/// Go's `fmtE`: d.ddddde±dd.
fn fmt_e(out: &mut String, digs: &Digits, prec: i64, fmt: u8) {
    out.push(digs.at(0));
    if prec > 0 {
        out.push('.');
        for j in 1..=prec {
            out.push(digs.at(j));
        }
    }
    out.push(char::from(fmt));
    // Zero has exponent 0.
    let exp = if digs.d.is_empty() { 0 } else { digs.dp - 1 };
    out.push(if exp < 0 { '-' } else { '+' });
    // At least two digits.
    let _ = write!(out, "{:02}", exp.unsigned_abs());
}

/// Go's `fmtF`: ddd.dddd.
fn fmt_f(out: &mut String, digs: &Digits, prec: i64) {
    if digs.dp > 0 {
        for j in 0..digs.dp {
            out.push(digs.at(j));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for j in 0..prec {
            out.push(digs.at(digs.dp + j));
        }
    }
}

/// An f64's sign, mantissa (with the implicit bit) and binary exponent, as Go's `genericFtoa`
/// decodes them (after adding the bias).
fn decode_f64(v: f64) -> (bool, u64, i64) {
    let bits = v.to_bits();
    let neg = bits >> 63 != 0;
    let mut exp = i64::try_from((bits >> 52) & 0x7FF).unwrap_or(0);
    let mut mant = bits & ((1u64 << 52) - 1);
    if exp == 0 {
        // Denormalized.
        exp += 1;
    } else {
        mant |= 1u64 << 52;
    }
    (neg, mant, exp - 1023)
}

/// Go's `fmtB`: -ddddp±ddd, the mantissa and binary exponent in decimal.
fn fmt_b(out: &mut String, v: f64) {
    let (neg, mant, exp) = decode_f64(v);
    if neg {
        out.push('-');
    }
    let exp = exp - 52;
    let sign = if exp >= 0 { "+" } else { "" };
    let _ = write!(out, "{mant}p{sign}{exp}");
}

/// Go's `fmtX`: -0x1.yyyyyyp±dd, hexadecimal mantissa and binary exponent.
fn fmt_x(out: &mut String, v: f64, prec: i64, fmt: u8) {
    let (neg, mut mant, mut exp) = decode_f64(v);
    if mant == 0 {
        exp = 0;
    }
    // Shift digits so the leading 1 (if any) is at bit 60 (from bit 52, the implicit bit).
    mant <<= 8;
    while mant != 0 && mant & (1 << 60) == 0 {
        mant <<= 1;
        exp -= 1;
    }
    // Round if requested.
    if (0..15).contains(&prec) {
        let shift = u32::try_from(prec * 4).unwrap_or(0);
        let extra = (mant << shift) & ((1 << 60) - 1);
        let keep = 60 - shift;
        mant >>= keep;
        if (extra | (mant & 1)) > (1 << 59) {
            mant += 1;
        }
        mant <<= keep;
        if mant & (1 << 61) != 0 {
            // Wrapped around.
            mant >>= 1;
            exp += 1;
        }
    }
    let hex = if fmt == b'X' { UDIGITS } else { LDIGITS };
    let nibble = |m: u64| char::from(hex[usize::try_from((m >> 60) & 15).unwrap_or(0)]);
    if neg {
        out.push('-');
    }
    out.push('0');
    out.push(char::from(fmt));
    out.push(if (mant >> 60) & 1 == 1 { '1' } else { '0' });
    // Remove the leading 0 or 1.
    mant <<= 4;
    if prec < 0 && mant != 0 {
        out.push('.');
        while mant != 0 {
            out.push(nibble(mant));
            mant <<= 4;
        }
    } else if prec > 0 {
        out.push('.');
        for _ in 0..prec {
            out.push(nibble(mant));
            mant <<= 4;
        }
    }
    out.push(if fmt == b'X' { 'P' } else { 'p' });
    out.push(if exp < 0 { '-' } else { '+' });
    let _ = write!(out, "{:02}", exp.unsigned_abs());
}

// ---- Unicode tables, generated from Go 1.19's own (`strconv.IsPrint`, `unicode.CaseRanges`) so
// that quoting and case mapping follow Go's Unicode version, not Rust's. ----

/// The delta marking an alternating Upper/Lower run in `CASE_RANGES` (Go's `unicode.UpperLower`,
/// `MaxRune + 1`).
const UPPER_LOWER: i32 = 0x11_0000;

/// Go 1.19 `strconv.IsPrint` (= `unicode.IsPrint`, Unicode 13.0.0) as sorted inclusive ranges.
#[rustfmt::skip]
const PRINT_RANGES: &[(u32, u32)] = &[
    (0x20, 0x7e), (0xa1, 0xac), (0xae, 0x377), (0x37a, 0x37f), (0x384, 0x38a),
    (0x38c, 0x38c), (0x38e, 0x3a1), (0x3a3, 0x52f), (0x531, 0x556), (0x559, 0x58a),
    (0x58d, 0x58f), (0x591, 0x5c7), (0x5d0, 0x5ea), (0x5ef, 0x5f4), (0x606, 0x61b),
    (0x61e, 0x6dc), (0x6de, 0x70d), (0x710, 0x74a), (0x74d, 0x7b1), (0x7c0, 0x7fa),
    (0x7fd, 0x82d), (0x830, 0x83e), (0x840, 0x85b), (0x85e, 0x85e), (0x860, 0x86a),
    (0x8a0, 0x8b4), (0x8b6, 0x8c7), (0x8d3, 0x8e1), (0x8e3, 0x983), (0x985, 0x98c),
    (0x98f, 0x990), (0x993, 0x9a8), (0x9aa, 0x9b0), (0x9b2, 0x9b2), (0x9b6, 0x9b9),
    (0x9bc, 0x9c4), (0x9c7, 0x9c8), (0x9cb, 0x9ce), (0x9d7, 0x9d7), (0x9dc, 0x9dd),
    (0x9df, 0x9e3), (0x9e6, 0x9fe), (0xa01, 0xa03), (0xa05, 0xa0a), (0xa0f, 0xa10),
    (0xa13, 0xa28), (0xa2a, 0xa30), (0xa32, 0xa33), (0xa35, 0xa36), (0xa38, 0xa39),
    (0xa3c, 0xa3c), (0xa3e, 0xa42), (0xa47, 0xa48), (0xa4b, 0xa4d), (0xa51, 0xa51),
    (0xa59, 0xa5c), (0xa5e, 0xa5e), (0xa66, 0xa76), (0xa81, 0xa83), (0xa85, 0xa8d),
    (0xa8f, 0xa91), (0xa93, 0xaa8), (0xaaa, 0xab0), (0xab2, 0xab3), (0xab5, 0xab9),
    (0xabc, 0xac5), (0xac7, 0xac9), (0xacb, 0xacd), (0xad0, 0xad0), (0xae0, 0xae3),
    (0xae6, 0xaf1), (0xaf9, 0xaff), (0xb01, 0xb03), (0xb05, 0xb0c), (0xb0f, 0xb10),
    (0xb13, 0xb28), (0xb2a, 0xb30), (0xb32, 0xb33), (0xb35, 0xb39), (0xb3c, 0xb44),
    (0xb47, 0xb48), (0xb4b, 0xb4d), (0xb55, 0xb57), (0xb5c, 0xb5d), (0xb5f, 0xb63),
    (0xb66, 0xb77), (0xb82, 0xb83), (0xb85, 0xb8a), (0xb8e, 0xb90), (0xb92, 0xb95),
    (0xb99, 0xb9a), (0xb9c, 0xb9c), (0xb9e, 0xb9f), (0xba3, 0xba4), (0xba8, 0xbaa),
    (0xbae, 0xbb9), (0xbbe, 0xbc2), (0xbc6, 0xbc8), (0xbca, 0xbcd), (0xbd0, 0xbd0),
    (0xbd7, 0xbd7), (0xbe6, 0xbfa), (0xc00, 0xc0c), (0xc0e, 0xc10), (0xc12, 0xc28),
    (0xc2a, 0xc39), (0xc3d, 0xc44), (0xc46, 0xc48), (0xc4a, 0xc4d), (0xc55, 0xc56),
    (0xc58, 0xc5a), (0xc60, 0xc63), (0xc66, 0xc6f), (0xc77, 0xc8c), (0xc8e, 0xc90),
    (0xc92, 0xca8), (0xcaa, 0xcb3), (0xcb5, 0xcb9), (0xcbc, 0xcc4), (0xcc6, 0xcc8),
    (0xcca, 0xccd), (0xcd5, 0xcd6), (0xcde, 0xcde), (0xce0, 0xce3), (0xce6, 0xcef),
    (0xcf1, 0xcf2), (0xd00, 0xd0c), (0xd0e, 0xd10), (0xd12, 0xd44), (0xd46, 0xd48),
    (0xd4a, 0xd4f), (0xd54, 0xd63), (0xd66, 0xd7f), (0xd81, 0xd83), (0xd85, 0xd96),
    (0xd9a, 0xdb1), (0xdb3, 0xdbb), (0xdbd, 0xdbd), (0xdc0, 0xdc6), (0xdca, 0xdca),
    (0xdcf, 0xdd4), (0xdd6, 0xdd6), (0xdd8, 0xddf), (0xde6, 0xdef), (0xdf2, 0xdf4),
    (0xe01, 0xe3a), (0xe3f, 0xe5b), (0xe81, 0xe82), (0xe84, 0xe84), (0xe86, 0xe8a),
    (0xe8c, 0xea3), (0xea5, 0xea5), (0xea7, 0xebd), (0xec0, 0xec4), (0xec6, 0xec6),
    (0xec8, 0xecd), (0xed0, 0xed9), (0xedc, 0xedf), (0xf00, 0xf47), (0xf49, 0xf6c),
    (0xf71, 0xf97), (0xf99, 0xfbc), (0xfbe, 0xfcc), (0xfce, 0xfda), (0x1000, 0x10c5),
    (0x10c7, 0x10c7), (0x10cd, 0x10cd), (0x10d0, 0x1248), (0x124a, 0x124d), (0x1250, 0x1256),
    (0x1258, 0x1258), (0x125a, 0x125d), (0x1260, 0x1288), (0x128a, 0x128d), (0x1290, 0x12b0),
    (0x12b2, 0x12b5), (0x12b8, 0x12be), (0x12c0, 0x12c0), (0x12c2, 0x12c5), (0x12c8, 0x12d6),
    (0x12d8, 0x1310), (0x1312, 0x1315), (0x1318, 0x135a), (0x135d, 0x137c), (0x1380, 0x1399),
    (0x13a0, 0x13f5), (0x13f8, 0x13fd), (0x1400, 0x167f), (0x1681, 0x169c), (0x16a0, 0x16f8),
    (0x1700, 0x170c), (0x170e, 0x1714), (0x1720, 0x1736), (0x1740, 0x1753), (0x1760, 0x176c),
    (0x176e, 0x1770), (0x1772, 0x1773), (0x1780, 0x17dd), (0x17e0, 0x17e9), (0x17f0, 0x17f9),
    (0x1800, 0x180d), (0x1810, 0x1819), (0x1820, 0x1878), (0x1880, 0x18aa), (0x18b0, 0x18f5),
    (0x1900, 0x191e), (0x1920, 0x192b), (0x1930, 0x193b), (0x1940, 0x1940), (0x1944, 0x196d),
    (0x1970, 0x1974), (0x1980, 0x19ab), (0x19b0, 0x19c9), (0x19d0, 0x19da), (0x19de, 0x1a1b),
    (0x1a1e, 0x1a5e), (0x1a60, 0x1a7c), (0x1a7f, 0x1a89), (0x1a90, 0x1a99), (0x1aa0, 0x1aad),
    (0x1ab0, 0x1ac0), (0x1b00, 0x1b4b), (0x1b50, 0x1b7c), (0x1b80, 0x1bf3), (0x1bfc, 0x1c37),
    (0x1c3b, 0x1c49), (0x1c4d, 0x1c88), (0x1c90, 0x1cba), (0x1cbd, 0x1cc7), (0x1cd0, 0x1cfa),
    (0x1d00, 0x1df9), (0x1dfb, 0x1f15), (0x1f18, 0x1f1d), (0x1f20, 0x1f45), (0x1f48, 0x1f4d),
    (0x1f50, 0x1f57), (0x1f59, 0x1f59), (0x1f5b, 0x1f5b), (0x1f5d, 0x1f5d), (0x1f5f, 0x1f7d),
    (0x1f80, 0x1fb4), (0x1fb6, 0x1fc4), (0x1fc6, 0x1fd3), (0x1fd6, 0x1fdb), (0x1fdd, 0x1fef),
    (0x1ff2, 0x1ff4), (0x1ff6, 0x1ffe), (0x2010, 0x2027), (0x2030, 0x205e), (0x2070, 0x2071),
    (0x2074, 0x208e), (0x2090, 0x209c), (0x20a0, 0x20bf), (0x20d0, 0x20f0), (0x2100, 0x218b),
    (0x2190, 0x2426), (0x2440, 0x244a), (0x2460, 0x2b73), (0x2b76, 0x2b95), (0x2b97, 0x2c2e),
    (0x2c30, 0x2c5e), (0x2c60, 0x2cf3), (0x2cf9, 0x2d25), (0x2d27, 0x2d27), (0x2d2d, 0x2d2d),
    (0x2d30, 0x2d67), (0x2d6f, 0x2d70), (0x2d7f, 0x2d96), (0x2da0, 0x2da6), (0x2da8, 0x2dae),
    (0x2db0, 0x2db6), (0x2db8, 0x2dbe), (0x2dc0, 0x2dc6), (0x2dc8, 0x2dce), (0x2dd0, 0x2dd6),
    (0x2dd8, 0x2dde), (0x2de0, 0x2e52), (0x2e80, 0x2e99), (0x2e9b, 0x2ef3), (0x2f00, 0x2fd5),
    (0x2ff0, 0x2ffb), (0x3001, 0x303f), (0x3041, 0x3096), (0x3099, 0x30ff), (0x3105, 0x312f),
    (0x3131, 0x318e), (0x3190, 0x31e3), (0x31f0, 0x321e), (0x3220, 0x9ffc), (0xa000, 0xa48c),
    (0xa490, 0xa4c6), (0xa4d0, 0xa62b), (0xa640, 0xa6f7), (0xa700, 0xa7bf), (0xa7c2, 0xa7ca),
    (0xa7f5, 0xa82c), (0xa830, 0xa839), (0xa840, 0xa877), (0xa880, 0xa8c5), (0xa8ce, 0xa8d9),
    (0xa8e0, 0xa953), (0xa95f, 0xa97c), (0xa980, 0xa9cd), (0xa9cf, 0xa9d9), (0xa9de, 0xa9fe),
    (0xaa00, 0xaa36), (0xaa40, 0xaa4d), (0xaa50, 0xaa59), (0xaa5c, 0xaac2), (0xaadb, 0xaaf6),
    (0xab01, 0xab06), (0xab09, 0xab0e), (0xab11, 0xab16), (0xab20, 0xab26), (0xab28, 0xab2e),
    (0xab30, 0xab6b), (0xab70, 0xabed), (0xabf0, 0xabf9), (0xac00, 0xd7a3), (0xd7b0, 0xd7c6),
    (0xd7cb, 0xd7fb), (0xf900, 0xfa6d), (0xfa70, 0xfad9), (0xfb00, 0xfb06), (0xfb13, 0xfb17),
    (0xfb1d, 0xfb36), (0xfb38, 0xfb3c), (0xfb3e, 0xfb3e), (0xfb40, 0xfb41), (0xfb43, 0xfb44),
    (0xfb46, 0xfbc1), (0xfbd3, 0xfd3f), (0xfd50, 0xfd8f), (0xfd92, 0xfdc7), (0xfdf0, 0xfdfd),
    (0xfe00, 0xfe19), (0xfe20, 0xfe52), (0xfe54, 0xfe66), (0xfe68, 0xfe6b), (0xfe70, 0xfe74),
    (0xfe76, 0xfefc), (0xff01, 0xffbe), (0xffc2, 0xffc7), (0xffca, 0xffcf), (0xffd2, 0xffd7),
    (0xffda, 0xffdc), (0xffe0, 0xffe6), (0xffe8, 0xffee), (0xfffc, 0xfffd), (0x10000, 0x1000b),
    (0x1000d, 0x10026), (0x10028, 0x1003a), (0x1003c, 0x1003d), (0x1003f, 0x1004d), (0x10050, 0x1005d),
    (0x10080, 0x100fa), (0x10100, 0x10102), (0x10107, 0x10133), (0x10137, 0x1018e), (0x10190, 0x1019c),
    (0x101a0, 0x101a0), (0x101d0, 0x101fd), (0x10280, 0x1029c), (0x102a0, 0x102d0), (0x102e0, 0x102fb),
    (0x10300, 0x10323), (0x1032d, 0x1034a), (0x10350, 0x1037a), (0x10380, 0x1039d), (0x1039f, 0x103c3),
    (0x103c8, 0x103d5), (0x10400, 0x1049d), (0x104a0, 0x104a9), (0x104b0, 0x104d3), (0x104d8, 0x104fb),
    (0x10500, 0x10527), (0x10530, 0x10563), (0x1056f, 0x1056f), (0x10600, 0x10736), (0x10740, 0x10755),
    (0x10760, 0x10767), (0x10800, 0x10805), (0x10808, 0x10808), (0x1080a, 0x10835), (0x10837, 0x10838),
    (0x1083c, 0x1083c), (0x1083f, 0x10855), (0x10857, 0x1089e), (0x108a7, 0x108af), (0x108e0, 0x108f2),
    (0x108f4, 0x108f5), (0x108fb, 0x1091b), (0x1091f, 0x10939), (0x1093f, 0x1093f), (0x10980, 0x109b7),
    (0x109bc, 0x109cf), (0x109d2, 0x10a03), (0x10a05, 0x10a06), (0x10a0c, 0x10a13), (0x10a15, 0x10a17),
    (0x10a19, 0x10a35), (0x10a38, 0x10a3a), (0x10a3f, 0x10a48), (0x10a50, 0x10a58), (0x10a60, 0x10a9f),
    (0x10ac0, 0x10ae6), (0x10aeb, 0x10af6), (0x10b00, 0x10b35), (0x10b39, 0x10b55), (0x10b58, 0x10b72),
    (0x10b78, 0x10b91), (0x10b99, 0x10b9c), (0x10ba9, 0x10baf), (0x10c00, 0x10c48), (0x10c80, 0x10cb2),
    (0x10cc0, 0x10cf2), (0x10cfa, 0x10d27), (0x10d30, 0x10d39), (0x10e60, 0x10e7e), (0x10e80, 0x10ea9),
    (0x10eab, 0x10ead), (0x10eb0, 0x10eb1), (0x10f00, 0x10f27), (0x10f30, 0x10f59), (0x10fb0, 0x10fcb),
    (0x10fe0, 0x10ff6), (0x11000, 0x1104d), (0x11052, 0x1106f), (0x1107f, 0x110bc), (0x110be, 0x110c1),
    (0x110d0, 0x110e8), (0x110f0, 0x110f9), (0x11100, 0x11134), (0x11136, 0x11147), (0x11150, 0x11176),
    (0x11180, 0x111df), (0x111e1, 0x111f4), (0x11200, 0x11211), (0x11213, 0x1123e), (0x11280, 0x11286),
    (0x11288, 0x11288), (0x1128a, 0x1128d), (0x1128f, 0x1129d), (0x1129f, 0x112a9), (0x112b0, 0x112ea),
    (0x112f0, 0x112f9), (0x11300, 0x11303), (0x11305, 0x1130c), (0x1130f, 0x11310), (0x11313, 0x11328),
    (0x1132a, 0x11330), (0x11332, 0x11333), (0x11335, 0x11339), (0x1133b, 0x11344), (0x11347, 0x11348),
    (0x1134b, 0x1134d), (0x11350, 0x11350), (0x11357, 0x11357), (0x1135d, 0x11363), (0x11366, 0x1136c),
    (0x11370, 0x11374), (0x11400, 0x1145b), (0x1145d, 0x11461), (0x11480, 0x114c7), (0x114d0, 0x114d9),
    (0x11580, 0x115b5), (0x115b8, 0x115dd), (0x11600, 0x11644), (0x11650, 0x11659), (0x11660, 0x1166c),
    (0x11680, 0x116b8), (0x116c0, 0x116c9), (0x11700, 0x1171a), (0x1171d, 0x1172b), (0x11730, 0x1173f),
    (0x11800, 0x1183b), (0x118a0, 0x118f2), (0x118ff, 0x11906), (0x11909, 0x11909), (0x1190c, 0x11913),
    (0x11915, 0x11916), (0x11918, 0x11935), (0x11937, 0x11938), (0x1193b, 0x11946), (0x11950, 0x11959),
    (0x119a0, 0x119a7), (0x119aa, 0x119d7), (0x119da, 0x119e4), (0x11a00, 0x11a47), (0x11a50, 0x11aa2),
    (0x11ac0, 0x11af8), (0x11c00, 0x11c08), (0x11c0a, 0x11c36), (0x11c38, 0x11c45), (0x11c50, 0x11c6c),
    (0x11c70, 0x11c8f), (0x11c92, 0x11ca7), (0x11ca9, 0x11cb6), (0x11d00, 0x11d06), (0x11d08, 0x11d09),
    (0x11d0b, 0x11d36), (0x11d3a, 0x11d3a), (0x11d3c, 0x11d3d), (0x11d3f, 0x11d47), (0x11d50, 0x11d59),
    (0x11d60, 0x11d65), (0x11d67, 0x11d68), (0x11d6a, 0x11d8e), (0x11d90, 0x11d91), (0x11d93, 0x11d98),
    (0x11da0, 0x11da9), (0x11ee0, 0x11ef8), (0x11fb0, 0x11fb0), (0x11fc0, 0x11ff1), (0x11fff, 0x12399),
    (0x12400, 0x1246e), (0x12470, 0x12474), (0x12480, 0x12543), (0x13000, 0x1342e), (0x14400, 0x14646),
    (0x16800, 0x16a38), (0x16a40, 0x16a5e), (0x16a60, 0x16a69), (0x16a6e, 0x16a6f), (0x16ad0, 0x16aed),
    (0x16af0, 0x16af5), (0x16b00, 0x16b45), (0x16b50, 0x16b59), (0x16b5b, 0x16b61), (0x16b63, 0x16b77),
    (0x16b7d, 0x16b8f), (0x16e40, 0x16e9a), (0x16f00, 0x16f4a), (0x16f4f, 0x16f87), (0x16f8f, 0x16f9f),
    (0x16fe0, 0x16fe4), (0x16ff0, 0x16ff1), (0x17000, 0x187f7), (0x18800, 0x18cd5), (0x18d00, 0x18d08),
    (0x1b000, 0x1b11e), (0x1b150, 0x1b152), (0x1b164, 0x1b167), (0x1b170, 0x1b2fb), (0x1bc00, 0x1bc6a),
    (0x1bc70, 0x1bc7c), (0x1bc80, 0x1bc88), (0x1bc90, 0x1bc99), (0x1bc9c, 0x1bc9f), (0x1d000, 0x1d0f5),
    (0x1d100, 0x1d126), (0x1d129, 0x1d172), (0x1d17b, 0x1d1e8), (0x1d200, 0x1d245), (0x1d2e0, 0x1d2f3),
    (0x1d300, 0x1d356), (0x1d360, 0x1d378), (0x1d400, 0x1d454), (0x1d456, 0x1d49c), (0x1d49e, 0x1d49f),
    (0x1d4a2, 0x1d4a2), (0x1d4a5, 0x1d4a6), (0x1d4a9, 0x1d4ac), (0x1d4ae, 0x1d4b9), (0x1d4bb, 0x1d4bb),
    (0x1d4bd, 0x1d4c3), (0x1d4c5, 0x1d505), (0x1d507, 0x1d50a), (0x1d50d, 0x1d514), (0x1d516, 0x1d51c),
    (0x1d51e, 0x1d539), (0x1d53b, 0x1d53e), (0x1d540, 0x1d544), (0x1d546, 0x1d546), (0x1d54a, 0x1d550),
    (0x1d552, 0x1d6a5), (0x1d6a8, 0x1d7cb), (0x1d7ce, 0x1da8b), (0x1da9b, 0x1da9f), (0x1daa1, 0x1daaf),
    (0x1e000, 0x1e006), (0x1e008, 0x1e018), (0x1e01b, 0x1e021), (0x1e023, 0x1e024), (0x1e026, 0x1e02a),
    (0x1e100, 0x1e12c), (0x1e130, 0x1e13d), (0x1e140, 0x1e149), (0x1e14e, 0x1e14f), (0x1e2c0, 0x1e2f9),
    (0x1e2ff, 0x1e2ff), (0x1e800, 0x1e8c4), (0x1e8c7, 0x1e8d6), (0x1e900, 0x1e94b), (0x1e950, 0x1e959),
    (0x1e95e, 0x1e95f), (0x1ec71, 0x1ecb4), (0x1ed01, 0x1ed3d), (0x1ee00, 0x1ee03), (0x1ee05, 0x1ee1f),
    (0x1ee21, 0x1ee22), (0x1ee24, 0x1ee24), (0x1ee27, 0x1ee27), (0x1ee29, 0x1ee32), (0x1ee34, 0x1ee37),
    (0x1ee39, 0x1ee39), (0x1ee3b, 0x1ee3b), (0x1ee42, 0x1ee42), (0x1ee47, 0x1ee47), (0x1ee49, 0x1ee49),
    (0x1ee4b, 0x1ee4b), (0x1ee4d, 0x1ee4f), (0x1ee51, 0x1ee52), (0x1ee54, 0x1ee54), (0x1ee57, 0x1ee57),
    (0x1ee59, 0x1ee59), (0x1ee5b, 0x1ee5b), (0x1ee5d, 0x1ee5d), (0x1ee5f, 0x1ee5f), (0x1ee61, 0x1ee62),
    (0x1ee64, 0x1ee64), (0x1ee67, 0x1ee6a), (0x1ee6c, 0x1ee72), (0x1ee74, 0x1ee77), (0x1ee79, 0x1ee7c),
    (0x1ee7e, 0x1ee7e), (0x1ee80, 0x1ee89), (0x1ee8b, 0x1ee9b), (0x1eea1, 0x1eea3), (0x1eea5, 0x1eea9),
    (0x1eeab, 0x1eebb), (0x1eef0, 0x1eef1), (0x1f000, 0x1f02b), (0x1f030, 0x1f093), (0x1f0a0, 0x1f0ae),
    (0x1f0b1, 0x1f0bf), (0x1f0c1, 0x1f0cf), (0x1f0d1, 0x1f0f5), (0x1f100, 0x1f1ad), (0x1f1e6, 0x1f202),
    (0x1f210, 0x1f23b), (0x1f240, 0x1f248), (0x1f250, 0x1f251), (0x1f260, 0x1f265), (0x1f300, 0x1f6d7),
    (0x1f6e0, 0x1f6ec), (0x1f6f0, 0x1f6fc), (0x1f700, 0x1f773), (0x1f780, 0x1f7d8), (0x1f7e0, 0x1f7eb),
    (0x1f800, 0x1f80b), (0x1f810, 0x1f847), (0x1f850, 0x1f859), (0x1f860, 0x1f887), (0x1f890, 0x1f8ad),
    (0x1f8b0, 0x1f8b1), (0x1f900, 0x1f978), (0x1f97a, 0x1f9cb), (0x1f9cd, 0x1fa53), (0x1fa60, 0x1fa6d),
    (0x1fa70, 0x1fa74), (0x1fa78, 0x1fa7a), (0x1fa80, 0x1fa86), (0x1fa90, 0x1faa8), (0x1fab0, 0x1fab6),
    (0x1fac0, 0x1fac2), (0x1fad0, 0x1fad6), (0x1fb00, 0x1fb92), (0x1fb94, 0x1fbca), (0x1fbf0, 0x1fbf9),
    (0x20000, 0x2a6dd), (0x2a700, 0x2b734), (0x2b740, 0x2b81d), (0x2b820, 0x2cea1), (0x2ceb0, 0x2ebe0),
    (0x2f800, 0x2fa1d), (0x30000, 0x3134a), (0xe0100, 0xe01ef),
];

/// Go 1.19 `unicode.CaseRanges` (Unicode 13.0.0): (lo, hi, upper delta, lower delta);
/// a delta of `UPPER_LOWER` marks an alternating Upper/Lower run.
#[rustfmt::skip]
const CASE_RANGES: &[(u32, u32, i32, i32)] = &[
    (0x41, 0x5a, 0, 32), (0x61, 0x7a, -32, 0),
    (0xb5, 0xb5, 743, 0), (0xc0, 0xd6, 0, 32),
    (0xd8, 0xde, 0, 32), (0xe0, 0xf6, -32, 0),
    (0xf8, 0xfe, -32, 0), (0xff, 0xff, 121, 0),
    (0x100, 0x12f, UPPER_LOWER, UPPER_LOWER), (0x130, 0x130, 0, -199),
    (0x131, 0x131, -232, 0), (0x132, 0x137, UPPER_LOWER, UPPER_LOWER),
    (0x139, 0x148, UPPER_LOWER, UPPER_LOWER), (0x14a, 0x177, UPPER_LOWER, UPPER_LOWER),
    (0x178, 0x178, 0, -121), (0x179, 0x17e, UPPER_LOWER, UPPER_LOWER),
    (0x17f, 0x17f, -300, 0), (0x180, 0x180, 195, 0),
    (0x181, 0x181, 0, 210), (0x182, 0x185, UPPER_LOWER, UPPER_LOWER),
    (0x186, 0x186, 0, 206), (0x187, 0x188, UPPER_LOWER, UPPER_LOWER),
    (0x189, 0x18a, 0, 205), (0x18b, 0x18c, UPPER_LOWER, UPPER_LOWER),
    (0x18e, 0x18e, 0, 79), (0x18f, 0x18f, 0, 202),
    (0x190, 0x190, 0, 203), (0x191, 0x192, UPPER_LOWER, UPPER_LOWER),
    (0x193, 0x193, 0, 205), (0x194, 0x194, 0, 207),
    (0x195, 0x195, 97, 0), (0x196, 0x196, 0, 211),
    (0x197, 0x197, 0, 209), (0x198, 0x199, UPPER_LOWER, UPPER_LOWER),
    (0x19a, 0x19a, 163, 0), (0x19c, 0x19c, 0, 211),
    (0x19d, 0x19d, 0, 213), (0x19e, 0x19e, 130, 0),
    (0x19f, 0x19f, 0, 214), (0x1a0, 0x1a5, UPPER_LOWER, UPPER_LOWER),
    (0x1a6, 0x1a6, 0, 218), (0x1a7, 0x1a8, UPPER_LOWER, UPPER_LOWER),
    (0x1a9, 0x1a9, 0, 218), (0x1ac, 0x1ad, UPPER_LOWER, UPPER_LOWER),
    (0x1ae, 0x1ae, 0, 218), (0x1af, 0x1b0, UPPER_LOWER, UPPER_LOWER),
    (0x1b1, 0x1b2, 0, 217), (0x1b3, 0x1b6, UPPER_LOWER, UPPER_LOWER),
    (0x1b7, 0x1b7, 0, 219), (0x1b8, 0x1b9, UPPER_LOWER, UPPER_LOWER),
    (0x1bc, 0x1bd, UPPER_LOWER, UPPER_LOWER), (0x1bf, 0x1bf, 56, 0),
    (0x1c4, 0x1c4, 0, 2), (0x1c5, 0x1c5, -1, 1),
    (0x1c6, 0x1c6, -2, 0), (0x1c7, 0x1c7, 0, 2),
    (0x1c8, 0x1c8, -1, 1), (0x1c9, 0x1c9, -2, 0),
    (0x1ca, 0x1ca, 0, 2), (0x1cb, 0x1cb, -1, 1),
    (0x1cc, 0x1cc, -2, 0), (0x1cd, 0x1dc, UPPER_LOWER, UPPER_LOWER),
    (0x1dd, 0x1dd, -79, 0), (0x1de, 0x1ef, UPPER_LOWER, UPPER_LOWER),
    (0x1f1, 0x1f1, 0, 2), (0x1f2, 0x1f2, -1, 1),
    (0x1f3, 0x1f3, -2, 0), (0x1f4, 0x1f5, UPPER_LOWER, UPPER_LOWER),
    (0x1f6, 0x1f6, 0, -97), (0x1f7, 0x1f7, 0, -56),
    (0x1f8, 0x21f, UPPER_LOWER, UPPER_LOWER), (0x220, 0x220, 0, -130),
    (0x222, 0x233, UPPER_LOWER, UPPER_LOWER), (0x23a, 0x23a, 0, 10795),
    (0x23b, 0x23c, UPPER_LOWER, UPPER_LOWER), (0x23d, 0x23d, 0, -163),
    (0x23e, 0x23e, 0, 10792), (0x23f, 0x240, 10815, 0),
    (0x241, 0x242, UPPER_LOWER, UPPER_LOWER), (0x243, 0x243, 0, -195),
    (0x244, 0x244, 0, 69), (0x245, 0x245, 0, 71),
    (0x246, 0x24f, UPPER_LOWER, UPPER_LOWER), (0x250, 0x250, 10783, 0),
    (0x251, 0x251, 10780, 0), (0x252, 0x252, 10782, 0),
    (0x253, 0x253, -210, 0), (0x254, 0x254, -206, 0),
    (0x256, 0x257, -205, 0), (0x259, 0x259, -202, 0),
    (0x25b, 0x25b, -203, 0), (0x25c, 0x25c, 42319, 0),
    (0x260, 0x260, -205, 0), (0x261, 0x261, 42315, 0),
    (0x263, 0x263, -207, 0), (0x265, 0x265, 42280, 0),
    (0x266, 0x266, 42308, 0), (0x268, 0x268, -209, 0),
    (0x269, 0x269, -211, 0), (0x26a, 0x26a, 42308, 0),
    (0x26b, 0x26b, 10743, 0), (0x26c, 0x26c, 42305, 0),
    (0x26f, 0x26f, -211, 0), (0x271, 0x271, 10749, 0),
    (0x272, 0x272, -213, 0), (0x275, 0x275, -214, 0),
    (0x27d, 0x27d, 10727, 0), (0x280, 0x280, -218, 0),
    (0x282, 0x282, 42307, 0), (0x283, 0x283, -218, 0),
    (0x287, 0x287, 42282, 0), (0x288, 0x288, -218, 0),
    (0x289, 0x289, -69, 0), (0x28a, 0x28b, -217, 0),
    (0x28c, 0x28c, -71, 0), (0x292, 0x292, -219, 0),
    (0x29d, 0x29d, 42261, 0), (0x29e, 0x29e, 42258, 0),
    (0x345, 0x345, 84, 0), (0x370, 0x373, UPPER_LOWER, UPPER_LOWER),
    (0x376, 0x377, UPPER_LOWER, UPPER_LOWER), (0x37b, 0x37d, 130, 0),
    (0x37f, 0x37f, 0, 116), (0x386, 0x386, 0, 38),
    (0x388, 0x38a, 0, 37), (0x38c, 0x38c, 0, 64),
    (0x38e, 0x38f, 0, 63), (0x391, 0x3a1, 0, 32),
    (0x3a3, 0x3ab, 0, 32), (0x3ac, 0x3ac, -38, 0),
    (0x3ad, 0x3af, -37, 0), (0x3b1, 0x3c1, -32, 0),
    (0x3c2, 0x3c2, -31, 0), (0x3c3, 0x3cb, -32, 0),
    (0x3cc, 0x3cc, -64, 0), (0x3cd, 0x3ce, -63, 0),
    (0x3cf, 0x3cf, 0, 8), (0x3d0, 0x3d0, -62, 0),
    (0x3d1, 0x3d1, -57, 0), (0x3d5, 0x3d5, -47, 0),
    (0x3d6, 0x3d6, -54, 0), (0x3d7, 0x3d7, -8, 0),
    (0x3d8, 0x3ef, UPPER_LOWER, UPPER_LOWER), (0x3f0, 0x3f0, -86, 0),
    (0x3f1, 0x3f1, -80, 0), (0x3f2, 0x3f2, 7, 0),
    (0x3f3, 0x3f3, -116, 0), (0x3f4, 0x3f4, 0, -60),
    (0x3f5, 0x3f5, -96, 0), (0x3f7, 0x3f8, UPPER_LOWER, UPPER_LOWER),
    (0x3f9, 0x3f9, 0, -7), (0x3fa, 0x3fb, UPPER_LOWER, UPPER_LOWER),
    (0x3fd, 0x3ff, 0, -130), (0x400, 0x40f, 0, 80),
    (0x410, 0x42f, 0, 32), (0x430, 0x44f, -32, 0),
    (0x450, 0x45f, -80, 0), (0x460, 0x481, UPPER_LOWER, UPPER_LOWER),
    (0x48a, 0x4bf, UPPER_LOWER, UPPER_LOWER), (0x4c0, 0x4c0, 0, 15),
    (0x4c1, 0x4ce, UPPER_LOWER, UPPER_LOWER), (0x4cf, 0x4cf, -15, 0),
    (0x4d0, 0x52f, UPPER_LOWER, UPPER_LOWER), (0x531, 0x556, 0, 48),
    (0x561, 0x586, -48, 0), (0x10a0, 0x10c5, 0, 7264),
    (0x10c7, 0x10c7, 0, 7264), (0x10cd, 0x10cd, 0, 7264),
    (0x10d0, 0x10fa, 3008, 0), (0x10fd, 0x10ff, 3008, 0),
    (0x13a0, 0x13ef, 0, 38864), (0x13f0, 0x13f5, 0, 8),
    (0x13f8, 0x13fd, -8, 0), (0x1c80, 0x1c80, -6254, 0),
    (0x1c81, 0x1c81, -6253, 0), (0x1c82, 0x1c82, -6244, 0),
    (0x1c83, 0x1c84, -6242, 0), (0x1c85, 0x1c85, -6243, 0),
    (0x1c86, 0x1c86, -6236, 0), (0x1c87, 0x1c87, -6181, 0),
    (0x1c88, 0x1c88, 35266, 0), (0x1c90, 0x1cba, 0, -3008),
    (0x1cbd, 0x1cbf, 0, -3008), (0x1d79, 0x1d79, 35332, 0),
    (0x1d7d, 0x1d7d, 3814, 0), (0x1d8e, 0x1d8e, 35384, 0),
    (0x1e00, 0x1e95, UPPER_LOWER, UPPER_LOWER), (0x1e9b, 0x1e9b, -59, 0),
    (0x1e9e, 0x1e9e, 0, -7615), (0x1ea0, 0x1eff, UPPER_LOWER, UPPER_LOWER),
    (0x1f00, 0x1f07, 8, 0), (0x1f08, 0x1f0f, 0, -8),
    (0x1f10, 0x1f15, 8, 0), (0x1f18, 0x1f1d, 0, -8),
    (0x1f20, 0x1f27, 8, 0), (0x1f28, 0x1f2f, 0, -8),
    (0x1f30, 0x1f37, 8, 0), (0x1f38, 0x1f3f, 0, -8),
    (0x1f40, 0x1f45, 8, 0), (0x1f48, 0x1f4d, 0, -8),
    (0x1f51, 0x1f51, 8, 0), (0x1f53, 0x1f53, 8, 0),
    (0x1f55, 0x1f55, 8, 0), (0x1f57, 0x1f57, 8, 0),
    (0x1f59, 0x1f59, 0, -8), (0x1f5b, 0x1f5b, 0, -8),
    (0x1f5d, 0x1f5d, 0, -8), (0x1f5f, 0x1f5f, 0, -8),
    (0x1f60, 0x1f67, 8, 0), (0x1f68, 0x1f6f, 0, -8),
    (0x1f70, 0x1f71, 74, 0), (0x1f72, 0x1f75, 86, 0),
    (0x1f76, 0x1f77, 100, 0), (0x1f78, 0x1f79, 128, 0),
    (0x1f7a, 0x1f7b, 112, 0), (0x1f7c, 0x1f7d, 126, 0),
    (0x1f80, 0x1f87, 8, 0), (0x1f88, 0x1f8f, 0, -8),
    (0x1f90, 0x1f97, 8, 0), (0x1f98, 0x1f9f, 0, -8),
    (0x1fa0, 0x1fa7, 8, 0), (0x1fa8, 0x1faf, 0, -8),
    (0x1fb0, 0x1fb1, 8, 0), (0x1fb3, 0x1fb3, 9, 0),
    (0x1fb8, 0x1fb9, 0, -8), (0x1fba, 0x1fbb, 0, -74),
    (0x1fbc, 0x1fbc, 0, -9), (0x1fbe, 0x1fbe, -7205, 0),
    (0x1fc3, 0x1fc3, 9, 0), (0x1fc8, 0x1fcb, 0, -86),
    (0x1fcc, 0x1fcc, 0, -9), (0x1fd0, 0x1fd1, 8, 0),
    (0x1fd8, 0x1fd9, 0, -8), (0x1fda, 0x1fdb, 0, -100),
    (0x1fe0, 0x1fe1, 8, 0), (0x1fe5, 0x1fe5, 7, 0),
    (0x1fe8, 0x1fe9, 0, -8), (0x1fea, 0x1feb, 0, -112),
    (0x1fec, 0x1fec, 0, -7), (0x1ff3, 0x1ff3, 9, 0),
    (0x1ff8, 0x1ff9, 0, -128), (0x1ffa, 0x1ffb, 0, -126),
    (0x1ffc, 0x1ffc, 0, -9), (0x2126, 0x2126, 0, -7517),
    (0x212a, 0x212a, 0, -8383), (0x212b, 0x212b, 0, -8262),
    (0x2132, 0x2132, 0, 28), (0x214e, 0x214e, -28, 0),
    (0x2160, 0x216f, 0, 16), (0x2170, 0x217f, -16, 0),
    (0x2183, 0x2184, UPPER_LOWER, UPPER_LOWER), (0x24b6, 0x24cf, 0, 26),
    (0x24d0, 0x24e9, -26, 0), (0x2c00, 0x2c2e, 0, 48),
    (0x2c30, 0x2c5e, -48, 0), (0x2c60, 0x2c61, UPPER_LOWER, UPPER_LOWER),
    (0x2c62, 0x2c62, 0, -10743), (0x2c63, 0x2c63, 0, -3814),
    (0x2c64, 0x2c64, 0, -10727), (0x2c65, 0x2c65, -10795, 0),
    (0x2c66, 0x2c66, -10792, 0), (0x2c67, 0x2c6c, UPPER_LOWER, UPPER_LOWER),
    (0x2c6d, 0x2c6d, 0, -10780), (0x2c6e, 0x2c6e, 0, -10749),
    (0x2c6f, 0x2c6f, 0, -10783), (0x2c70, 0x2c70, 0, -10782),
    (0x2c72, 0x2c73, UPPER_LOWER, UPPER_LOWER), (0x2c75, 0x2c76, UPPER_LOWER, UPPER_LOWER),
    (0x2c7e, 0x2c7f, 0, -10815), (0x2c80, 0x2ce3, UPPER_LOWER, UPPER_LOWER),
    (0x2ceb, 0x2cee, UPPER_LOWER, UPPER_LOWER), (0x2cf2, 0x2cf3, UPPER_LOWER, UPPER_LOWER),
    (0x2d00, 0x2d25, -7264, 0), (0x2d27, 0x2d27, -7264, 0),
    (0x2d2d, 0x2d2d, -7264, 0), (0xa640, 0xa66d, UPPER_LOWER, UPPER_LOWER),
    (0xa680, 0xa69b, UPPER_LOWER, UPPER_LOWER), (0xa722, 0xa72f, UPPER_LOWER, UPPER_LOWER),
    (0xa732, 0xa76f, UPPER_LOWER, UPPER_LOWER), (0xa779, 0xa77c, UPPER_LOWER, UPPER_LOWER),
    (0xa77d, 0xa77d, 0, -35332), (0xa77e, 0xa787, UPPER_LOWER, UPPER_LOWER),
    (0xa78b, 0xa78c, UPPER_LOWER, UPPER_LOWER), (0xa78d, 0xa78d, 0, -42280),
    (0xa790, 0xa793, UPPER_LOWER, UPPER_LOWER), (0xa794, 0xa794, 48, 0),
    (0xa796, 0xa7a9, UPPER_LOWER, UPPER_LOWER), (0xa7aa, 0xa7aa, 0, -42308),
    (0xa7ab, 0xa7ab, 0, -42319), (0xa7ac, 0xa7ac, 0, -42315),
    (0xa7ad, 0xa7ad, 0, -42305), (0xa7ae, 0xa7ae, 0, -42308),
    (0xa7b0, 0xa7b0, 0, -42258), (0xa7b1, 0xa7b1, 0, -42282),
    (0xa7b2, 0xa7b2, 0, -42261), (0xa7b3, 0xa7b3, 0, 928),
    (0xa7b4, 0xa7bf, UPPER_LOWER, UPPER_LOWER), (0xa7c2, 0xa7c3, UPPER_LOWER, UPPER_LOWER),
    (0xa7c4, 0xa7c4, 0, -48), (0xa7c5, 0xa7c5, 0, -42307),
    (0xa7c6, 0xa7c6, 0, -35384), (0xa7c7, 0xa7ca, UPPER_LOWER, UPPER_LOWER),
    (0xa7f5, 0xa7f6, UPPER_LOWER, UPPER_LOWER), (0xab53, 0xab53, -928, 0),
    (0xab70, 0xabbf, -38864, 0), (0xff21, 0xff3a, 0, 32),
    (0xff41, 0xff5a, -32, 0), (0x10400, 0x10427, 0, 40),
    (0x10428, 0x1044f, -40, 0), (0x104b0, 0x104d3, 0, 40),
    (0x104d8, 0x104fb, -40, 0), (0x10c80, 0x10cb2, 0, 64),
    (0x10cc0, 0x10cf2, -64, 0), (0x118a0, 0x118bf, 0, 32),
    (0x118c0, 0x118df, -32, 0), (0x16e40, 0x16e5f, 0, 32),
    (0x16e60, 0x16e7f, -32, 0), (0x1e900, 0x1e921, 0, 34),
    (0x1e922, 0x1e943, -34, 0),
];

// Expected values below were produced by Go 1.19.8 itself (fmt.Sprintf/Sprint/Sprintln,
// text/template's escapers, strings.ToUpper/ToLower on the same operands).
#[cfg(test)]
#[allow(clippy::approx_constant)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::from(x)
    }

    fn i(x: i64) -> Value {
        Value::from(x)
    }

    fn u(x: u64) -> Value {
        Value::from(x)
    }

    fn f(x: f64) -> Value {
        Value::from(x)
    }

    fn b(x: bool) -> Value {
        Value::from(x)
    }

    fn nil() -> Value {
        Value::from(())
    }

    fn list(items: Vec<Value>) -> Value {
        Value::from(items)
    }

    fn map(pairs: Vec<(&str, Value)>) -> Value {
        Value::from_pairs(pairs)
    }

    fn kv(key: &str, value: &str) -> Value {
        Value::from_object(KvPair {
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }

    #[test]
    fn actions_and_no_value() {
        assert_eq!(print_action(&no_value()), "<no value>");
        assert_eq!(print_action(&Value::UNDEFINED), "<no value>");
        assert_eq!(print_action(&nil()), "<no value>");
        assert_eq!(print_action(&s("x")), "x");
        assert_eq!(print_action(&f(1e6)), "1e+06");
        assert_eq!(print_action(&f(3.0)), "3");
        assert_eq!(print_action(&list(vec![nil(), i(1)])), "[<nil> 1]");
        assert_eq!(print_action(&kv("/k", "v")), "{/k v}");
        assert!(is_no_value(&no_value()));
        assert!(is_no_value(&Value::UNDEFINED));
        assert!(!is_no_value(&nil()));
        assert!(!no_value().is_true());
        assert_eq!(no_value().to_string(), "<no value>");
        // Inside fmt a missing value is a nil interface: Go's
        // {{printf "%v|%d" .missing .missing}} and {{print .missing "a"}}.
        assert_eq!(
            sprintf("%v|%d", &[no_value(), Value::UNDEFINED]),
            "<nil>|%!d(<nil>)"
        );
        assert_eq!(sprint(&[no_value(), s("a")]), "<nil>a");
        assert_eq!(type_name(&no_value()), "<nil>");
        // A float that happens to be integral is still a float64.
        assert_eq!(sprintf("%v|%d", &[f(3.0), f(3.0)]), "3|%!d(float64=3)");
        assert_eq!(
            sprintf("%d|%T", &[Value::from(5i128), Value::from(5i128)]),
            "5|int"
        );
    }

    #[test]
    fn conformance_cases() {
        assert_eq!(
            sprintf(
                "%s|%d|%v|%q|%x|%t",
                &[s("str"), i(42), f(3.5), s("quo\"te"), i(255), b(true)]
            ),
            "str|42|3.5|\"quo\\\"te\"|ff|true"
        );
        assert_eq!(
            sprintf(
                "%v %v %v",
                &[list(vec![s("a"), s("b")]), map(vec![("k", i(1))]), nil()]
            ),
            "[a b] map[k:1] <nil>"
        );
        assert_eq!(sprintf("%5.2f", &[f(3.14159)]), " 3.14");
        assert_eq!(sprintf("%-10s", &[s("left")]), "left      ");
        assert_eq!(sprintf("%10s", &[s("right")]), "     right");
        assert_eq!(sprintf("%03d", &[i(7)]), "007");
        assert_eq!(sprintf("%+d", &[i(5)]), "+5");
        assert_eq!(sprintf("%8.3s", &[s("abcdef")]), "     abc");
        assert_eq!(sprintf("%X", &[i(3054)]), "BEE");
        assert_eq!(sprintf("%o", &[i(8)]), "10");
        assert_eq!(sprintf("%b", &[i(5)]), "101");
        assert_eq!(sprintf("%e", &[f(1234.5678)]), "1.234568e+03");
        assert_eq!(sprintf("%g", &[f(1.2e-05)]), "1.2e-05");
        assert_eq!(sprintf("%c", &[i(65)]), "A");
        assert_eq!(sprintf("%U", &[i(128512)]), "U+1F600");
        assert_eq!(sprintf("%x", &[s("hi")]), "6869");
        assert_eq!(sprintf("%.0f", &[f(2.5)]), "2");
        assert_eq!(sprintf("%.0f", &[f(3.5)]), "4");
        assert_eq!(sprintf("a %z b", &[i(1)]), "a %!z(int=1) b");
        assert_eq!(
            sprintf("%_d|%!|%", &[i(2)]),
            "%!_(int=2)d|%!!(MISSING)|%!(NOVERB)"
        );
        assert_eq!(
            sprintf("%s and %s and %d", &[s("one")]),
            "one and %!s(MISSING) and %!d(MISSING)"
        );
        assert_eq!(
            sprintf("just %s", &[s("one"), s("two"), i(3)]),
            "just one%!(EXTRA string=two, int=3)"
        );
        assert_eq!(sprintf("none", &[i(1)]), "none%!(EXTRA int=1)");
        assert_eq!(sprintf("%d", &[s("seven")]), "%!d(string=seven)");
        assert_eq!(sprintf("%s", &[i(7)]), "%!s(int=7)");
        assert_eq!(sprintf("%t", &[s("yes")]), "%!t(string=yes)");
        assert_eq!(sprintf("%d", &[f(2.5)]), "%!d(float64=2.5)");
        assert_eq!(sprintf("100%%", &[]), "100%");
        assert_eq!(
            sprintf("%v %.0f %d %v", &[f(8080.0), f(8080.0), f(8080.0), f(0.5)]),
            "8080 8080 %!d(float64=8080) 0.5"
        );
        assert_eq!(
            sprint(&[
                i(1),
                i(2),
                s("a"),
                i(3),
                s("b"),
                s("c"),
                f(4.5),
                b(true),
                b(false)
            ]),
            "1 2a3bc4.5 true false"
        );
        assert_eq!(sprint(&[s("x"), i(1)]), "x1");
        assert_eq!(sprint(&[i(1), s("x")]), "1x");
        assert_eq!(sprint(&[]), "");
        assert_eq!(sprintln(&[s("a"), i(1), s("b")]), "a 1 b\n");
        assert_eq!(sprintln(&[]), "\n");
        assert_eq!(sprint(&[kv("/fruit/f1", "pear")]), "{/fruit/f1 pear}");
        assert_eq!(
            sprint(&[list(vec![
                kv("/fruit/f1", "pear"),
                kv("/fruit/f10", "banana")
            ])]),
            "[{/fruit/f1 pear} {/fruit/f10 banana}]"
        );
        assert_eq!(
            sprint(&[list(vec![f(1.5), f(2.0), f(3e+10), f(-0.25)])]),
            "[1.5 2 3e+10 -0.25]"
        );
        assert_eq!(sprint(&[list(vec![s("")])]), "[]");
        assert_eq!(sprint(&[list(vec![])]), "[]");
        assert_eq!(
            sprint(&[map(vec![("k", s("v")), ("n", i(1))])]),
            "map[k:v n:1]"
        );
        assert_eq!(sprint(&[f(8080.0)]), "8080");
        assert_eq!(sprint(&[f(1.5)]), "1.5");
        assert_eq!(sprint(&[f(999999.0)]), "999999");
        assert_eq!(sprint(&[f(1e+06)]), "1e+06");
        assert_eq!(sprint(&[f(1.048576e+06)]), "1.048576e+06");
        assert_eq!(sprint(&[f(0.0001)]), "0.0001");
        assert_eq!(sprint(&[f(1e-05)]), "1e-05");
        assert_eq!(sprint(&[f(-2.5e+06)]), "-2.5e+06");
        assert_eq!(sprint(&[f(1000.0)]), "1000");
        assert_eq!(sprint(&[f(1.23456789012e+11)]), "1.23456789012e+11");
        assert_eq!(sprint(&[f(0.0)]), "0");
        assert_eq!(sprint(&[f(-0.0)]), "-0");
        assert_eq!(
            sprint(&[list(vec![list(vec![f(1.0), f(2.0)]), list(vec![f(3.0)])])]),
            "[[1 2] [3]]"
        );
        assert_eq!(
            sprint(&[map(vec![
                ("b", map(vec![("c", nil())])),
                ("a", list(vec![f(1.5), s("x")]))
            ])]),
            "map[a:[1.5 x] b:map[c:<nil>]]"
        );
        assert_eq!(
            sprint(&[list(vec![nil(), b(false), s("s"), f(2e+06)])]),
            "[<nil> false s 2e+06]"
        );
    }

    #[test]
    fn structs_slices_maps() {
        assert_eq!(
            sprintf("%+v|%#v|%v", &[kv("/k", "v"), kv("/k", "v"), kv("/k", "v")]),
            "{Key:/k Value:v}|memkv.KVPair{Key:\"/k\", Value:\"v\"}|{/k v}"
        );
        assert_eq!(
            sprintf(
                "%s|%d|%q|%x",
                &[kv("/k", "v"), kv("/k", "v"), kv("/k", "v"), kv("/k", "v")]
            ),
            "{/k v}|{%!d(string=/k) %!d(string=v)}|{\"/k\" \"v\"}|{2f6b 76}"
        );
        assert_eq!(sprintf("%v|%+v|%#v|%T", &[list(vec![kv("/k", "v"), kv("/a", "b")]), list(vec![kv("/k", "v"), kv("/a", "b")]), list(vec![kv("/k", "v"), kv("/a", "b")]), list(vec![kv("/k", "v"), kv("/a", "b")])]), "[{/k v} {/a b}]|[{Key:/k Value:v} {Key:/a Value:b}]|[]memkv.KVPair{memkv.KVPair{Key:\"/k\", Value:\"v\"}, memkv.KVPair{Key:\"/a\", Value:\"b\"}}|[]memkv.KVPair");
        assert_eq!(sprintf("%v|%d|%s|%#v|%T", &[map(vec![("k", i(1)), ("b", s("x")), ("a", nil()), ("n", f(2.5))]), map(vec![("k", i(1)), ("b", s("x")), ("a", nil()), ("n", f(2.5))]), map(vec![("k", i(1)), ("b", s("x")), ("a", nil()), ("n", f(2.5))]), map(vec![("k", i(1)), ("b", s("x")), ("a", nil()), ("n", f(2.5))]), map(vec![("k", i(1)), ("b", s("x")), ("a", nil()), ("n", f(2.5))])]), "map[a:<nil> b:x k:1 n:2.5]|map[%!d(string=a):<nil> %!d(string=b):%!d(string=x) %!d(string=k):1 %!d(string=n):%!d(float64=2.5)]|map[a:<nil> b:x k:%!s(int=1) n:%!s(float64=2.5)]|map[string]interface {}{\"a\":interface {}(nil), \"b\":\"x\", \"k\":1, \"n\":2.5}|map[string]interface {}");
        assert_eq!(sprintf("%v|%d|%s|%#v|%T", &[list(vec![i(1), s("a"), nil(), f(2.5), b(true)]), list(vec![i(1), s("a"), nil(), f(2.5), b(true)]), list(vec![i(1), s("a"), nil(), f(2.5), b(true)]), list(vec![i(1), s("a"), nil(), f(2.5), b(true)]), list(vec![i(1), s("a"), nil(), f(2.5), b(true)])]), "[1 a <nil> 2.5 true]|[1 %!d(string=a) <nil> %!d(float64=2.5) %!d(bool=true)]|[%!s(int=1) a <nil> %!s(float64=2.5) %!s(bool=true)]|[]interface {}{1, \"a\", interface {}(nil), 2.5, true}|[]interface {}");
        assert_eq!(
            sprintf(
                "%5d|%q|%x",
                &[
                    list(vec![i(1), i(2)]),
                    list(vec![s("a"), i(1)]),
                    list(vec![s("hi"), i(255)])
                ]
            ),
            "[    1     2]|[\"a\" '\\x01']|[6869 ff]"
        );
        assert_eq!(
            sprintf(
                "%v|%#v|%T|%q|%x|% x|%X",
                &[
                    list(vec![s("a"), s("b")]),
                    list(vec![s("a"), s("b")]),
                    list(vec![s("a"), s("b")]),
                    list(vec![s("a"), s("b")]),
                    list(vec![s("hi"), s("j")]),
                    list(vec![s("hi")]),
                    list(vec![s("hi")])
                ]
            ),
            "[a b]|[]string{\"a\", \"b\"}|[]string|[\"a\" \"b\"]|[6869 6a]|[68 69]|[6869]"
        );
        assert_eq!(
            sprintf(
                "%s|%v|%d",
                &[
                    list(vec![list(vec![i(1), i(2)]), list(vec![i(3)])]),
                    map(vec![
                        ("b", map(vec![("c", nil())])),
                        ("a", list(vec![f(1.5), s("x")]))
                    ]),
                    list(vec![nil()])
                ]
            ),
            "[[%!s(int=1) %!s(int=2)] [%!s(int=3)]]|map[a:[1.5 x] b:map[c:<nil>]]|[<nil>]"
        );
        assert_eq!(
            sprintf(
                "%s|%v|%#v|%T",
                &[list(vec![]), list(vec![]), list(vec![]), list(vec![])]
            ),
            "[]|[]|[]string{}|[]string"
        );
        assert_eq!(
            sprintf(
                "%v|%x|%s",
                &[
                    map(vec![]),
                    map(vec![("ab", s("cd"))]),
                    map(vec![("a", i(1))])
                ]
            ),
            "map[]|map[6162:6364]|map[a:%!s(int=1)]"
        );
        assert_eq!(
            sprintf("%#v", &[list(vec![nil(), i(1), s("x"), kv("/k", "v")])]),
            "[]interface {}{interface {}(nil), 1, \"x\", memkv.KVPair{Key:\"/k\", Value:\"v\"}}"
        );
        assert_eq!(
            sprintf("%+v|%+d", &[list(vec![kv("/k", "v"), i(1)]), i(-3)]),
            "[{Key:/k Value:v} 1]|-3"
        );
        assert_eq!(
            sprintf("%t", &[list(vec![i(1), i(2)])]),
            "[%!t(int=1) %!t(int=2)]"
        );
        assert_eq!(
            sprintf(
                "%6.2f|%-4v|",
                &[list(vec![f(1.0), f(2.5)]), map(vec![("a", i(1))])]
            ),
            "[  1.00   2.50]|map[a   :1   ]|"
        );
    }

    #[test]
    fn nil_and_missing() {
        assert_eq!(
            sprintf("%v|%#v|%T|%d|%t", &[nil(), nil(), nil(), nil(), nil()]),
            "<nil>|<nil>|<nil>|%!d(<nil>)|%!t(<nil>)"
        );
        assert_eq!(sprintf("%5v|%-6v|", &[nil(), nil()]), "<nil>|<nil> |");
        assert_eq!(
            sprintf("%v|%s|%d", &[s("<no value>"), nil(), nil()]),
            "<no value>|%!s(<nil>)|%!d(<nil>)"
        );
        assert_eq!(sprintf("just %s", &[s("one"), s("two"), i(3), nil(), f(2.5), list(vec![s("a")]), kv("/k", "v")]), "just one%!(EXTRA string=two, int=3, <nil>, float64=2.5, []string=[a], memkv.KVPair={/k v})");
        assert_eq!(
            sprint(&[
                nil(),
                nil(),
                s("a"),
                nil(),
                kv("/k", "v"),
                kv("/k", "v"),
                list(vec![i(1)]),
                s("x"),
                list(vec![i(2)])
            ]),
            "<nil> <nil>a<nil> {/k v} {/k v} [1]x[2]"
        );
        assert_eq!(sprintln(&[s("a"), i(1), s("b"), nil()]), "a 1 b <nil>\n");
    }

    #[test]
    fn strings_and_quoting() {
        assert_eq!(sprintf("%05s|%-05s|%.2s|%5.1s|%x|% x|%#x|% #x|%X|%.1x|%8x|%-8x|%08x", &[s("ab"), s("ab"), s("h\u{e9}llo"), s("h\u{e9}llo"), s("h\u{e9}llo"), s("abc"), s("abc"), s("abc"), s("abc"), s("abc"), s("ab"), s("ab"), s("ab")]), "000ab|ab   |h\u{e9}|    h|68c3a96c6c6f|61 62 63|0x616263|0x61 0x62 0x63|616263|61|    6162|6162    |00006162");
        assert_eq!(sprintf("%q|%+q|%#q|%#q|%q|%q|%+q", &[s("a\"b\\c\n\t\u{0}\u{7f}"), s("h\u{e9}llo\u{263a}"), s("back`tick"), s("plain"), s("\u{a0}\u{2028}\u{1f600}\u{feff}"), s("\u{e9}"), s("\u{1f600}")]), "\"a\\\"b\\\\c\\n\\t\\x00\\x7f\"|\"h\\u00e9llo\\u263a\"|\"back`tick\"|`plain`|\"\\u00a0\\u2028\u{1f600}\\ufeff\"|\"\u{e9}\"|\"\\U0001f600\"");
        assert_eq!(
            sprintf(
                "%+q|%#+q|%# q|%#q",
                &[s("a\u{263a}\u{1}"), s("a\u{263a}"), s("x"), s("tab\there")]
            ),
            "\"a\\u263a\\x01\"|`a\u{263a}`|`x`|`tab\there`"
        );
        assert_eq!(
            sprintf(
                "%08q|%-8q|%.3q|%5.q",
                &[s("ab"), s("ab"), s("abcdef"), s("hello")]
            ),
            "0000\"ab\"|\"ab\"    |\"abc\"|   \"\""
        );
        assert_eq!(
            sprintf(
                "%x|%X|% X|%#X|% #X|%x",
                &[
                    s("h\u{e9}llo"),
                    s("\u{e9}"),
                    s("ab"),
                    s("ab"),
                    s("ab"),
                    s("")
                ]
            ),
            "68c3a96c6c6f|C3A9|61 62|0X6162|0X61 0X62|"
        );
        assert_eq!(sprintf("%6x|%-6x|", &[s(""), s("")]), "      |      |");
        assert_eq!(
            sprintf(
                "%q",
                &[s(
                    "\u{7}\u{8}\u{c}\u{b}\u{d}\u{1b}\u{85}\u{ad}\u{200b}\u{e0001}\u{378}"
                )]
            ),
            "\"\\a\\b\\f\\v\\r\\x1b\\u0085\\u00ad\\u200b\\U000e0001\\u0378\""
        );
        assert_eq!(
            sprintf("%v %v %v", &[s("a"), i(3), s("\u{e9}")]),
            "a 3 \u{e9}"
        );
        assert_eq!(
            sprintf(
                "%6.2v|%-6v|%06v|%.3v|%.3v",
                &[f(3.14159), s("ab"), i(42), s("abcdef"), f(3.14159)]
            ),
            "   3.1|ab    |000042|abc|3.14"
        );
        assert_eq!(
            sprintf(
                "%10s|%-10s|%.1s|",
                &[
                    s("h\u{e9}llo\u{263a}"),
                    s("\u{65e5}\u{672c}"),
                    s("\u{65e5}\u{672c}")
                ]
            ),
            "    h\u{e9}llo\u{263a}|\u{65e5}\u{672c}        |\u{65e5}|"
        );
    }

    #[test]
    fn integers() {
        assert_eq!(sprintf("%c|%c|%c|%c|%q|%q|%+q|%q|%U|%#U|%#U|%.6U|%08U|%-8U|", &[i(65), i(128512), i(-1), i(55296), i(65), i(9786), i(9786), i(10), i(128512), i(65), i(7), i(65), i(65), i(65)]), "A|\u{1f600}|\u{fffd}|\u{fffd}|'A'|'\u{263a}'|'\\u263a'|'\\n'|U+1F600|U+0041 'A'|U+0007|U+000041|  U+0041|U+0041  |");
        assert_eq!(sprintf("%d|%5d|%-5d|%05d|%+05d|% d|% 05d|%.3d|%8.3d|%08.3d|%.0d|%5.0d|%x|%X|%#x|%#X|%o|%#o|%O|%b|%#b|%#o", &[i(-42), i(-42), i(-42), i(-42), i(42), i(42), i(42), i(7), i(7), i(7), i(0), i(0), i(-255), i(255), i(255), i(255), i(8), i(8), i(8), i(5), i(5), i(0)]), "-42|  -42|-42  |-0042|+0042| 42| 0042|007|     007|     007||     |-ff|FF|0xff|0XFF|10|010|0o10|101|0b101|0");
        assert_eq!(
            sprintf(
                "%d|%x|%v|%#v|%T",
                &[
                    u(18446744073709551615),
                    u(18446744073709551615),
                    u(18446744073709551615),
                    u(18446744073709551615),
                    u(18446744073709551615)
                ]
            ),
            "18446744073709551615|ffffffffffffffff|18446744073709551615|0xffffffffffffffff|uint64"
        );
        assert_eq!(sprintf("%d|%v|%b|%o|%x|%U|%c|%q", &[i(i64::MIN), i(i64::MIN), i(-5), i(-8), i(-1), i(-1), i(-1), i(1114112)]), "-9223372036854775808|-9223372036854775808|-101|-10|-1|U+FFFFFFFFFFFFFFFF|\u{fffd}|'\u{fffd}'");
        assert_eq!(
            sprintf(
                "%+v|%+d|%#v|% v|%+.3d|%-+6d|",
                &[i(5), i(5), i(-1), i(5), i(5), i(5)]
            ),
            "5|+5|-1| 5|+005|+5    |"
        );
        assert_eq!(
            sprintf("%#U|%#U|%#U|%#4U", &[i(128512), i(160), i(-1), i(9786)]),
            "U+1F600 '\u{1f600}'|U+00A0|U+FFFFFFFFFFFFFFFF|U+263A '\u{263a}'"
        );
        assert_eq!(
            sprintf(
                "%c|%5c|%-4c|%03c|%q|%#q|%+q",
                &[i(26085), i(120), i(121), i(122), i(39), i(96), i(26085)]
            ),
            "\u{65e5}|    x|y   |00z|'\\''|'`'|'\\u65e5'"
        );
    }

    #[test]
    fn floats() {
        let (a, b) = ("%v|%g|%G|%e|%E|%f|%F|%.2f|%.0f|%.3e|%.3g|%.10g|%#g|%#v|%b|%x|%X|%.2x", "%+v|% v|%08.2f|%-8.2f|%+.1e|%#.0f|%#.0e|%.0e|%.0g|%#x|%#.3x|%#.1g|%.20g|%12.4e|%012.4e|%+012.4f");
        for (x, want_a, want_b) in [
            (0.0, "0|0|0|0.000000e+00|0.000000E+00|0.000000|0.000000|0.00|0|0.000e+00|0|0|0.00000|0|0p-1074|0x0p+00|0X0P+00|0x0.00p+00", "0| 0|00000.00|0.00    |+0.0e+00|0.|0.e+00|0e+00|0|0x0.0000p+00|0x0.000p+00|0.|0|  0.0000e+00|000.0000e+00|+000000.0000"),
            (-0.0, "-0|-0|-0|-0.000000e+00|-0.000000E+00|-0.000000|-0.000000|-0.00|-0|-0.000e+00|-0|-0|-0.00000|-0|-0p-1074|-0x0p+00|-0X0P+00|-0x0.00p+00", "-0|-0|-0000.00|-0.00   |-0.0e+00|-0.|-0.e+00|-0e+00|-0|-0x0.0000p+00|-0x0.000p+00|-0.|-0| -0.0000e+00|-00.0000e+00|-000000.0000"),
            (1.0, "1|1|1|1.000000e+00|1.000000E+00|1.000000|1.000000|1.00|1|1.000e+00|1|1|1.00000|1|4503599627370496p-52|0x1p+00|0X1P+00|0x1.00p+00", "1| 1|00001.00|1.00    |+1.0e+00|1.|1.e+00|1e+00|1|0x1.0000p+00|0x1.000p+00|1.|1|  1.0000e+00|001.0000e+00|+000001.0000"),
            (80.0, "80|80|80|8.000000e+01|8.000000E+01|80.000000|80.000000|80.00|80|8.000e+01|80|80|80.0000|80|5629499534213120p-46|0x1.4p+06|0X1.4P+06|0x1.40p+06", "80| 80|00080.00|80.00   |+8.0e+01|80.|8.e+01|8e+01|8e+01|0x1.4000p+06|0x1.400p+06|8.e+01|80|  8.0000e+01|008.0000e+01|+000080.0000"),
            (2.5, "2.5|2.5|2.5|2.500000e+00|2.500000E+00|2.500000|2.500000|2.50|2|2.500e+00|2.5|2.5|2.50000|2.5|5629499534213120p-51|0x1.4p+01|0X1.4P+01|0x1.40p+01", "2.5| 2.5|00002.50|2.50    |+2.5e+00|2.|2.e+00|2e+00|2|0x1.4000p+01|0x1.400p+01|2.|2.5|  2.5000e+00|002.5000e+00|+000002.5000"),
            (1e+06, "1e+06|1e+06|1E+06|1.000000e+06|1.000000E+06|1000000.000000|1000000.000000|1000000.00|1000000|1.000e+06|1e+06|1000000|1.00000e+06|1e+06|8589934592000000p-33|0x1.e848p+19|0X1.E848P+19|0x1.e8p+19", "1e+06| 1e+06|1000000.00|1000000.00|+1.0e+06|1000000.|1.e+06|1e+06|1e+06|0x1.e848p+19|0x1.e84p+19|1.e+06|1000000|  1.0000e+06|001.0000e+06|+1000000.0000"),
            (1.048576e+06, "1.048576e+06|1.048576e+06|1.048576E+06|1.048576e+06|1.048576E+06|1048576.000000|1048576.000000|1048576.00|1048576|1.049e+06|1.05e+06|1048576|1.048576e+06|1.048576e+06|4503599627370496p-32|0x1p+20|0X1P+20|0x1.00p+20", "1.048576e+06| 1.048576e+06|1048576.00|1048576.00|+1.0e+06|1048576.|1.e+06|1e+06|1e+06|0x1.0000p+20|0x1.000p+20|1.e+06|1048576|  1.0486e+06|001.0486e+06|+1048576.0000"),
            (999999.0, "999999|999999|999999|9.999990e+05|9.999990E+05|999999.000000|999999.000000|999999.00|999999|1.000e+06|1e+06|999999|999999.|999999|8589926002065408p-33|0x1.e847ep+19|0X1.E847EP+19|0x1.e8p+19", "999999| 999999|999999.00|999999.00|+1.0e+06|999999.|1.e+06|1e+06|1e+06|0x1.e847ep+19|0x1.e84p+19|1.e+06|999999|  1.0000e+06|001.0000e+06|+999999.0000"),
            (0.0001, "0.0001|0.0001|0.0001|1.000000e-04|1.000000E-04|0.000100|0.000100|0.00|0|1.000e-04|0.0001|0.0001|0.000100000|0.0001|7378697629483821p-66|0x1.a36e2eb1c432dp-14|0X1.A36E2EB1C432DP-14|0x1.a3p-14", "0.0001| 0.0001|00000.00|0.00    |+1.0e-04|0.|1.e-04|1e-04|0.0001|0x1.a36e2eb1c432dp-14|0x1.a37p-14|0.0001|0.00010000000000000000479|  1.0000e-04|001.0000e-04|+000000.0001"),
            (1e-05, "1e-05|1e-05|1E-05|1.000000e-05|1.000000E-05|0.000010|0.000010|0.00|0|1.000e-05|1e-05|1e-05|1.00000e-05|1e-05|5902958103587057p-69|0x1.4f8b588e368f1p-17|0X1.4F8B588E368F1P-17|0x1.50p-17", "1e-05| 1e-05|00000.00|0.00    |+1.0e-05|0.|1.e-05|1e-05|1e-05|0x1.4f8b588e368f1p-17|0x1.4f9p-17|1.e-05|1.0000000000000000818e-05|  1.0000e-05|001.0000e-05|+000000.0000"),
            (-2.5e+06, "-2.5e+06|-2.5e+06|-2.5E+06|-2.500000e+06|-2.500000E+06|-2500000.000000|-2500000.000000|-2500000.00|-2500000|-2.500e+06|-2.5e+06|-2500000|-2.50000e+06|-2.5e+06|-5368709120000000p-31|-0x1.312dp+21|-0X1.312DP+21|-0x1.31p+21", "-2.5e+06|-2.5e+06|-2500000.00|-2500000.00|-2.5e+06|-2500000.|-2.e+06|-2e+06|-2e+06|-0x1.312dp+21|-0x1.313p+21|-2.e+06|-2500000| -2.5000e+06|-02.5000e+06|-2500000.0000"),
            (1000.0, "1000|1000|1000|1.000000e+03|1.000000E+03|1000.000000|1000.000000|1000.00|1000|1.000e+03|1e+03|1000|1000.00|1000|8796093022208000p-43|0x1.f4p+09|0X1.F4P+09|0x1.f4p+09", "1000| 1000|01000.00|1000.00 |+1.0e+03|1000.|1.e+03|1e+03|1e+03|0x1.f400p+09|0x1.f40p+09|1.e+03|1000|  1.0000e+03|001.0000e+03|+001000.0000"),
            (1.23456789012e+11, "1.23456789012e+11|1.23456789012e+11|1.23456789012E+11|1.234568e+11|1.234568E+11|123456789012.000000|123456789012.000000|123456789012.00|123456789012|1.235e+11|1.23e+11|1.23456789e+11|1.23456789012e+11|1.23456789012e+11|8090864124690432p-16|0x1.cbe991a14p+36|0X1.CBE991A14P+36|0x1.ccp+36", "1.23456789012e+11| 1.23456789012e+11|123456789012.00|123456789012.00|+1.2e+11|123456789012.|1.e+11|1e+11|1e+11|0x1.cbe991a14p+36|0x1.cbfp+36|1.e+11|123456789012|  1.2346e+11|001.2346e+11|+123456789012.0000"),
            (1e+21, "1e+21|1e+21|1E+21|1.000000e+21|1.000000E+21|1000000000000000000000.000000|1000000000000000000000.000000|1000000000000000000000.00|1000000000000000000000|1.000e+21|1e+21|1e+21|1.00000e+21|1e+21|7629394531250000p+17|0x1.b1ae4d6e2ef5p+69|0X1.B1AE4D6E2EF5P+69|0x1.b2p+69", "1e+21| 1e+21|1000000000000000000000.00|1000000000000000000000.00|+1.0e+21|1000000000000000000000.|1.e+21|1e+21|1e+21|0x1.b1ae4d6e2ef5p+69|0x1.b1bp+69|1.e+21|1e+21|  1.0000e+21|001.0000e+21|+1000000000000000000000.0000"),
            (1e+20, "1e+20|1e+20|1E+20|1.000000e+20|1.000000E+20|100000000000000000000.000000|100000000000000000000.000000|100000000000000000000.00|100000000000000000000|1.000e+20|1e+20|1e+20|1.00000e+20|1e+20|6103515625000000p+14|0x1.5af1d78b58c4p+66|0X1.5AF1D78B58C4P+66|0x1.5bp+66", "1e+20| 1e+20|100000000000000000000.00|100000000000000000000.00|+1.0e+20|100000000000000000000.|1.e+20|1e+20|1e+20|0x1.5af1d78b58c4p+66|0x1.5afp+66|1.e+20|1e+20|  1.0000e+20|001.0000e+20|+100000000000000000000.0000"),
            (123456.7, "123456.7|123456.7|123456.7|1.234567e+05|1.234567E+05|123456.700000|123456.700000|123456.70|123457|1.235e+05|1.23e+05|123456.7|123456.7|123456.7|8483879823553331p-36|0x1.e240b33333333p+16|0X1.E240B33333333P+16|0x1.e2p+16", "123456.7| 123456.7|123456.70|123456.70|+1.2e+05|123457.|1.e+05|1e+05|1e+05|0x1.e240b33333333p+16|0x1.e24p+16|1.e+05|123456.69999999999709|  1.2346e+05|001.2346e+05|+123456.7000"),
            (1.234567e+06, "1.234567e+06|1.234567e+06|1.234567E+06|1.234567e+06|1.234567E+06|1234567.000000|1234567.000000|1234567.00|1234567|1.235e+06|1.23e+06|1234567|1.234567e+06|1.234567e+06|5302424889720832p-32|0x1.2d687p+20|0X1.2D687P+20|0x1.2dp+20", "1.234567e+06| 1.234567e+06|1234567.00|1234567.00|+1.2e+06|1234567.|1.e+06|1e+06|1e+06|0x1.2d687p+20|0x1.2d7p+20|1.e+06|1234567|  1.2346e+06|001.2346e+06|+1234567.0000"),
            (0.1, "0.1|0.1|0.1|1.000000e-01|1.000000E-01|0.100000|0.100000|0.10|0|1.000e-01|0.1|0.1|0.100000|0.1|7205759403792794p-56|0x1.999999999999ap-04|0X1.999999999999AP-04|0x1.9ap-04", "0.1| 0.1|00000.10|0.10    |+1.0e-01|0.|1.e-01|1e-01|0.1|0x1.999999999999ap-04|0x1.99ap-04|0.1|0.10000000000000000555|  1.0000e-01|001.0000e-01|+000000.1000"),
            (0.3333333333333333, "0.3333333333333333|0.3333333333333333|0.3333333333333333|3.333333e-01|3.333333E-01|0.333333|0.333333|0.33|0|3.333e-01|0.333|0.3333333333|0.3333333333333333|0.3333333333333333|6004799503160661p-54|0x1.5555555555555p-02|0X1.5555555555555P-02|0x1.55p-02", "0.3333333333333333| 0.3333333333333333|00000.33|0.33    |+3.3e-01|0.|3.e-01|3e-01|0.3|0x1.5555555555555p-02|0x1.555p-02|0.3|0.33333333333333331483|  3.3333e-01|003.3333e-01|+000000.3333"),
            (2e+06, "2e+06|2e+06|2E+06|2.000000e+06|2.000000E+06|2000000.000000|2000000.000000|2000000.00|2000000|2.000e+06|2e+06|2000000|2.00000e+06|2e+06|8589934592000000p-32|0x1.e848p+20|0X1.E848P+20|0x1.e8p+20", "2e+06| 2e+06|2000000.00|2000000.00|+2.0e+06|2000000.|2.e+06|2e+06|2e+06|0x1.e848p+20|0x1.e84p+20|2.e+06|2000000|  2.0000e+06|002.0000e+06|+2000000.0000"),
            (3e+10, "3e+10|3e+10|3E+10|3.000000e+10|3.000000E+10|30000000000.000000|30000000000.000000|30000000000.00|30000000000|3.000e+10|3e+10|3e+10|3.00000e+10|3e+10|7864320000000000p-18|0x1.bf08ebp+34|0X1.BF08EBP+34|0x1.bfp+34", "3e+10| 3e+10|30000000000.00|30000000000.00|+3.0e+10|30000000000.|3.e+10|3e+10|3e+10|0x1.bf08ebp+34|0x1.bf1p+34|3.e+10|30000000000|  3.0000e+10|003.0000e+10|+30000000000.0000"),
            (-0.25, "-0.25|-0.25|-0.25|-2.500000e-01|-2.500000E-01|-0.250000|-0.250000|-0.25|-0|-2.500e-01|-0.25|-0.25|-0.250000|-0.25|-4503599627370496p-54|-0x1p-02|-0X1P-02|-0x1.00p-02", "-0.25|-0.25|-0000.25|-0.25   |-2.5e-01|-0.|-2.e-01|-2e-01|-0.2|-0x1.0000p-02|-0x1.000p-02|-0.2|-0.25| -2.5000e-01|-02.5000e-01|-000000.2500"),
            (1e+100, "1e+100|1e+100|1E+100|1.000000e+100|1.000000E+100|10000000000000000159028911097599180468360808563945281389781327557747838772170381060813469985856815104.000000|10000000000000000159028911097599180468360808563945281389781327557747838772170381060813469985856815104.000000|10000000000000000159028911097599180468360808563945281389781327557747838772170381060813469985856815104.00|10000000000000000159028911097599180468360808563945281389781327557747838772170381060813469985856815104|1.000e+100|1e+100|1e+100|1.00000e+100|1e+100|5147557589468029p+280|0x1.249ad2594c37dp+332|0X1.249AD2594C37DP+332|0x1.25p+332", "1e+100| 1e+100|10000000000000000159028911097599180468360808563945281389781327557747838772170381060813469985856815104.00|10000000000000000159028911097599180468360808563945281389781327557747838772170381060813469985856815104.00|+1.0e+100|10000000000000000159028911097599180468360808563945281389781327557747838772170381060813469985856815104.|1.e+100|1e+100|1e+100|0x1.249ad2594c37dp+332|0x1.24ap+332|1.e+100|1.0000000000000000159e+100| 1.0000e+100|01.0000e+100|+10000000000000000159028911097599180468360808563945281389781327557747838772170381060813469985856815104.0000"),
            (5e-324, "5e-324|5e-324|5E-324|4.940656e-324|4.940656E-324|0.000000|0.000000|0.00|0|4.941e-324|4.94e-324|4.940656458e-324|5.00000e-324|5e-324|1p-1074|0x1p-1074|0X1P-1074|0x1.00p-1074", "5e-324| 5e-324|00000.00|0.00    |+4.9e-324|0.|5.e-324|5e-324|5e-324|0x1.0000p-1074|0x1.000p-1074|5.e-324|4.9406564584124654418e-324| 4.9407e-324|04.9407e-324|+000000.0000"),
            (1.7976931348623157e+308, "1.7976931348623157e+308|1.7976931348623157e+308|1.7976931348623157E+308|1.797693e+308|1.797693E+308|179769313486231570814527423731704356798070567525844996598917476803157260780028538760589558632766878171540458953514382464234321326889464182768467546703537516986049910576551282076245490090389328944075868508455133942304583236903222948165808559332123348274797826204144723168738177180919299881250404026184124858368.000000|179769313486231570814527423731704356798070567525844996598917476803157260780028538760589558632766878171540458953514382464234321326889464182768467546703537516986049910576551282076245490090389328944075868508455133942304583236903222948165808559332123348274797826204144723168738177180919299881250404026184124858368.000000|179769313486231570814527423731704356798070567525844996598917476803157260780028538760589558632766878171540458953514382464234321326889464182768467546703537516986049910576551282076245490090389328944075868508455133942304583236903222948165808559332123348274797826204144723168738177180919299881250404026184124858368.00|179769313486231570814527423731704356798070567525844996598917476803157260780028538760589558632766878171540458953514382464234321326889464182768467546703537516986049910576551282076245490090389328944075868508455133942304583236903222948165808559332123348274797826204144723168738177180919299881250404026184124858368|1.798e+308|1.8e+308|1.797693135e+308|1.7976931348623157e+308|1.7976931348623157e+308|9007199254740991p+971|0x1.fffffffffffffp+1023|0X1.FFFFFFFFFFFFFP+1023|0x1.00p+1024", "1.7976931348623157e+308| 1.7976931348623157e+308|179769313486231570814527423731704356798070567525844996598917476803157260780028538760589558632766878171540458953514382464234321326889464182768467546703537516986049910576551282076245490090389328944075868508455133942304583236903222948165808559332123348274797826204144723168738177180919299881250404026184124858368.00|179769313486231570814527423731704356798070567525844996598917476803157260780028538760589558632766878171540458953514382464234321326889464182768467546703537516986049910576551282076245490090389328944075868508455133942304583236903222948165808559332123348274797826204144723168738177180919299881250404026184124858368.00|+1.8e+308|179769313486231570814527423731704356798070567525844996598917476803157260780028538760589558632766878171540458953514382464234321326889464182768467546703537516986049910576551282076245490090389328944075868508455133942304583236903222948165808559332123348274797826204144723168738177180919299881250404026184124858368.|2.e+308|2e+308|2e+308|0x1.fffffffffffffp+1023|0x1.000p+1024|2.e+308|1.7976931348623157081e+308| 1.7977e+308|01.7977e+308|+179769313486231570814527423731704356798070567525844996598917476803157260780028538760589558632766878171540458953514382464234321326889464182768467546703537516986049910576551282076245490090389328944075868508455133942304583236903222948165808559332123348274797826204144723168738177180919299881250404026184124858368.0000"),
            (100.0, "100|100|100|1.000000e+02|1.000000E+02|100.000000|100.000000|100.00|100|1.000e+02|100|100|100.000|100|7036874417766400p-46|0x1.9p+06|0X1.9P+06|0x1.90p+06", "100| 100|00100.00|100.00  |+1.0e+02|100.|1.e+02|1e+02|1e+02|0x1.9000p+06|0x1.900p+06|1.e+02|100|  1.0000e+02|001.0000e+02|+000100.0000"),
            (2.2250738585072014e-308, "2.2250738585072014e-308|2.2250738585072014e-308|2.2250738585072014E-308|2.225074e-308|2.225074E-308|0.000000|0.000000|0.00|0|2.225e-308|2.23e-308|2.225073859e-308|2.2250738585072014e-308|2.2250738585072014e-308|4503599627370496p-1074|0x1p-1022|0X1P-1022|0x1.00p-1022", "2.2250738585072014e-308| 2.2250738585072014e-308|00000.00|0.00    |+2.2e-308|0.|2.e-308|2e-308|2e-308|0x1.0000p-1022|0x1.000p-1022|2.e-308|2.2250738585072013831e-308| 2.2251e-308|02.2251e-308|+000000.0000"),
            (0.000123456, "0.000123456|0.000123456|0.000123456|1.234560e-04|1.234560E-04|0.000123|0.000123|0.00|0|1.235e-04|0.000123|0.000123456|0.000123456|0.000123456|4554722472727773p-65|0x1.02e7ef70994ddp-13|0X1.02E7EF70994DDP-13|0x1.03p-13", "0.000123456| 0.000123456|00000.00|0.00    |+1.2e-04|0.|1.e-04|1e-04|0.0001|0x1.02e7ef70994ddp-13|0x1.02ep-13|0.0001|0.00012345600000000000519|  1.2346e-04|001.2346e-04|+000000.0001"),
            (1.5e-07, "1.5e-07|1.5e-07|1.5E-07|1.500000e-07|1.500000E-07|0.000000|0.000000|0.00|0|1.500e-07|1.5e-07|1.5e-07|1.50000e-07|1.5e-07|5666839779443574p-75|0x1.421f5f40d8376p-23|0X1.421F5F40D8376P-23|0x1.42p-23", "1.5e-07| 1.5e-07|00000.00|0.00    |+1.5e-07|0.|1.e-07|1e-07|1e-07|0x1.421f5f40d8376p-23|0x1.422p-23|1.e-07|1.4999999999999999321e-07|  1.5000e-07|001.5000e-07|+000000.0000"),
            (9.999999e-05, "9.999999e-05|9.999999e-05|9.999999E-05|9.999999e-05|9.999999E-05|0.000100|0.000100|0.00|0|1.000e-04|0.0001|9.999999e-05|9.999999e-05|9.999999e-05|7378696891614058p-66|0x1.a36e2bf21436ap-14|0X1.A36E2BF21436AP-14|0x1.a3p-14", "9.999999e-05| 9.999999e-05|00000.00|0.00    |+1.0e-04|0.|1.e-04|1e-04|0.0001|0x1.a36e2bf21436ap-14|0x1.a37p-14|0.0001|9.9999990000000004093e-05|  1.0000e-04|001.0000e-04|+000000.0001"),
        ] {
            assert_eq!(sprintf(a, &vec![f(x); 18]), want_a, "{x}");
            assert_eq!(sprintf(b, &vec![f(x); 16]), want_b, "{x}");
        }
        assert_eq!(sprintf("%v|%v|%v|%5.1f|%05v|%+v|% v|%e|%d|%x|%+f|% f|%-6v|%06f|%#v", &[f(f64::INFINITY), f(f64::NEG_INFINITY), f(f64::NAN), f(f64::INFINITY), f(f64::INFINITY), f(f64::NAN), f(f64::NAN), f(f64::INFINITY), f(f64::INFINITY), f(f64::INFINITY), f(f64::NAN), f(f64::NEG_INFINITY), f(f64::NAN), f(f64::NEG_INFINITY), f(f64::INFINITY)]), "+Inf|-Inf|NaN| +Inf| +Inf|NaN| NaN|+Inf|%!d(float64=+Inf)|+Inf|+NaN|-Inf|NaN   |  -Inf|+Inf");
        assert_eq!(
            sprintf(
                "%.0f|%.0f|%.0f|%.0f|%.1f|%.1f|%.2f|%.1e|%.0e|%.3f|%.1g",
                &[
                    f(0.5),
                    f(1.5),
                    f(2.5),
                    f(3.5),
                    f(0.25),
                    f(0.35),
                    f(1.005),
                    f(2.25),
                    f(2.5),
                    f(1.0005),
                    f(0.25)
                ]
            ),
            "0|2|2|4|0.2|0.3|1.00|2.2e+00|2e+00|1.000|0.2"
        );
        assert_eq!(sprintf("%.30f|%.25e|%.40g", &[f(0.1), f(0.3333333333333333), f(0.1)]), "0.100000000000000005551115123126|3.3333333333333331482961626e-01|0.1000000000000000055511151231257827021182");
        assert_eq!(
            sprintf(
                "%#.3g|%#.3g|%#g|%#g|%#.4e|%#.0g|%#g",
                &[
                    f(1.0),
                    f(100.0),
                    f(1e+06),
                    f(0.0001),
                    f(2.5),
                    f(5.0),
                    f(1.23456789e+08)
                ]
            ),
            "1.00|100.|1.00000e+06|0.000100000|2.5000e+00|5.|1.23456789e+08"
        );
        assert_eq!(
            sprintf("%#v|%#v|%#v|%#v", &[f(2.0), f(1e+21), f(0.5), f(-1e-07)]),
            "2|1e+21|0.5|-1e-07"
        );
    }

    #[test]
    fn bools_and_bad_verbs() {
        assert_eq!(
            sprintf(
                "%t|%v|%5t|%-6t|%d|%s|%q",
                &[
                    b(true),
                    b(false),
                    b(true),
                    b(false),
                    b(true),
                    b(true),
                    b(true)
                ]
            ),
            "true|false| true|false |%!d(bool=true)|%!s(bool=true)|%!q(bool=true)"
        );
        assert_eq!(sprintf("%d|%s|%t|%d|%q|%c", &[s("seven"), i(7), s("yes"), f(2.5), f(2.5), s("x")]), "%!d(string=seven)|%!s(int=7)|%!t(string=yes)|%!d(float64=2.5)|%!q(float64=2.5)|%!c(string=x)");
        assert_eq!(
            sprintf("%5d|%#d|%+d|%-5x", &[s("x"), f(2.5), s("s"), b(true)]),
            "%!d(string=    x)|%!d(float64=2.50000)|%!d(string=s)|%!x(bool=true )"
        );
        assert_eq!(
            sprintf("%z|%!|%", &[i(1)]),
            "%!z(int=1)|%!!(MISSING)|%!(NOVERB)"
        );
        assert_eq!(
            sprintf("%\u{e9}|%\u{263a}", &[i(1), i(2)]),
            "%!\u{e9}(int=1)|%!\u{263a}(int=2)"
        );
        assert_eq!(
            sprintf(
                "%p|%T|%T|%T|%T|%T|%10T|%-10T|",
                &[
                    s("s"),
                    s("s"),
                    i(1),
                    f(2.5),
                    b(true),
                    map(vec![
                        ("k", i(1)),
                        ("b", s("x")),
                        ("a", nil()),
                        ("n", f(2.5))
                    ]),
                    s("s"),
                    i(1)
                ]
            ),
            "%!p(string=s)|string|int|float64|bool|map[string]interface {}|    string|int       |"
        );
        assert_eq!(
            sprintf("%d", &[list(vec![s("a"), list(vec![s("b"), b(true)])])]),
            "[%!d(string=a) [%!d(string=b) %!d(bool=true)]]"
        );
    }

    #[test]
    fn argument_indexes_and_star() {
        assert_eq!(sprintf("%[2]d %[1]d", &[i(1), i(2)]), "2 1");
        assert_eq!(
            sprintf("%[2]d %d %d", &[i(1), i(2)]),
            "2 %!d(MISSING) %!d(MISSING)"
        );
        assert_eq!(
            sprintf("%[3]d|%[0]d|%[x]d|%[1]", &[i(1), i(2)]),
            "%!d(BADINDEX)|%!d(BADINDEX)|%!d(BADINDEX)|%!(NOVERB)"
        );
        assert_eq!(
            sprintf("%d %d %#[1]x %#x", &[i(16), i(17)]),
            "16 17 0x10 0x11"
        );
        assert_eq!(
            sprintf(
                "%*d|%-*d|%.*f|%*.*f|%*d",
                &[
                    i(5),
                    i(1),
                    i(5),
                    i(2),
                    i(2),
                    f(3.14159),
                    i(8),
                    i(3),
                    f(3.14159),
                    i(-5),
                    i(3)
                ]
            ),
            "    1|2    |3.14|   3.142|3    "
        );
        assert_eq!(
            sprintf("%*d|%.*d", &[s("x"), i(1), f(2.5), i(2)]),
            "%!(BADWIDTH)1|%!(BADPREC)2"
        );
        assert_eq!(sprintf("%*d", &[i(10000000), i(1)]), "%!(BADWIDTH)1");
        assert_eq!(sprintf("%.*d", &[i(-1), i(3)]), "%!(BADPREC)3");
        assert_eq!(
            sprintf("%3.|%.|%5", &[i(1), i(2)]),
            "%!|(int=  1)%!|(int=2)%!(NOVERB)"
        );
        assert_eq!(
            sprintf("%[1]*d|%[2]*[1]d|%[3]*.[2]*[1]f", &[i(2), i(5), i(8)]),
            " 5|    2|%!f(int=   00002)"
        );
        assert_eq!(sprintf("%v%%%d|%5%|%-5%", &[i(1), i(2)]), "1%2|%|%");
        assert_eq!(
            sprintf("%.d|%.5s|%.0s", &[i(0), s("abcdefgh"), s("abc")]),
            "|abcde|"
        );
        assert_eq!(
            sprintf("%[2]*[1]d|%[1]d %[5]d", &[i(12), i(5)]),
            "   12|12 %!d(BADINDEX)"
        );
        assert_eq!(
            sprintf("%[1]d %[1]q %[1]c %[1]U", &[i(65)]),
            "65 'A' A U+0041"
        );
        assert_eq!(
            sprintf("%[2]s %s %[1]s %s", &[s("a"), s("b")]),
            "b %!s(MISSING) a b"
        );
        assert_eq!(sprintf("%[1]d%[1]d extra", &[i(1), i(2)]), "11 extra");
        assert_eq!(
            sprintf("%-[1]d|%[1]-5d|%[1]5d", &[i(7)]),
            "7|%!-(int=7)5d|%!d(BADINDEX)"
        );
        assert_eq!(
            sprintf("%100000000d|x", &[i(1)]),
            "%!(NOVERB)%!(EXTRA int=1)"
        );
        assert_eq!(
            sprintf("%.100000000d|x", &[i(1)]),
            "%!(NOVERB)%!(EXTRA int=1)"
        );
        assert_eq!(sprintf("%[100000000]d|x", &[i(1)]), "%!d(BADINDEX)|x");
        assert_eq!(sprintf("%[9999999999]d|x", &[i(1)]), "%!d(BADINDEX)|x");
        assert_eq!(
            sprintf("%12d|%-12.5d|%.12d", &[i(1), i(2), i(3)]),
            "           1|00002       |000000000003"
        );
        assert_eq!(sprintf("%*", &[i(1)]), "%!(NOVERB)");
        assert_eq!(sprintf("%.", &[i(1)]), "%!.(int=1)");
        assert_eq!(sprintf("%[", &[i(1)]), "%!(NOVERB)");
        assert_eq!(sprintf("%[1", &[i(1)]), "%!(NOVERB)");
        assert_eq!(sprintf("%[]d", &[i(1)]), "%!d(BADINDEX)");
        assert_eq!(sprintf("%.*", &[i(1)]), "%!(NOVERB)");
        assert_eq!(sprintf("%-", &[i(1)]), "%!(NOVERB)%!(EXTRA int=1)");
    }

    #[test]
    fn type_names() {
        assert_eq!(type_name(&s("x")), "string");
        assert_eq!(type_name(&i(1)), "int");
        assert_eq!(type_name(&u(18446744073709551615)), "uint64");
        assert_eq!(type_name(&f(1.0)), "float64");
        assert_eq!(type_name(&b(true)), "bool");
        assert_eq!(type_name(&list(vec![s("a")])), "[]string");
        assert_eq!(type_name(&list(vec![])), "[]string");
        assert_eq!(type_name(&list(vec![i(1), s("a")])), "[]interface {}");
        assert_eq!(type_name(&list(vec![nil()])), "[]interface {}");
        assert_eq!(
            type_name(&map(vec![("a", i(1))])),
            "map[string]interface {}"
        );
        assert_eq!(type_name(&kv("/k", "v")), "memkv.KVPair");
        assert_eq!(type_name(&list(vec![kv("/k", "v")])), "[]memkv.KVPair");
    }

    #[test]
    fn escapers() {
        assert_eq!(
            html_escape("<a href='x'>&\"y\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&#34;y&#34;&lt;/a&gt;"
        );
        assert_eq!(html_escape("\u{0}\u{e9}"), "\u{fffd}\u{e9}");
        assert_eq!(html_escape("plain"), "plain");
        assert_eq!(
            js_escape("<tag> 'q' \"d\" \\ =&"),
            "\\u003Ctag\\u003E \\'q\\' \\\"d\\\" \\\\ \\u003D\\u0026"
        );
        assert_eq!(
            js_escape("\u{1}\n\t\u{e9}\u{2028}\u{1f600}\u{ad}\u{e0001}\u{7f}/"),
            "\\u0001\\u000A\\u0009\u{e9}\\u2028\u{1f600}\\u00AD\\uE0001\u{7f}/"
        );
        assert_eq!(js_escape("plain"), "plain");
        assert_eq!(query_escape("a b&c=d/\u{e9}?"), "a+b%26c%3Dd%2F%C3%A9%3F");
        assert_eq!(
            query_escape("-_.~!*'()+$,;:@[]#%\u{0}"),
            "-_.~%21%2A%27%28%29%2B%24%2C%3B%3A%40%5B%5D%23%25%00"
        );
        assert_eq!(query_escape("AZaz09"), "AZaz09");
    }

    #[test]
    fn upper_lower() {
        assert_eq!(to_upper("mixed Case 123"), "MIXED CASE 123");
        assert_eq!(to_lower("mixed Case 123"), "mixed case 123");
        assert_eq!(
            to_upper("\u{e9} \u{e0} \u{fc} stra\u{df}e"),
            "\u{c9} \u{c0} \u{dc} STRA\u{df}E"
        );
        assert_eq!(
            to_lower("\u{e9} \u{e0} \u{fc} stra\u{df}e"),
            "\u{e9} \u{e0} \u{fc} stra\u{df}e"
        );
        assert_eq!(
            to_upper("stra\u{df}e \u{1c6} \u{fb01}"),
            "STRA\u{df}E \u{1c4} \u{fb01}"
        );
        assert_eq!(
            to_lower("stra\u{df}e \u{1c6} \u{fb01}"),
            "stra\u{df}e \u{1c6} \u{fb01}"
        );
        assert_eq!(
            to_upper("\u{1c5} \u{1f80} \u{149} \u{131} i \u{a7b5} a\u{e9} \u{390} \u{1f0}"),
            "\u{1c4} \u{1f88} \u{149} I I \u{a7b4} A\u{c9} \u{390} \u{1f0}"
        );
        assert_eq!(
            to_lower("\u{1c5} \u{1f80} \u{149} \u{131} i \u{a7b5} a\u{e9} \u{390} \u{1f0}"),
            "\u{1c6} \u{1f80} \u{149} \u{131} i \u{a7b5} a\u{e9} \u{390} \u{1f0}"
        );
        assert_eq!(
            to_upper("\u{3a3}\u{391}\u{3a3} \u{130}STANBUL"),
            "\u{3a3}\u{391}\u{3a3} \u{130}STANBUL"
        );
        assert_eq!(
            to_lower("\u{3a3}\u{391}\u{3a3} \u{130}STANBUL"),
            "\u{3c3}\u{3b1}\u{3c3} istanbul"
        );
        assert_eq!(
            to_upper("\u{1c5} \u{1f88} K \u{3a9} \u{1e9e} \u{1c4} \u{3a3}"),
            "\u{1c4} \u{1f88} K \u{3a9} \u{1e9e} \u{1c4} \u{3a3}"
        );
        assert_eq!(
            to_lower("\u{1c5} \u{1f88} K \u{3a9} \u{1e9e} \u{1c4} \u{3a3}"),
            "\u{1c6} \u{1f80} k \u{3c9} \u{df} \u{1c6} \u{3c3}"
        );
        assert_eq!(
            to_upper("\u{c9}\u{c0}\u{dc} \u{3a3}\u{39f}\u{3a6}\u{39f}\u{3a3}"),
            "\u{c9}\u{c0}\u{dc} \u{3a3}\u{39f}\u{3a6}\u{39f}\u{3a3}"
        );
        assert_eq!(
            to_lower("\u{c9}\u{c0}\u{dc} \u{3a3}\u{39f}\u{3a6}\u{39f}\u{3a3}"),
            "\u{e9}\u{e0}\u{fc} \u{3c3}\u{3bf}\u{3c6}\u{3bf}\u{3c3}"
        );
        assert_eq!(
            to_upper("\u{1c8}\u{1cb}\u{1f2} \u{1c9}\u{1cc}\u{1f3}"),
            "\u{1c7}\u{1ca}\u{1f1} \u{1c7}\u{1ca}\u{1f1}"
        );
        assert_eq!(
            to_lower("\u{1c8}\u{1cb}\u{1f2} \u{1c9}\u{1cc}\u{1f3}"),
            "\u{1c9}\u{1cc}\u{1f3} \u{1c9}\u{1cc}\u{1f3}"
        );
        assert_eq!(
            to_upper("\u{24d0}\u{24e9} \u{ff41}\u{ff5a} \u{10428}\u{10410} \u{a641}"),
            "\u{24b6}\u{24cf} \u{ff21}\u{ff3a} \u{10400}\u{10410} \u{a640}"
        );
        assert_eq!(
            to_lower("\u{24d0}\u{24e9} \u{ff41}\u{ff5a} \u{10428}\u{10410} \u{a641}"),
            "\u{24d0}\u{24e9} \u{ff41}\u{ff5a} \u{10428}\u{10438} \u{a641}"
        );
    }
}
