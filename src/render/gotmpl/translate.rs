//! A parsed Go template, written out as a minijinja template with the same output.
//!
//! Where the translator knows a value's Go type (confd's functions return strings, lists of
//! strings or KVPairs) it writes plain Jinja: `{% for kv in gets("/a/*") %}`, `kv.value`,
//! `a ~ ":" ~ b`. Where Go's semantics differ from Jinja's (printing of floats, lists and maps,
//! `<no value>`, comparisons of mixed types, byte lengths) it calls a `go_*` function that
//! carries Go's behaviour (see `runtime`).

use std::collections::HashSet;
use std::fmt::Write;

use super::parse::{Cmd, Control, Node, Pipe, Pos, Term, Tree, VarId};

/// What the translator knows of a value's Go type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Str,
    Int,
    Bool,
    StrList,
    /// A list of KVPairs (`sortKVByLength`'s result).
    KvList,
    /// `gets`' result: a KVPairs, which confd's `reverse` leaves as it is.
    KvPairs,
    Kv,
    Any,
}

impl Ty {
    /// Jinja prints it exactly as Go would.
    fn prints_same(self) -> bool {
        matches!(self, Ty::Str | Ty::Int | Ty::Bool)
    }
}

#[derive(Clone)]
struct Expr {
    code: String,
    ty: Ty,
}

impl Expr {
    fn new(code: impl Into<String>, ty: Ty) -> Expr {
        Expr {
            code: code.into(),
            ty,
        }
    }
}

/// The Jinja text, and where in it each Go construct starts (for error positions).
pub struct Translation {
    pub source: String,
    /// Byte offsets in `source`, ascending, each with the Go position it came from.
    pub positions: Vec<(usize, Pos)>,
}

impl Translation {
    /// The Go position of the construct at byte `offset` of the Jinja text.
    pub fn go_pos(&self, offset: usize) -> Option<Pos> {
        let i = self.positions.partition_point(|(o, _)| *o <= offset);
        self.positions.get(i.checked_sub(1)?).map(|(_, p)| *p)
    }
}

/// Names a generated variable may not take: Jinja's keywords and globals, and every function.
const RESERVED: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "is",
    "if",
    "else",
    "elif",
    "endif",
    "for",
    "endfor",
    "set",
    "endset",
    "macro",
    "endmacro",
    "call",
    "filter",
    "block",
    "extends",
    "include",
    "import",
    "from",
    "with",
    "endwith",
    "true",
    "false",
    "none",
    "True",
    "False",
    "None",
    "loop",
    "self",
    "caller",
    "varargs",
    "kwargs",
    "namespace",
    "range",
    "dict",
    "debug",
    "dot",
    "dir",
    "path",
    "go_root",
    "go_nil",
    "break",
    "continue",
    "raw",
    "do",
    "autoescape",
    "super",
];

struct Scope {
    /// Jinja name of each Go variable of this template.
    names: Vec<Option<String>>,
    /// What each variable was declared with.
    types: Vec<Ty>,
    used: HashSet<String>,
    dot: Expr,
}

pub fn translate(tree: &Tree) -> Translation {
    let mut t = Translator {
        tree,
        out: String::new(),
        positions: Vec::new(),
        scope: Scope {
            names: vec![None; tree.vars.len()],
            types: vec![Ty::Any; tree.vars.len()],
            used: HashSet::new(),
            dot: Expr::new("go_root", Ty::Any),
        },
    };
    for (name, body) in &tree.defines {
        t.define(name, body);
    }
    let dollar = tree.root_dollar;
    t.scope.names[dollar] = Some("go_root".into());
    t.list(&tree.root);
    Translation {
        source: t.out,
        positions: t.positions,
    }
}

/// A Go template name as a Jinja macro name.
fn macro_name(name: &str) -> String {
    let mut s = String::from("tpl_");
    for c in name.chars() {
        s.push(if c.is_ascii_alphanumeric() { c } else { '_' });
    }
    // Distinct Go names must stay distinct.
    if s[4..] != *name {
        let _ = write!(
            s,
            "_{:x}",
            name.bytes()
                .fold(0u32, |h, b| h.wrapping_mul(31) ^ u32::from(b))
        );
    }
    s
}

fn literal(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

struct Translator<'a> {
    tree: &'a Tree,
    out: String,
    positions: Vec<(usize, Pos)>,
    scope: Scope,
}

impl Translator<'_> {
    fn mark(&mut self, pos: Pos) {
        self.positions.push((self.out.len(), pos));
    }

    fn define(&mut self, name: &str, body: &[Node]) {
        let saved = std::mem::replace(
            &mut self.scope,
            Scope {
                names: vec![None; self.tree.vars.len()],
                types: vec![Ty::Any; self.tree.vars.len()],
                used: HashSet::new(),
                dot: Expr::new("dot", Ty::Any),
            },
        );
        if let Some(d) = self.tree.define_dollar.get(name) {
            self.scope.names[*d] = Some("dot".into());
        }
        let _ = write!(self.out, "{{% macro {}(dot) %}}", macro_name(name));
        self.list(body);
        self.out.push_str("{% endmacro %}");
        self.scope = saved;
    }

    fn list(&mut self, nodes: &[Node]) {
        for n in nodes {
            self.node(n);
        }
    }

    fn node(&mut self, n: &Node) {
        match n {
            Node::Text(t) => self.text(t),
            Node::Comment(text) => {
                let _ = write!(self.out, "{{# {} #}}", text.replace("#}", "# }"));
            }
            Node::Action(p) => self.action(p),
            Node::If(c) => self.if_(c),
            Node::Range(c) => self.range(c),
            Node::With(c) => self.with(c),
            Node::Template { pos, name, arg } => {
                self.mark(*pos);
                let arg = match arg {
                    Some(p) => self.pipe_value(p),
                    None => Expr::new("go_nil", Ty::Any),
                };
                if self.tree.defines.iter().any(|(n, _)| n == name) {
                    let _ = write!(self.out, "{{{{ {}({}) }}}}", macro_name(name), arg.code);
                } else {
                    let msg = format!("template: no such template {}", literal(name));
                    let _ = write!(self.out, "{{{{ go_fail({}) }}}}", literal(&msg));
                }
            }
            Node::Break(pos) => {
                self.mark(*pos);
                self.out.push_str("{% break %}");
            }
            Node::Continue(pos) => {
                self.mark(*pos);
                self.out.push_str("{% continue %}");
            }
        }
    }

    /// Text, with what Jinja would read as a tag opener written as a string.
    fn text(&mut self, t: &str) {
        let mut rest = t;
        while let Some(i) = rest.find('{') {
            let next = rest[i + 1..].chars().next();
            self.out.push_str(&rest[..i]);
            if matches!(next, None | Some('{' | '%' | '#')) {
                self.out.push_str("{% raw %}{{% endraw %}");
            } else {
                self.out.push('{');
            }
            rest = &rest[i + 1..];
        }
        self.out.push_str(rest);
    }

    /// `{{ pipeline }}`: prints it, or (a declaration or assignment) sets variables.
    fn action(&mut self, p: &Pipe) {
        self.mark(p.pos);
        if p.decl.is_empty() {
            let e = self.pipe_expr(p);
            if e.ty.prints_same() {
                let _ = write!(self.out, "{{{{ {} }}}}", e.code);
            } else {
                let _ = write!(self.out, "{{{{ {}|go_fmt }}}}", paren(&e.code));
            }
        } else {
            self.pipe_value(p);
        }
    }

    /// A pipeline's value; a declaration or assignment in it is made first (as `{% set %}`).
    fn pipe_value(&mut self, p: &Pipe) -> Expr {
        let e = self.pipe_expr(p);
        let Some(&var) = p.decl.last() else {
            return e;
        };
        self.set(var, &e, p.assign);
        let ty = e.ty;
        Expr::new(self.read(var), ty)
    }

    /// Binds a Go variable to a value: a fresh name for a declaration, or the existing one.
    fn set(&mut self, var: VarId, e: &Expr, assign: bool) {
        let boxed = self.tree.vars[var].crosses_loop;
        if assign {
            let name = self.name_of(var);
            let target = if boxed { format!("{name}.v") } else { name };
            let _ = write!(self.out, "{{% set {target} = {} %}}", e.code);
            return;
        }
        let name = self.declare(var);
        self.scope.types[var] = e.ty;
        if boxed {
            let _ = write!(self.out, "{{% set {name} = namespace(v={}) %}}", e.code);
        } else {
            let _ = write!(self.out, "{{% set {name} = {} %}}", e.code);
        }
    }

    fn declare(&mut self, var: VarId) -> String {
        let go = &self.tree.vars[var].name;
        let mut base: String = go
            .trim_start_matches('$')
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if base.is_empty() || base.starts_with(|c: char| c.is_ascii_digit()) {
            base.insert(0, 'v');
        }
        let name = self.fresh(&base);
        self.scope.names[var] = Some(name.clone());
        name
    }

    fn fresh(&mut self, base: &str) -> String {
        let taken = |s: &str, used: &HashSet<String>| {
            used.contains(s)
                || RESERVED.contains(&s)
                || super::parse::is_function(s)
                || s.starts_with("go_")
                || s.starts_with("tpl_")
        };
        let mut name = base.to_owned();
        let mut n = 1;
        while taken(&name, &self.scope.used) {
            n += 1;
            name = format!("{base}_{n}");
        }
        self.scope.used.insert(name.clone());
        name
    }

    fn name_of(&self, var: VarId) -> String {
        self.scope.names[var]
            .clone()
            .unwrap_or_else(|| "go_nil".into())
    }

    fn read(&self, var: VarId) -> String {
        let name = self.name_of(var);
        if self.tree.vars[var].crosses_loop && !self.tree.vars[var].root {
            format!("{name}.v")
        } else {
            name
        }
    }

    fn if_(&mut self, c: &Control) {
        self.mark(c.pos);
        let cond = self.pipe_value(&c.pipe);
        let _ = write!(self.out, "{{% if {} %}}", cond.code);
        self.list(&c.body);
        if let Some(els) = &c.els {
            self.out.push_str("{% else %}");
            self.list(els);
        }
        self.out.push_str("{% endif %}");
    }

    fn with(&mut self, c: &Control) {
        self.mark(c.pos);
        let e = self.pipe_expr(&c.pipe);
        let value = match c.pipe.decl.last() {
            Some(&var) => {
                self.set(var, &e, c.pipe.assign);
                Expr::new(self.read(var), e.ty)
            }
            None if is_name(&e.code) => e,
            None => {
                let name = self.fresh("value");
                let _ = write!(self.out, "{{% set {name} = {} %}}", e.code);
                Expr::new(name, e.ty)
            }
        };
        let _ = write!(self.out, "{{% if {} %}}", value.code);
        let outer = std::mem::replace(&mut self.scope.dot, value);
        self.list(&c.body);
        self.scope.dot = outer;
        if let Some(els) = &c.els {
            self.out.push_str("{% else %}");
            self.list(els);
        }
        self.out.push_str("{% endif %}");
    }

    fn range(&mut self, c: &Control) {
        self.mark(c.pos);
        let e = self.pipe_expr(&c.pipe);
        let elem_ty = match e.ty {
            Ty::StrList => Ty::Str,
            Ty::KvList | Ty::KvPairs => Ty::Kv,
            _ => Ty::Any,
        };
        let known_list = elem_ty != Ty::Any;
        let (index, elem) = match c.pipe.decl.as_slice() {
            [v] => (None, Some(*v)),
            [i, v] => (Some(*i), Some(*v)),
            _ => (None, None),
        };
        let boxed = |v: Option<VarId>| v.is_some_and(|v| self.tree.vars[v].crosses_loop);
        // A loop target of its own where the Go variable lives in a namespace.
        let elem_name = match elem {
            Some(v) if !boxed(Some(v)) => {
                self.scope.types[v] = elem_ty;
                self.declare(v)
            }
            _ => self.fresh(if elem_ty == Ty::Kv { "kv" } else { "item" }),
        };
        let index_name = match index {
            Some(v) if !known_list && !boxed(Some(v)) => Some(self.declare(v)),
            Some(_) if !known_list => Some(self.fresh("key")),
            _ => None,
        };
        let source = if known_list {
            e.code.clone()
        } else if index.is_some() {
            format!("go_pairs({})", e.code)
        } else {
            format!("go_range({})", e.code)
        };
        match &index_name {
            Some(i) => {
                let _ = write!(self.out, "{{% for {i}, {elem_name} in {source} %}}");
            }
            None => {
                let _ = write!(self.out, "{{% for {elem_name} in {source} %}}");
            }
        }
        if let Some(i) = index {
            if known_list {
                self.set(i, &Expr::new("loop.index0", Ty::Int), c.pipe.assign);
            } else if boxed(Some(i)) {
                let src = Expr::new(index_name.clone().unwrap_or_default(), Ty::Any);
                self.set(i, &src, c.pipe.assign);
            }
        }
        if let Some(v) = elem.filter(|v| boxed(Some(*v))) {
            self.set(v, &Expr::new(elem_name.clone(), elem_ty), c.pipe.assign);
        }
        let outer = std::mem::replace(&mut self.scope.dot, Expr::new(elem_name, elem_ty));
        self.list(&c.body);
        self.scope.dot = outer;
        if let Some(els) = &c.els {
            self.out.push_str("{% else %}");
            self.list(els);
        }
        self.out.push_str("{% endfor %}");
    }

    /// A pipeline as one expression: each command's value is the last argument of the next.
    fn pipe_expr(&mut self, p: &Pipe) -> Expr {
        let mut prev: Option<Expr> = None;
        for cmd in &p.cmds {
            prev = Some(self.command(cmd, prev));
        }
        prev.unwrap_or_else(|| Expr::new("go_nil", Ty::Any))
    }

    fn command(&mut self, cmd: &Cmd, piped: Option<Expr>) -> Expr {
        let Some(first) = cmd.args.first() else {
            return fail("empty command");
        };
        if let Term::Func(name) = first {
            let mut args: Vec<Expr> = cmd.args[1..].iter().map(|a| self.term(a)).collect();
            args.extend(piped);
            return call(name, args);
        }
        if cmd.args.len() > 1 || piped.is_some() {
            return match first {
                Term::Field(f) => fail(&format!(
                    "{} is not a method but has arguments",
                    f.join(".")
                )),
                _ => fail(&format!(
                    "can't give argument to non-function {}",
                    describe(first)
                )),
            };
        }
        if let Term::Nil = first {
            return fail("nil is not a command");
        }
        self.term(first)
    }

    fn term(&mut self, t: &Term) -> Expr {
        match t {
            Term::Func(name) => call(name, Vec::new()),
            Term::Dot => self.scope.dot.clone(),
            Term::Nil => Expr::new("none", Ty::Any),
            Term::Bool(b) => Expr::new(if *b { "true" } else { "false" }, Ty::Bool),
            Term::Int(i) => Expr::new(i.to_string(), Ty::Int),
            Term::Float(f) => Expr::new(float_literal(*f), Ty::Any),
            Term::Str(s) => Expr::new(literal(s), Ty::Str),
            Term::Var(id, fields) => {
                let ty = if self.tree.vars[*id].root {
                    Ty::Any
                } else {
                    self.var_ty(*id)
                };
                fields_of(Expr::new(self.read(*id), ty), fields)
            }
            Term::Field(fields) => fields_of(self.scope.dot.clone(), fields),
            Term::Paren(p, fields) => {
                let e = self.pipe_value(p);
                fields_of(e, fields)
            }
        }
    }

    /// A variable keeps its declaration's type unless it is ever assigned.
    fn var_ty(&self, id: VarId) -> Ty {
        if self.tree.vars[id].assigned {
            Ty::Any
        } else {
            self.scope.types[id]
        }
    }
}

fn describe(t: &Term) -> String {
    match t {
        Term::Str(s) => literal(s),
        Term::Int(i) => i.to_string(),
        Term::Float(f) => float_literal(*f),
        Term::Bool(b) => b.to_string(),
        Term::Dot => ".".into(),
        _ => "operand".into(),
    }
}

fn fail(msg: &str) -> Expr {
    Expr::new(format!("go_fail({})", literal(msg)), Ty::Any)
}

fn is_name(code: &str) -> bool {
    code.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

fn paren(code: &str) -> String {
    if is_name(code)
        || code.starts_with('"') && code.ends_with('"') && !code[1..code.len() - 1].contains('"')
    {
        code.to_owned()
    } else {
        format!("({code})")
    }
}

fn float_literal(f: f64) -> String {
    let s = format!("{f:?}");
    if s.contains(['.', 'e', 'E']) {
        s
    } else {
        format!("{s}.0")
    }
}

/// Field reads: a KVPair's `.Key`/`.Value` as plain attributes, anything else with Go's rules.
fn fields_of(mut e: Expr, fields: &[String]) -> Expr {
    let mut rest = fields;
    while let Some((f, tail)) = rest.split_first() {
        if e.ty == Ty::Kv && (f == "Key" || f == "Value") {
            e = Expr::new(
                format!("{}.{}", paren(&e.code), f.to_ascii_lowercase()),
                Ty::Str,
            );
            rest = tail;
            continue;
        }
        let names: Vec<String> = rest.iter().map(|f| literal(f)).collect();
        return Expr::new(
            format!("go_field({}, {})", e.code, names.join(", ")),
            Ty::Any,
        );
    }
    e
}

fn args_code(args: &[Expr]) -> String {
    args.iter()
        .map(|a| a.code.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A call of a builtin or confd function, written as plain Jinja where that is exact.
fn call(name: &str, args: Vec<Expr>) -> Expr {
    let all = |ty: Ty| args.iter().all(|a| a.ty == ty);
    match name {
        "and" | "or" if !args.is_empty() => {
            let ty = if args.iter().all(|a| a.ty == args[0].ty) {
                args[0].ty
            } else {
                Ty::Any
            };
            let joined = args
                .iter()
                .map(|a| paren(&a.code))
                .collect::<Vec<_>>()
                .join(&format!(" {name} "));
            Expr::new(
                if args.len() == 1 {
                    joined
                } else {
                    format!("({joined})")
                },
                ty,
            )
        }
        "not" if args.len() == 1 => Expr::new(format!("(not {})", paren(&args[0].code)), Ty::Bool),
        "eq" | "ne" | "lt" | "le" | "gt" | "ge"
            if args.len() == 2 && (all(Ty::Str) || all(Ty::Int)) =>
        {
            let op = match name {
                "eq" => "==",
                "ne" => "!=",
                "lt" => "<",
                "le" => "<=",
                "gt" => ">",
                _ => ">=",
            };
            Expr::new(
                format!("({} {op} {})", paren(&args[0].code), paren(&args[1].code)),
                Ty::Bool,
            )
        }
        "len"
            if args.len() == 1 && matches!(args[0].ty, Ty::StrList | Ty::KvList | Ty::KvPairs) =>
        {
            Expr::new(format!("{}|length", paren(&args[0].code)), Ty::Int)
        }
        "printf" => printf(args),
        // confd's ls/lsdir differ from the Jinja ones only at the root.
        "ls" | "lsdir"
            if args.len() == 1
                && args[0].ty == Ty::Str
                && args[0].code.starts_with('"')
                && args[0].code != "\"/\"" =>
        {
            Expr::new(format!("{name}({})", args[0].code), Ty::StrList)
        }
        // confd's reverse has no case for `gets`' KVPairs type: it comes back unchanged.
        "reverse" if args.len() == 1 && args[0].ty == Ty::KvPairs => args[0].clone(),
        "index" if args.len() == 2 && args[0].ty == Ty::StrList && args[1].ty == Ty::Int => {
            Expr::new(
                format!("go_index({}, {})", args[0].code, args[1].code),
                Ty::Str,
            )
        }
        _ => {
            let (jinja, ty) = function(name, &args);
            Expr::new(format!("{jinja}({})", args_code(&args)), ty)
        }
    }
}

/// `printf "%s:%d" a b` with strings and ints only is a concatenation: `a ~ ":" ~ b`.
fn printf(args: Vec<Expr>) -> Expr {
    match concatenation(&args) {
        Some(code) => Expr::new(code, Ty::Str),
        None => Expr::new(format!("go_printf({})", args_code(&args)), Ty::Str),
    }
}

/// The Jinja concatenation equal to `printf` with a literal format of `%s` (strings), `%d`
/// (ints), `%v` (either) and `%%`; None for anything else (`%d` of a string prints
/// `%!d(string=…)` in Go, a width pads, …).
fn concatenation(args: &[Expr]) -> Option<String> {
    let fmt = args.first().filter(|f| f.ty == Ty::Str)?;
    let format: String = serde_json::from_str(&fmt.code).ok()?;
    let mut parts: Vec<String> = Vec::new();
    let mut lit = String::new();
    let mut rest = args[1..].iter();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            lit.push(c);
            continue;
        }
        let verb = chars.next()?;
        if verb == '%' {
            lit.push('%');
            continue;
        }
        let a = rest.next()?;
        let fits = match verb {
            'd' => a.ty == Ty::Int,
            's' => a.ty == Ty::Str,
            'v' => matches!(a.ty, Ty::Str | Ty::Int),
            _ => false,
        };
        if !fits {
            return None;
        }
        if !lit.is_empty() {
            parts.push(literal(&std::mem::take(&mut lit)));
        }
        // `~` makes a string of an int; a lone int needs the filter.
        parts.push(if a.ty == Ty::Int && format.len() == 2 {
            format!("{}|string", paren(&a.code))
        } else {
            paren(&a.code)
        });
    }
    if rest.next().is_some() {
        return None;
    }
    if !lit.is_empty() || parts.is_empty() {
        parts.push(literal(&lit));
    }
    Some(parts.join(" ~ "))
}

/// The Jinja function for a Go/confd function, and what it returns.
fn function(name: &str, args: &[Expr]) -> (&'static str, Ty) {
    let first = args.first().map_or(Ty::Any, |a| a.ty);
    match name {
        "getv" => ("getv", Ty::Str),
        "getvs" => ("getvs", Ty::StrList),
        "gets" => ("gets", Ty::KvPairs),
        "get" => ("get", Ty::Kv),
        "exists" => ("exists", Ty::Bool),
        "ls" => ("go_ls", Ty::StrList),
        "lsdir" => ("go_lsdir", Ty::StrList),
        "hostports" => ("hostports", Ty::StrList),
        "base" => ("base", Ty::Str),
        "dir" => ("dir", Ty::Str),
        "split" => ("split", Ty::StrList),
        "join" => ("join", Ty::Str),
        "toUpper" => ("toUpper", Ty::Str),
        "toLower" => ("toLower", Ty::Str),
        "replace" => ("replace", Ty::Str),
        "contains" => ("contains", Ty::Bool),
        "trimSuffix" => ("trimSuffix", Ty::Str),
        "base64Encode" => ("base64Encode", Ty::Str),
        "base64Decode" => ("base64Decode", Ty::Str),
        "parseBool" => ("parseBool", Ty::Bool),
        "atoi" => ("atoi", Ty::Int),
        "add" => ("add", Ty::Int),
        "sub" => ("sub", Ty::Int),
        "mul" => ("mul", Ty::Int),
        "div" => ("div", Ty::Int),
        "mod" => ("mod", Ty::Int),
        "getenv" => ("getenv", Ty::Str),
        "fileExists" => ("fileExists", Ty::Bool),
        "lookupIP" => ("lookupIP", Ty::StrList),
        "lookupIPV4" => ("lookupIPV4", Ty::StrList),
        "lookupIPV6" => ("lookupIPV6", Ty::StrList),
        "lookupSRV" => ("lookupSRV", Ty::Any),
        "datetime" => ("datetime", Ty::Any),
        "seq" => ("seq", Ty::Any),
        "json" => ("go_json", Ty::Any),
        "jsonArray" => ("go_json_array", Ty::Any),
        "map" => ("go_map", Ty::Any),
        "reverse" => ("go_reverse", if first == Ty::Any { Ty::Any } else { first }),
        "sortByLength" => ("sortByLength", Ty::StrList),
        "sortKVByLength" => ("sortKVByLength", Ty::KvList),
        "slice" => (
            "go_slice",
            if first == Ty::Str {
                Ty::Str
            } else if first == Ty::StrList {
                Ty::StrList
            } else {
                Ty::Any
            },
        ),
        "index" => ("go_index", Ty::Any),
        "len" => ("go_len", Ty::Int),
        "print" => ("go_print", Ty::Str),
        "println" => ("go_println", Ty::Str),
        "html" => ("go_html", Ty::Str),
        "js" => ("go_js", Ty::Str),
        "urlquery" => ("go_urlquery", Ty::Str),
        "and" => ("go_and", Ty::Any),
        "or" => ("go_or", Ty::Any),
        "not" => ("go_not", Ty::Bool),
        "eq" => ("go_eq", Ty::Bool),
        "ne" => ("go_ne", Ty::Bool),
        "lt" => ("go_lt", Ty::Bool),
        "le" => ("go_le", Ty::Bool),
        "gt" => ("go_gt", Ty::Bool),
        "ge" => ("go_ge", Ty::Bool),
        _ => ("go_call", Ty::Any),
    }
}
