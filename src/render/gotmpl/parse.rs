//! Go's text/template grammar (as Go 1.19 has it), parsed into a tree the translator walks.
//! Checks what Go's parser checks: undefined variables and functions, `break`/`continue`
//! outside `range`, unbalanced `{{end}}`. Trim markers are applied here, to the text nodes.

use std::collections::HashMap;

/// Where a node starts in the template: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("{line}:{col}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

#[derive(Debug)]
pub enum Node {
    Text(String),
    /// A comment: prints nothing; `convert` keeps its text.
    Comment(String),
    Action(Pipe),
    If(Control),
    Range(Control),
    With(Control),
    Template {
        pos: Pos,
        name: String,
        arg: Option<Pipe>,
    },
    Break(Pos),
    Continue(Pos),
}

#[derive(Debug)]
pub struct Control {
    pub pos: Pos,
    pub pipe: Pipe,
    pub body: Vec<Node>,
    pub els: Option<Vec<Node>>,
}

#[derive(Debug)]
pub struct Pipe {
    pub pos: Pos,
    /// Variables declared (`:=`) or assigned (`=`) by this pipeline.
    pub decl: Vec<VarId>,
    pub assign: bool,
    pub cmds: Vec<Cmd>,
}

#[derive(Debug)]
pub struct Cmd {
    /// The first is what runs (a function, or an operand); the rest are its arguments.
    pub args: Vec<Term>,
}

#[derive(Debug)]
pub enum Term {
    Func(String),
    Dot,
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// `$x.a.b`: a variable and the fields read from it.
    Var(VarId, Vec<String>),
    /// `.a.b`: fields of dot.
    Field(Vec<String>),
    /// `(pipeline).a.b`.
    Paren(Box<Pipe>, Vec<String>),
}

pub type VarId = usize;

/// One declared variable. `$` of each template (root and every define) is one too.
#[derive(Debug)]
pub struct Var {
    pub name: String,
    /// How many `range`s of its template enclose the declaration.
    pub depth: usize,
    /// Assigned from inside a deeper `range`: Jinja's loop scopes would lose that assignment.
    pub crosses_loop: bool,
    /// Assigned (`=`) anywhere after its declaration: its type is not the declaration's.
    pub assigned: bool,
    /// `$` of a template.
    pub root: bool,
}

impl Tree {
    /// Whether any text (outside actions) holds a Jinja tag opener.
    pub fn has_jinja_tags(&self) -> bool {
        fn any(nodes: &[Node]) -> bool {
            nodes.iter().any(|n| match n {
                Node::Text(t) => t.contains("{%") || t.contains("{#"),
                Node::If(c) | Node::Range(c) | Node::With(c) => {
                    any(&c.body) || c.els.as_deref().is_some_and(any)
                }
                _ => false,
            })
        }
        any(&self.root) || self.defines.iter().any(|(_, body)| any(body))
    }
}

#[derive(Debug, Default)]
pub struct Tree {
    pub root: Vec<Node>,
    pub defines: Vec<(String, Vec<Node>)>,
    pub vars: Vec<Var>,
    /// The root template's `$`.
    pub root_dollar: VarId,
    /// Each define's `$`, by name.
    pub define_dollar: HashMap<String, VarId>,
}

/// Functions a template may call: Go's builtins and confd's functions.
pub fn is_function(name: &str) -> bool {
    BUILTINS.contains(&name) || CONFD_FUNCTIONS.contains(&name)
}

pub const BUILTINS: &[&str] = &[
    "and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf",
    "println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne",
];

pub const CONFD_FUNCTIONS: &[&str] = &[
    "base",
    "split",
    "json",
    "jsonArray",
    "dir",
    "map",
    "getenv",
    "join",
    "datetime",
    "toUpper",
    "toLower",
    "contains",
    "replace",
    "trimSuffix",
    "lookupIP",
    "lookupIPV4",
    "lookupIPV6",
    "lookupSRV",
    "fileExists",
    "base64Encode",
    "base64Decode",
    "parseBool",
    "reverse",
    "sortByLength",
    "sortKVByLength",
    "add",
    "sub",
    "div",
    "mod",
    "mul",
    "seq",
    "atoi",
    "exists",
    "ls",
    "lsdir",
    "get",
    "gets",
    "getv",
    "getvs",
    "hostports",
];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Text(String),
    Comment(String),
    /// `{{`; the bool says a trim marker follows.
    Left,
    Right,
    Space,
    Ident(String),
    Keyword(&'static str),
    Field(String),
    Var(String),
    Dot,
    Str(String),
    Char(i64),
    Number(String),
    Bool(bool),
    Nil,
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
    Eof,
}

const KEYWORDS: &[&str] = &[
    "block", "break", "continue", "define", "else", "end", "if", "range", "template", "with",
];

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    toks: Vec<(Tok, usize)>,
    /// Each line's starting byte, to turn offsets into line:column.
    line_starts: Vec<usize>,
}

impl<'a> Lexer<'a> {
    fn err(&self, at: usize, message: impl Into<String>) -> ParseError {
        let p = pos_of(self.src, &self.line_starts, at);
        ParseError {
            line: p.line,
            col: p.col,
            message: message.into(),
        }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn run(mut self) -> Result<Vec<(Tok, usize)>, ParseError> {
        let mut trim_next = false;
        loop {
            let start = self.pos;
            let end = self
                .rest()
                .find("{{")
                .map_or(self.src.len(), |i| self.pos + i);
            let mut text = &self.src[start..end];
            if trim_next {
                text = text.trim_start_matches(is_space);
            }
            let left_trim =
                self.src[end..].starts_with("{{-") && self.src[end + 3..].starts_with(is_space);
            if left_trim {
                text = text.trim_end_matches(is_space);
            }
            if !text.is_empty() {
                self.toks.push((Tok::Text(text.to_owned()), start));
            }
            if end == self.src.len() {
                self.toks.push((Tok::Eof, end));
                return Ok(self.toks);
            }
            self.pos = end + if left_trim { 4 } else { 2 };
            trim_next = self.action(end)?;
        }
    }

    /// Lexes one action from after its `{{`; returns whether it ends with a trim marker.
    fn action(&mut self, at: usize) -> Result<bool, ParseError> {
        if self.rest().starts_with("/*") {
            // The closing `*/` comes after the opening `/*` (`{{/*/` is unclosed, not empty).
            let Some(close) = self.rest()[2..].find("*/").map(|i| i + 2) else {
                return Err(self.err(at, "unclosed comment"));
            };
            let text = self.rest()[2..close].trim().to_owned();
            self.pos += close + 2;
            let Some(trim) = self.right_delim() else {
                return Err(self.err(at, "comment ends before closing delimiter"));
            };
            self.toks.push((Tok::Comment(text), at));
            return Ok(trim);
        }
        self.toks.push((Tok::Left, at));
        let mut depth = 0usize;
        loop {
            if let Some(trim) = self.right_delim() {
                if depth > 0 {
                    return Err(self.err(self.pos, "unclosed left paren"));
                }
                self.toks.push((Tok::Right, self.pos));
                return Ok(trim);
            }
            let start = self.pos;
            let Some(c) = self.rest().chars().next() else {
                return Err(self.err(at, "unclosed action"));
            };
            let tok = match c {
                c if is_space(c) => {
                    self.pos += self.rest().len() - self.rest().trim_start_matches(is_space).len();
                    // A space before ` -}}` belongs to the delimiter.
                    if self.src[..self.pos].ends_with(is_space) && self.rest().starts_with("-}}") {
                        self.pos -= 1;
                        if self.pos == start {
                            continue;
                        }
                    }
                    Tok::Space
                }
                '(' | ')' | '|' | ',' | '=' => {
                    self.pos += 1;
                    match c {
                        '(' => {
                            depth += 1;
                            Tok::LParen
                        }
                        ')' => {
                            depth = depth
                                .checked_sub(1)
                                .ok_or_else(|| self.err(start, "unexpected right paren"))?;
                            Tok::RParen
                        }
                        '|' => Tok::Pipe,
                        ',' => Tok::Comma,
                        _ => Tok::Assign,
                    }
                }
                ':' => {
                    if !self.rest().starts_with(":=") {
                        return Err(self.err(start, "expected :="));
                    }
                    self.pos += 2;
                    Tok::Declare
                }
                '"' => Tok::Str(self.quoted(start)?),
                '`' => {
                    let Some(close) = self.rest()[1..].find('`') else {
                        return Err(self.err(start, "unterminated raw quoted string"));
                    };
                    let s = self.rest()[1..1 + close].to_owned();
                    self.pos += close + 2;
                    Tok::Str(s)
                }
                '\'' => Tok::Char(self.char_constant(start)?),
                '$' => {
                    self.pos += 1;
                    Tok::Var(format!("${}", self.word()))
                }
                '.' => {
                    if self.rest()[1..].starts_with(|c: char| c.is_ascii_digit()) {
                        Tok::Number(self.number())
                    } else {
                        self.pos += 1;
                        let name = self.word();
                        if name.is_empty() {
                            Tok::Dot
                        } else {
                            Tok::Field(name)
                        }
                    }
                }
                '+' | '-' | '0'..='9' => Tok::Number(self.number()),
                c if c == '_' || c.is_alphabetic() => {
                    let w = self.word();
                    match w.as_str() {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        _ => match KEYWORDS.iter().find(|k| **k == w) {
                            Some(k) => Tok::Keyword(k),
                            None => Tok::Ident(w),
                        },
                    }
                }
                c => {
                    return Err(self.err(start, format!("unrecognized character in action: {c:?}")))
                }
            };
            self.toks.push((tok, start));
        }
    }

    /// At `}}` or ` -}}`: consumes it and says whether it trims.
    fn right_delim(&mut self) -> Option<bool> {
        let r = self.rest();
        if r.starts_with(is_space) && r[1..].starts_with("-}}") {
            self.pos += 4;
            Some(true)
        } else if r.starts_with("}}") {
            self.pos += 2;
            Some(false)
        } else {
            None
        }
    }

    fn word(&mut self) -> String {
        let r = self.rest();
        let n = r
            .find(|c: char| !(c == '_' || c.is_alphanumeric()))
            .unwrap_or(r.len());
        self.pos += n;
        r[..n].to_owned()
    }

    fn number(&mut self) -> String {
        let r = self.rest();
        let mut n = 0;
        let mut prev = ' ';
        for c in r.chars() {
            let ok = c.is_ascii_alphanumeric()
                || c == '_'
                || c == '.'
                || (n == 0 && (c == '+' || c == '-'))
                || ((c == '+' || c == '-') && matches!(prev, 'e' | 'E' | 'p' | 'P'));
            if !ok {
                break;
            }
            prev = c;
            n += c.len_utf8();
        }
        self.pos += n;
        r[..n].to_owned()
    }

    fn quoted(&mut self, start: usize) -> Result<String, ParseError> {
        let r = self.rest();
        let mut escaped = false;
        for (i, c) in r.char_indices().skip(1) {
            match c {
                '\n' => break,
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    let body = &r[1..i];
                    self.pos += i + 1;
                    return unquote(body).map_err(|m| self.err(start, m));
                }
                _ => escaped = false,
            }
        }
        Err(self.err(start, "unterminated quoted string"))
    }

    fn char_constant(&mut self, start: usize) -> Result<i64, ParseError> {
        let r = self.rest();
        let mut escaped = false;
        for (i, c) in r.char_indices().skip(1) {
            match c {
                '\n' => break,
                '\\' if !escaped => escaped = true,
                '\'' if !escaped => {
                    let body = unquote(&r[1..i]).map_err(|m| self.err(start, m))?;
                    self.pos += i + 1;
                    let mut chars = body.chars();
                    return match (chars.next(), chars.next()) {
                        (Some(c), None) => Ok(i64::from(u32::from(c))),
                        _ => {
                            Err(self
                                .err(start, format!("malformed character constant: {}", &r[..=i])))
                        }
                    };
                }
                _ => escaped = false,
            }
        }
        Err(self.err(start, "unterminated character constant"))
    }
}

/// Go's interpreted string escapes.
fn unquote(body: &str) -> Result<String, String> {
    let mut out = String::with_capacity(body.len());
    let mut bytes: Vec<u8> = Vec::new();
    let mut chars = body.chars().peekable();
    let flush = |bytes: &mut Vec<u8>, out: &mut String| {
        if !bytes.is_empty() {
            out.push_str(&String::from_utf8_lossy(bytes));
            bytes.clear();
        }
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            flush(&mut bytes, &mut out);
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            return Err("bad escape at end of string".into());
        };
        let simple = match e {
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            '\\' => Some('\\'),
            '"' => Some('"'),
            '\'' => Some('\''),
            _ => None,
        };
        if let Some(s) = simple {
            flush(&mut bytes, &mut out);
            out.push(s);
            continue;
        }
        let (digits, radix) = match e {
            'x' => (2, 16),
            'u' => (4, 16),
            'U' => (8, 16),
            '0'..='7' => (2, 8),
            _ => return Err(format!("unknown escape sequence: \\{e}")),
        };
        let mut text = String::new();
        if radix == 8 {
            text.push(e);
        }
        for _ in 0..digits {
            match chars.next() {
                Some(d) => text.push(d),
                None => return Err("invalid escape in string".into()),
            }
        }
        let n =
            u32::from_str_radix(&text, radix).map_err(|_| format!("invalid escape \\{text}"))?;
        if e == 'x' || radix == 8 {
            bytes.push(u8::try_from(n).map_err(|_| format!("octal escape value > 255: {n}"))?);
        } else {
            flush(&mut bytes, &mut out);
            out.push(
                char::from_u32(n).ok_or_else(|| format!("invalid Unicode code point {n:#x}"))?,
            );
        }
    }
    flush(&mut bytes, &mut out);
    Ok(out)
}

fn pos_of(src: &str, line_starts: &[usize], at: usize) -> Pos {
    let line = line_starts.partition_point(|s| *s <= at);
    let start = line_starts[line.saturating_sub(1)];
    Pos {
        line,
        col: src[start..at.min(src.len())].chars().count() + 1,
    }
}

/// A Go number literal as text/template reads it: an int unless it is written as a float.
fn number(text: &str) -> Option<Term> {
    let clean = text.replace('_', "");
    let (neg, digits) = match clean.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    let lower = digits.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        if h.contains(['p', '.']) {
            None
        } else {
            i64::from_str_radix(h, 16).ok()
        }
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|b| b.is_ascii_digit())
    {
        i64::from_str_radix(&lower[1..], 8).ok()
    } else {
        lower.parse::<i64>().ok()
    };
    if let Some(i) = int {
        return Some(Term::Int(if neg { -i } else { i }));
    }
    let f = if let Some(h) = lower.strip_prefix("0x") {
        hex_float(h)?
    } else {
        lower.parse::<f64>().ok()?
    };
    Some(Term::Float(if neg { -f } else { f }))
}

/// `0x1p4`-style literals: mantissa in hex, exponent of two in decimal.
fn hex_float(h: &str) -> Option<f64> {
    let (mant, exp) = h.split_once('p')?;
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let mut v = 0f64;
    for d in int.chars() {
        v = v * 16.0 + f64::from(d.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for d in frac.chars() {
        v += f64::from(d.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    Some(v * 2f64.powi(exp.parse::<i32>().ok()?))
}

/// Parses a whole template.
pub fn parse(src: &str) -> Result<Tree, ParseError> {
    let mut line_starts = vec![0];
    line_starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
    let toks = Lexer {
        src,
        pos: 0,
        toks: Vec::new(),
        line_starts: line_starts.clone(),
    }
    .run()?;
    let mut p = Parser {
        src,
        line_starts,
        toks,
        i: 0,
        tree: Tree::default(),
        scope: Vec::new(),
        loops: 0,
    };
    p.tree.root_dollar = p.declare_root();
    let (root, end) = p.list(true)?;
    if let Some((what, at)) = end {
        return Err(p.err_at(at, format!("unexpected {{{{{what}}}}}")));
    }
    p.tree.root = root;
    Ok(p.tree)
}

struct Parser<'a> {
    src: &'a str,
    line_starts: Vec<usize>,
    toks: Vec<(Tok, usize)>,
    i: usize,
    tree: Tree,
    /// Variables in scope, innermost last.
    scope: Vec<VarId>,
    /// `range`s open around the current point of the current template.
    loops: usize,
}

/// What ended a list: `end` or `else`, and where.
type Ending = Option<(&'static str, usize)>;

impl Parser<'_> {
    fn err_at(&self, at: usize, message: impl Into<String>) -> ParseError {
        let p = pos_of(self.src, &self.line_starts, at);
        ParseError {
            line: p.line,
            col: p.col,
            message: message.into(),
        }
    }

    fn pos(&self, at: usize) -> Pos {
        pos_of(self.src, &self.line_starts, at)
    }

    fn peek(&self) -> &(Tok, usize) {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> (Tok, usize) {
        let t = self.peek().clone();
        self.i += 1;
        t
    }

    fn next_non_space(&mut self) -> (Tok, usize) {
        loop {
            let t = self.next();
            if t.0 != Tok::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> &(Tok, usize) {
        while self.peek().0 == Tok::Space {
            self.i += 1;
        }
        self.peek()
    }

    fn declare_root(&mut self) -> VarId {
        self.tree.vars.push(Var {
            name: "$".into(),
            depth: 0,
            crosses_loop: false,
            assigned: false,
            root: true,
        });
        let id = self.tree.vars.len() - 1;
        self.scope.push(id);
        id
    }

    fn lookup(&self, name: &str) -> Option<VarId> {
        self.scope
            .iter()
            .rev()
            .copied()
            .find(|id| self.tree.vars[*id].name == name)
    }

    /// Nodes up to `{{end}}`/`{{else}}` (returned) or the end of the template.
    fn list(&mut self, top: bool) -> Result<(Vec<Node>, Ending), ParseError> {
        let mut nodes = Vec::new();
        loop {
            let (tok, at) = self.next();
            match tok {
                Tok::Eof => {
                    if top {
                        return Ok((nodes, None));
                    }
                    return Err(self.err_at(at, "unexpected EOF"));
                }
                Tok::Text(t) => nodes.push(Node::Text(t)),
                Tok::Comment(text) => nodes.push(Node::Comment(text)),
                Tok::Left => {
                    let (tok, kat) = self.next_non_space();
                    match tok {
                        Tok::Keyword("end") => {
                            self.expect_right("end")?;
                            return Ok((nodes, Some(("end", kat))));
                        }
                        Tok::Keyword("else") => {
                            // `{{else if ...}}` leaves the `if` for the caller.
                            if self.peek_non_space().0 != Tok::Keyword("if") {
                                self.expect_right("else")?;
                            }
                            return Ok((nodes, Some(("else", kat))));
                        }
                        Tok::Keyword(k) => {
                            if let Some(n) = self.keyword(k, kat, top)? {
                                nodes.push(n);
                            }
                        }
                        _ => {
                            self.i -= 1;
                            let pipe = self.pipeline("command", false)?;
                            nodes.push(Node::Action(pipe));
                        }
                    }
                }
                other => return Err(self.err_at(at, format!("unexpected {other:?}"))),
            }
        }
    }

    fn expect_right(&mut self, context: &str) -> Result<(), ParseError> {
        match self.next_non_space() {
            (Tok::Right, _) => Ok(()),
            (t, at) => Err(self.err_at(at, format!("unexpected {t:?} in {context}"))),
        }
    }

    fn keyword(
        &mut self,
        k: &'static str,
        at: usize,
        top: bool,
    ) -> Result<Option<Node>, ParseError> {
        let pos = self.pos(at);
        Ok(Some(match k {
            "if" => Node::If(self.control("if", pos)?),
            "range" => Node::Range(self.control("range", pos)?),
            "with" => Node::With(self.control("with", pos)?),
            "break" | "continue" => {
                if self.loops == 0 {
                    return Err(self.err_at(at, format!("{{{{{k}}}}} outside {{{{range}}}}")));
                }
                self.expect_right(k)?;
                if k == "break" {
                    Node::Break(pos)
                } else {
                    Node::Continue(pos)
                }
            }
            "template" => {
                let name = self.template_name("template")?;
                let arg = if self.peek_non_space().0 == Tok::Right {
                    self.next();
                    None
                } else {
                    Some(self.pipeline("template", false)?)
                };
                Node::Template { pos, name, arg }
            }
            "define" | "block" => {
                if !top {
                    return Err(self.err_at(
                        at,
                        format!("unexpected {{{{{k}}}}} inside a control structure"),
                    ));
                }
                let name = self.template_name(k)?;
                let arg = if k == "block" {
                    Some(self.pipeline("block", false)?)
                } else {
                    self.expect_right("define")?;
                    None
                };
                self.define(name.clone(), at)?;
                if k == "define" {
                    return Ok(None);
                }
                Node::Template { pos, name, arg }
            }
            other => return Err(self.err_at(at, format!("unexpected {{{{{other}}}}}"))),
        }))
    }

    fn template_name(&mut self, context: &str) -> Result<String, ParseError> {
        match self.next_non_space() {
            (Tok::Str(s), _) => Ok(s),
            (t, at) => Err(self.err_at(
                at,
                format!("unexpected {t:?} in {context} clause: want a quoted name"),
            )),
        }
    }

    /// A define's body: a template of its own, with its own `$` and variables.
    fn define(&mut self, name: String, at: usize) -> Result<(), ParseError> {
        let saved_scope = std::mem::take(&mut self.scope);
        let saved_loops = std::mem::replace(&mut self.loops, 0);
        let dollar = self.declare_root();
        let (body, end) = self.list(false)?;
        if !matches!(end, Some(("end", _))) {
            return Err(self.err_at(at, "unexpected {{else}} in define"));
        }
        self.scope = saved_scope;
        self.loops = saved_loops;
        self.tree.define_dollar.insert(name.clone(), dollar);
        match self.tree.defines.iter_mut().find(|(n, _)| *n == name) {
            // Go keeps the last non-empty definition.
            Some(d) => d.1 = body,
            None => self.tree.defines.push((name, body)),
        }
        Ok(())
    }

    fn control(&mut self, context: &'static str, pos: Pos) -> Result<Control, ParseError> {
        let mark = self.scope.len();
        let pipe = self.pipeline(context, context == "range")?;
        if context == "range" {
            self.loops += 1;
        }
        let (body, end) = self.list(false)?;
        if context == "range" {
            self.loops -= 1;
        }
        let els = match end {
            Some(("else", at)) => {
                if self.peek_non_space().0 == Tok::Keyword("if") {
                    if context != "if" {
                        return Err(
                            self.err_at(at, format!("unexpected {{{{else if}}}} in {context}"))
                        );
                    }
                    // `{{else if x}}…{{end}}` is `{{else}}{{if x}}…{{end}}{{end}}`.
                    let (_, iat) = self.next_non_space();
                    let inner = self.control("if", self.pos(iat))?;
                    Some(vec![Node::If(inner)])
                } else {
                    let (els, end) = self.list(false)?;
                    if let Some(("else", at)) = end {
                        return Err(self
                            .err_at(at, format!("expected end; found {{{{else}}}} in {context}")));
                    }
                    Some(els)
                }
            }
            _ => None,
        };
        self.scope.truncate(mark);
        Ok(Control {
            pos,
            pipe,
            body,
            els,
        })
    }

    /// A pipeline up to `}}` (or `)` when `context` is "paren").
    fn pipeline(&mut self, context: &'static str, range: bool) -> Result<Pipe, ParseError> {
        let at = self.peek_non_space().1;
        let mut decl = Vec::new();
        let mut assign = false;
        if let Tok::Var(_) = self.peek_non_space().0 {
            let save = self.i;
            let (Tok::Var(first), vat) = self.next() else {
                unreachable!("peeked a variable")
            };
            let after = self.peek_non_space().0.clone();
            match after {
                Tok::Declare | Tok::Assign => {
                    self.next();
                    assign = after == Tok::Assign;
                    decl.push(self.bind(&first, assign, vat)?);
                }
                Tok::Comma if range => {
                    self.next();
                    let (second, sat) = match self.next_non_space() {
                        (Tok::Var(s), sat) => (s, sat),
                        (t, at) => {
                            return Err(self.err_at(
                                at,
                                format!("range can only initialize variables, not {t:?}"),
                            ))
                        }
                    };
                    match self.next_non_space() {
                        (Tok::Declare, _) => {}
                        (Tok::Assign, _) => assign = true,
                        (t, at) => {
                            return Err(
                                self.err_at(at, format!("unexpected {t:?} in range declaration"))
                            )
                        }
                    }
                    decl.push(self.bind(&first, assign, vat)?);
                    decl.push(self.bind(&second, assign, sat)?);
                }
                _ => self.i = save,
            }
        }
        let mut cmds = Vec::new();
        loop {
            cmds.push(self.command(context)?);
            match self.next_non_space() {
                (Tok::Right, _) if context != "paren" => break,
                (Tok::RParen, _) if context == "paren" => break,
                (Tok::Pipe, pat) => {
                    if matches!(self.peek_non_space().0, Tok::Right | Tok::RParen) {
                        return Err(
                            self.err_at(pat, format!("missing command after | in {context}"))
                        );
                    }
                }
                (t, tat) => return Err(self.err_at(tat, format!("unexpected {t:?} in {context}"))),
            }
        }
        // Declarations are visible only after their pipeline (Go pushes them at its end).
        if !assign {
            self.scope.extend(&decl);
        }
        Ok(Pipe {
            pos: self.pos(at),
            decl,
            assign,
            cmds,
        })
    }

    /// The variable a declaration makes or an assignment changes.
    fn bind(&mut self, name: &str, assign: bool, at: usize) -> Result<VarId, ParseError> {
        if assign {
            let id = self
                .lookup(name)
                .ok_or_else(|| self.err_at(at, format!("undefined variable \"{name}\"")))?;
            self.tree.vars[id].assigned = true;
            if self.loops > self.tree.vars[id].depth {
                self.tree.vars[id].crosses_loop = true;
            }
            return Ok(id);
        }
        self.tree.vars.push(Var {
            name: name.to_owned(),
            depth: self.loops,
            crosses_loop: false,
            assigned: false,
            root: false,
        });
        Ok(self.tree.vars.len() - 1)
    }

    fn command(&mut self, context: &'static str) -> Result<Cmd, ParseError> {
        let at = self.peek_non_space().1;
        let mut args = Vec::new();
        loop {
            let (tok, _) = self.peek_non_space().clone();
            match tok {
                Tok::Right | Tok::RParen | Tok::Pipe => break,
                _ => args.push(self.operand(context)?),
            }
            match self.peek().0 {
                Tok::Space | Tok::Right | Tok::RParen | Tok::Pipe => {}
                ref t => {
                    let (t, tat) = (t.clone(), self.peek().1);
                    return Err(self.err_at(tat, format!("unexpected {t:?} in operand")));
                }
            }
        }
        if args.is_empty() {
            return Err(self.err_at(at, format!("missing value for {context}")));
        }
        Ok(Cmd { args })
    }

    fn operand(&mut self, context: &'static str) -> Result<Term, ParseError> {
        let (tok, at) = self.next_non_space();
        let term = match tok {
            Tok::Ident(name) => {
                if !is_function(&name) {
                    return Err(self.err_at(at, format!("function \"{name}\" not defined")));
                }
                return Ok(Term::Func(name));
            }
            Tok::Dot => Term::Dot,
            Tok::Nil => Term::Nil,
            Tok::Bool(b) => Term::Bool(b),
            Tok::Str(s) => Term::Str(s),
            Tok::Char(c) => Term::Int(c),
            Tok::Number(text) => number(&text)
                .ok_or_else(|| self.err_at(at, format!("bad number syntax: \"{text}\"")))?,
            Tok::Field(f) => {
                let mut fields = vec![f];
                fields.extend(self.fields());
                return Ok(Term::Field(fields));
            }
            Tok::Var(name) => {
                let id = self
                    .lookup(&name)
                    .ok_or_else(|| self.err_at(at, format!("undefined variable \"{name}\"")))?;
                return Ok(Term::Var(id, self.fields()));
            }
            Tok::LParen => {
                let pipe = self.pipeline("paren", false)?;
                return Ok(Term::Paren(Box::new(pipe), self.fields()));
            }
            t => return Err(self.err_at(at, format!("unexpected {t:?} in {context}"))),
        };
        if matches!(self.peek().0, Tok::Field(_)) {
            return Err(self.err_at(at, "unexpected . after term"));
        }
        Ok(term)
    }

    /// Fields chained right after an operand: `.a.b`.
    fn fields(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Tok::Field(f) = &self.peek().0 {
            out.push(f.clone());
            self.i += 1;
        }
        out
    }
}
