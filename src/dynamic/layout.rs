//! What a rendered nginx file says about its dynamic upstreams, and whether a change to it only
//! moves servers between upstreams nginx already has (the only change the Lua balancer can take
//! without a reload).
//!
//! A dynamic upstream is an `upstream NAME { server …; … }` block holding the directive
//! [`directive`] writes: `balancer_by_lua_block { require("confd_rs").balance("NAME", V) }`,
//! where V is the etcd revision the file was rendered at. Everything else in the file (other
//! blocks, other directives, plain upstreams) is its skeleton, which must stay the same for a
//! change to go the dynamic way. Comments and whitespace are not part of the skeleton: nginx
//! ignores them too.

use std::net::SocketAddr;

/// The call the balancer directive makes, up to the upstream's name.
const CALL: &str = "require(\"confd_rs\").balance(\"";

/// The directive that hands an upstream to the Lua balancer, gated by `version` (see
/// `lua/confd_rs.lua`: the balancer uses what confd-rs sent only while it is at least as new as
/// the file nginx loaded).
pub fn directive(name: &str, version: i64) -> String {
    format!("balancer_by_lua_block {{ {CALL}{name}\", {version}) }}")
}

/// A name the balancer accepts (and nginx takes as an upstream name).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// One dynamic upstream's servers as the file has them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Set {
    #[serde(skip)]
    pub name: String,
    pub version: i64,
    pub peers: Vec<String>,
    pub max_fails: u32,
    /// Seconds.
    pub fail_timeout: f64,
}

impl Set {
    /// Same servers and health settings (the version aside).
    pub fn same_servers(&self, other: &Set) -> bool {
        self.peers == other.peers
            && self.max_fails == other.max_fails
            && self.fail_timeout == other.fail_timeout
    }
}

/// A file's dynamic upstreams and the rest of it.
#[derive(Debug, Default)]
pub struct Layout {
    /// The file's tokens without the server lists of dynamic upstreams and their versions.
    skeleton: Vec<String>,
    pub sets: Vec<Set>,
    /// Why some dynamic upstream's servers cannot be sent to the balancer (first found).
    unsendable: Option<String>,
}

/// How a change reaches nginx.
#[derive(Debug, PartialEq)]
pub enum Route {
    /// Only server lists of existing dynamic upstreams changed: these sets, without a reload.
    Dynamic(Vec<Set>),
    /// Anything else, and why.
    Reload(String),
}

/// How a change from `old` to the file `new` describes reaches nginx.
pub fn route(old: &str, new: &Layout) -> Route {
    let old = Layout::parse(old);
    if let Some(why) = &new.unsendable {
        return Route::Reload(why.clone());
    }
    if new.sets.is_empty() {
        return Route::Reload("no dynamic upstream in the file".into());
    }
    if old.skeleton != new.skeleton {
        return Route::Reload("more than server lists changed".into());
    }
    let changed = new
        .sets
        .iter()
        .filter(|set| {
            !old.sets
                .iter()
                .any(|o| o.name == set.name && o.same_servers(set))
        })
        .cloned()
        .collect();
    Route::Dynamic(changed)
}

/// Whether two renders of a dynamic file differ only in the versions their balancer directives
/// carry: then the file on disk stays as it is (nothing changed for nginx).
pub fn same_but_versions(old: &[u8], new: &str) -> bool {
    old == new.as_bytes()
        || std::str::from_utf8(old).is_ok_and(|old| without_versions(old) == without_versions(new))
}

fn without_versions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(CALL) {
        let (head, tail) = rest.split_at(at + CALL.len());
        out.push_str(head);
        let Some(close) = tail.find(')') else { break };
        let args = &tail[..close];
        let keep = args.rfind(',').map_or(args, |comma| &args[..comma]);
        out.push_str(keep);
        rest = &tail[close..];
    }
    out.push_str(rest);
    out
}

impl Layout {
    /// Reads nginx syntax well enough to find upstream blocks, their `server` directives and
    /// balancer directives. Text it cannot read stays in the skeleton as it is.
    pub fn parse(text: &str) -> Layout {
        let mut layout = Layout::default();
        let tokens = tokenize(text);
        let mut i = 0;
        while i < tokens.len() {
            let upstream = tokens[i] == "upstream" && tokens.get(i + 2).is_some_and(|t| t == "{");
            if !upstream {
                layout.skeleton.push(tokens[i].clone());
                i += 1;
                continue;
            }
            let end = closing(&tokens, i + 2);
            layout.upstream(&tokens[i + 1], &tokens[i + 3..end]);
            i = end + 1;
        }
        layout
    }

    /// One upstream block's directives (between its braces).
    fn upstream(&mut self, name: &str, body: &[String]) {
        let directives = split_directives(body);
        let balancer = directives.iter().find_map(|d| balancer_of(d));
        let Some((lua_name, version)) = balancer else {
            // A plain upstream: all of it is skeleton.
            self.skeleton
                .extend(["upstream", name, "{"].map(String::from));
            self.skeleton.extend(body.iter().cloned());
            self.skeleton.push("}".into());
            return;
        };
        self.skeleton
            .extend(["upstream", name, "{"].map(String::from));
        let mut servers = Vec::new();
        for d in &directives {
            if d.first().is_some_and(|w| w == "server") {
                servers.push(&d[1..]);
            } else if balancer_of(d).is_some() {
                self.skeleton.push(format!("balance({lua_name})"));
            } else {
                self.skeleton.extend(d.iter().cloned());
            }
        }
        self.skeleton.push("}".into());
        if lua_name != name {
            self.unsendable.get_or_insert(format!(
                "upstream {name}: its balancer directive names {lua_name}"
            ));
        }
        // A set the balancer cannot take is not sent: nginx serves its file list.
        match set_of(&lua_name, version, &servers) {
            Ok(set) => self.sets.push(set),
            Err(why) => {
                self.unsendable
                    .get_or_insert(format!("upstream {name}: {why}"));
            }
        }
    }
}

/// A set from an upstream's `server` directives (their words after `server`): addresses must
/// be IP literals with a port, and the only parameters the balancer knows are `max_fails` and
/// `fail_timeout`, the same on every server.
fn set_of(name: &str, version: i64, servers: &[&[String]]) -> Result<Set, String> {
    let mut peers = Vec::with_capacity(servers.len());
    let mut params: Option<&[String]> = None;
    for words in servers {
        let Some((addr, rest)) = words.split_first() else {
            return Err("a server directive without an address".into());
        };
        let peer: SocketAddr = addr
            .parse()
            .map_err(|_| format!("server {addr} is not an IP address with a port"))?;
        peers.push(peer.to_string());
        match params {
            None => params = Some(rest),
            Some(p) if p == rest => {}
            Some(_) => return Err("servers with different parameters".into()),
        }
    }
    let (mut max_fails, mut fail_timeout) = (1, 10.0);
    for p in params.unwrap_or_default() {
        match p.split_once('=') {
            Some(("max_fails", n)) => {
                max_fails = n.parse().map_err(|_| format!("max_fails={n}"))?;
            }
            Some(("fail_timeout", t)) => {
                fail_timeout = nginx_seconds(t).ok_or_else(|| format!("fail_timeout={t}"))?;
            }
            _ => return Err(format!("server parameter {p} needs a reload")),
        }
    }
    Ok(Set {
        name: name.to_owned(),
        version,
        peers,
        max_fails,
        fail_timeout,
    })
}

/// An nginx time (`10`, `10s`, `500ms`, `1m`, `1h`, `1d`) in seconds.
fn nginx_seconds(t: &str) -> Option<f64> {
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: f64 = n.parse().ok()?;
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return None,
    };
    Some(n * scale)
}

/// The name and version a balancer directive carries, if it is ours.
fn balancer_of(d: &[String]) -> Option<(String, i64)> {
    let [word, lua] = d else { return None };
    if word != "balancer_by_lua_block" {
        return None;
    }
    let call = lua.trim().strip_prefix(CALL)?;
    let (name, rest) = call.split_once('"')?;
    let version = rest.strip_prefix(',')?.trim().strip_suffix(')')?.trim();
    Some((name.to_owned(), version.parse().ok()?))
}

/// The index of the `}` closing the block opened at `open`, or the last token.
fn closing(tokens: &[String], open: usize) -> usize {
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t.as_str() {
            "{" => depth += 1,
            "}" => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    tokens.len().saturating_sub(1)
}

/// A block's tokens as directives: words up to `;`, or a nested block whole.
fn split_directives(body: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut i = 0;
    while i < body.len() {
        match body[i].as_str() {
            ";" => out.push(std::mem::take(&mut current)),
            "{" => {
                let end = closing(body, i);
                current.extend(body[i..=end].iter().cloned());
                out.push(std::mem::take(&mut current));
                i = end;
            }
            _ => current.push(body[i].clone()),
        }
        i += 1;
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// nginx's tokens: words, quoted strings, `;`, `{`, `}`; comments dropped. A `*_by_lua_block`
/// directive's Lua code is one token (its braces are Lua's, not nginx's).
fn tokenize(text: &str) -> Vec<String> {
    let mut tokens: Vec<String> = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '#' => {
                for (_, c) in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            ';' | '}' => tokens.push(c.to_string()),
            '{' if tokens.last().is_some_and(|t| t.ends_with("_by_lua_block")) => {
                // Lua's braces count, except inside its quoted strings.
                let (mut depth, mut quote, mut escaped) = (1, None, false);
                let mut end = text.len();
                for (i, c) in chars.by_ref() {
                    match (quote, c) {
                        (Some(q), c) => {
                            if !escaped && c == q {
                                quote = None;
                            }
                            escaped = !escaped && c == '\\';
                        }
                        (None, '"' | '\'') => quote = Some(c),
                        (None, '{') => depth += 1,
                        (None, '}') => depth -= 1,
                        _ => {}
                    }
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                tokens.push(text[start + 1..end].trim().to_owned());
            }
            '{' => tokens.push("{".into()),
            '"' | '\'' => {
                let mut end = text.len();
                let mut escaped = false;
                for (i, ch) in chars.by_ref() {
                    if !escaped && ch == c {
                        end = i + 1;
                        break;
                    }
                    escaped = !escaped && ch == '\\';
                }
                tokens.push(text[start..end].to_owned());
            }
            _ => {
                let mut end = text.len();
                while let Some(&(i, ch)) = chars.peek() {
                    if ch.is_whitespace() || ";{}".contains(ch) {
                        end = i;
                        break;
                    }
                    chars.next();
                }
                tokens.push(text[start..end].to_owned());
            }
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(version: i64, servers: &[&str], extra: &str) -> String {
        let mut s = String::from("# generated\nupstream app {\n");
        for a in servers {
            s.push_str(&format!("    server {a} max_fails=2 fail_timeout=5s;\n"));
        }
        s.push_str(&format!(
            "    {extra}\n    {}\n}}\n",
            directive("app", version)
        ));
        s
    }

    #[test]
    fn a_changed_server_list_goes_the_dynamic_way_with_its_set() {
        let old = file(7, &["10.0.0.1:80"], "keepalive 8;");
        let new = file(9, &["10.0.0.1:80", "10.0.0.2:80"], "keepalive 8;");
        let Route::Dynamic(sets) = route(&old, &Layout::parse(&new)) else {
            panic!("{:?}", route(&old, &Layout::parse(&new)))
        };
        assert_eq!(
            sets,
            vec![Set {
                name: "app".into(),
                version: 9,
                peers: vec!["10.0.0.1:80".into(), "10.0.0.2:80".into()],
                max_fails: 2,
                fail_timeout: 5.0
            }]
        );
    }

    #[test]
    fn anything_but_server_lists_needs_a_reload() {
        let old = file(7, &["10.0.0.1:80"], "keepalive 8;");
        for (new, why) in [
            (file(9, &["10.0.0.2:80"], "keepalive 16;"), "more than"),
            (
                old.replace("upstream app {", "upstream app2 {"),
                "directive names app",
            ),
            (file(9, &["backend.local:80"], "keepalive 8;"), "not an IP"),
            (
                file(9, &["10.0.0.1:80"], "keepalive 8;").replace("max_fails=2", "weight=3"),
                "weight=3",
            ),
            (
                format!("{old}upstream b {{ server 10.0.0.9:80; }}\n"),
                "more than",
            ),
            ("upstream app { server 10.0.0.1:80; }".into(), "no dynamic"),
        ] {
            match route(&old, &Layout::parse(&new)) {
                Route::Reload(reason) => assert!(reason.contains(why), "{reason} / {why}"),
                r => panic!("{new}: {r:?}"),
            }
        }
    }

    #[test]
    fn versions_alone_are_no_change_and_comments_are_not_skeleton() {
        let a = file(7, &["10.0.0.1:80"], "");
        let b = file(12, &["10.0.0.1:80"], "");
        assert!(same_but_versions(a.as_bytes(), &b));
        assert!(!same_but_versions(
            a.as_bytes(),
            &file(12, &["10.0.0.2:80"], "")
        ));
        let commented = b.replace("# generated", "# generated again");
        assert_eq!(
            route(&a, &Layout::parse(&commented)),
            Route::Dynamic(vec![])
        );
    }

    #[test]
    fn lua_braces_and_quotes_do_not_confuse_the_reader() {
        let text = "server { location / { content_by_lua_block { ngx.say(\"}\") } } }\n\
                    upstream x { server [::1]:81; balancer_by_lua_block { require(\"confd_rs\").balance(\"x\", 3) } }";
        let layout = Layout::parse(text);
        assert_eq!(layout.sets.len(), 1);
        assert_eq!(layout.sets[0].peers, vec!["[::1]:81".to_string()]);
        assert_eq!(layout.sets[0].version, 3);
    }
}
