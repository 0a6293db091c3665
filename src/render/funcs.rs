//! confd's template functions, by their confd names and with confd's semantics, over one
//! resource's keys. Lookups are range scans of a sorted map, never scans of every key.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use base64::Engine;
use minijinja::value::{Object, ObjectRepr, Rest, Serde};
use minijinja::{Environment, Error, ErrorKind, State, Value};

use super::glob::Pattern;
use super::hostport;
use crate::keypath;

/// The keys one render sees: a sorted map, shared rather than copied (the daemon's whole view,
/// say), of which only keys under one of `within` are visible. Also collects the values the
/// render left out.
#[derive(Debug)]
pub struct KeySpace {
    kvs: Arc<BTreeMap<String, String>>,
    within: Vec<String>,
    dropped: Mutex<Vec<String>>,
    /// How many servers each `hostports(glob)` call of the render returned, by glob: the
    /// "servers of a service" the shrink guard compares. Appended as the calls come (one per
    /// service: 10,000 in a big render), ordered once at the end.
    servers: Mutex<Vec<(String, usize)>>,
    /// Keys the render's functions read (each key once per call that read it).
    read: std::sync::atomic::AtomicUsize,
    /// For a dynamic resource: the revision `dynamic_upstream` stamps on balancer directives.
    balancer: Option<i64>,
}

impl Object for KeySpace {}

/// A key/value pair as confd's `get`/`gets` return it: `.key`/`.value`, and confd's `.Key`/`.Value`.
#[derive(Debug)]
pub(super) struct KvPair {
    pub(super) key: String,
    pub(super) value: String,
}

impl Object for KvPair {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, field: &Value) -> Option<Value> {
        match field.as_str()? {
            "key" | "Key" => Some(Value::from(self.key.as_str())),
            "value" | "Value" => Some(Value::from(self.value.as_str())),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Str(&["key", "value"])
    }
}

/// An SRV record with Go's field names (`.Target`, `.Port`, `.Priority`, `.Weight`) and lower-case
/// aliases.
#[derive(Debug)]
struct SrvRecord(super::dns::Srv);

impl Object for SrvRecord {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, field: &Value) -> Option<Value> {
        let s = &self.0;
        match field.as_str()? {
            "target" | "Target" => Some(Value::from(s.target.as_str())),
            "port" | "Port" => Some(Value::from(s.port)),
            "priority" | "Priority" => Some(Value::from(s.priority)),
            "weight" | "Weight" => Some(Value::from(s.weight)),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Str(&["target", "port", "priority", "weight"])
    }
}

fn kv(key: &str, value: &str) -> Value {
    Value::from_object(KvPair {
        key: key.to_owned(),
        value: value.to_owned(),
    })
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

impl KeySpace {
    /// Every key of `kvs`.
    pub fn all(kvs: Arc<BTreeMap<String, String>>) -> KeySpace {
        KeySpace::within(kvs, vec![String::new()])
    }

    /// The keys of `kvs` under any of `prefixes`.
    pub fn within(kvs: Arc<BTreeMap<String, String>>, prefixes: Vec<String>) -> KeySpace {
        KeySpace {
            kvs,
            within: prefixes,
            dropped: Mutex::default(),
            servers: Mutex::default(),
            read: std::sync::atomic::AtomicUsize::new(0),
            balancer: None,
        }
    }

    /// The same keys, for a resource whose upstreams are balanced by the Lua balancer: its
    /// `dynamic_upstream(name)` writes the directive, versioned with `revision`.
    pub fn balanced_at(mut self, revision: i64) -> KeySpace {
        self.balancer = Some(revision);
        self
    }

    /// Whether the render is of a dynamic resource.
    pub fn balanced(&self) -> bool {
        self.balancer.is_some()
    }

    fn visible(&self, key: &str) -> bool {
        self.within.iter().any(|p| key.starts_with(p.as_str()))
    }

    fn lookup(&self, key: &str) -> Option<&String> {
        let found = self.kvs.get(key).filter(|_| self.visible(key));
        self.count(usize::from(found.is_some()));
        found
    }

    fn count(&self, n: usize) {
        self.read.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many keys the render read.
    pub fn keys_read(&self) -> usize {
        self.read.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Servers per `hostports` glob, as the render found them.
    pub fn take_servers(&self) -> BTreeMap<String, usize> {
        // A glob called twice keeps its last count, as inserting one by one would.
        self.servers
            .lock()
            .map(|mut s| std::mem::take(&mut *s).into_iter().collect())
            .unwrap_or_default()
    }

    fn under<'a>(&'a self, prefix: &str) -> impl Iterator<Item = (&'a String, &'a String)> + 'a {
        let owned = prefix.to_owned();
        self.kvs
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(owned.as_str()))
            .filter(|(k, _)| self.visible(k))
    }

    /// What the render left out, each named by its key (once each).
    pub fn take_dropped(&self) -> Vec<String> {
        self.dropped
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default()
    }

    fn report(&self, msg: String) {
        if let Ok(mut d) = self.dropped.lock() {
            if !d.contains(&msg) {
                d.push(msg);
            }
        }
    }

    /// Pairs whose key matches a Go `path.Match` pattern, sorted by key (confd's `gets`).
    fn glob(&self, pattern: &str) -> Result<Vec<(&String, &String)>, Error> {
        let pat = Pattern::new(pattern).map_err(|e| invalid(e.to_string()))?;
        let found: Vec<_> = self
            .under(&pat.literal_prefix)
            .filter(|(k, _)| pat.matches(k))
            .collect();
        self.count(found.len());
        Ok(found)
    }

    fn getv(&self, key: &str, default: Option<String>) -> Result<String, Error> {
        match (self.lookup(key), default) {
            (Some(v), _) => Ok(v.clone()),
            (None, Some(d)) => Ok(d),
            (None, None) => Err(invalid(format!("key does not exist: {key}"))),
        }
    }

    /// The distinct first path segments below `dir`; with `dirs_only`, only segments that have
    /// keys below them (confd's `lsdir`), otherwise also leaves (confd's `ls`).
    fn children(&self, dir: &str, dirs_only: bool) -> Vec<String> {
        let base = if dir.ends_with('/') {
            dir.to_owned()
        } else {
            format!("{dir}/")
        };
        let mut out: Vec<String> = Vec::new();
        if !dirs_only && self.lookup(dir).is_some() && dir != "/" {
            out.push(keypath::base(dir));
        }
        // The next key to look from, and the buffer a jump is built in (one per call, not one
        // per directory: `lsdir("/")` visits 10,000 of them in a big render).
        let mut jump = String::with_capacity(base.len() + 64);
        let mut from: Bound<&str> = Bound::Included(base.as_str());
        while let Some((k, _)) = self.kvs.range::<str, _>((from, Bound::Unbounded)).next() {
            let Some(rest) = k.strip_prefix(base.as_str()) else {
                break;
            };
            if !self.visible(k) {
                from = Bound::Excluded(k.as_str());
                continue;
            }
            let (seg, deeper) = match rest.split_once('/') {
                Some((seg, _)) => (seg, true),
                None => (rest, false),
            };
            if (deeper || !dirs_only) && !seg.is_empty() && out.last().is_none_or(|l| l != seg) {
                out.push(seg.to_owned());
            }
            // Jump past everything below `seg/`: '0' is the byte after '/'.
            from = if deeper {
                jump.clear();
                jump.push_str(&base);
                jump.push_str(seg);
                jump.push('0');
                Bound::Included(jump.as_str())
            } else {
                Bound::Excluded(k.as_str())
            };
        }
        out.sort();
        out.dedup();
        out
    }

    /// Valid `host:port` values under a glob, sorted and deduplicated; the others are reported
    /// to `dropped` by key and left out.
    /// Surrounding whitespace is ignored, as nginx would (`echo 10.0.0.1:80 | etcdctl put`
    /// stores a trailing newline).
    fn hostports(&self, pattern: &str) -> Result<Vec<Value>, Error> {
        let mut out: Vec<&str> = Vec::new();
        for (k, v) in self.glob(pattern)? {
            let hp = v.trim();
            match hostport::host_port(hp) {
                None => self.report(format!(
                    "key {k:?}: value {} is not a valid host:port; left out",
                    shown(v)
                )),
                Some(hostport::Host::Name(host)) if !resolves(host) => self.report(format!(
                    "key {k:?}: host {host:?} does not resolve (nginx would refuse the whole config); left out"
                )),
                Some(_) => out.push(hp),
            }
        }
        out.sort_unstable();
        out.dedup();
        if let Ok(mut servers) = self.servers.lock() {
            servers.push((pattern.to_owned(), out.len()));
        }
        Ok(out.into_iter().map(Value::from).collect())
    }
}

/// A value as a log line shows it: escaped, and cut (with its size) when long.
fn shown(v: &str) -> String {
    const SHOWN: usize = 120;
    match v.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{:?}… ({} bytes)", &v[..cut], v.len()),
        None => format!("{v:?}"),
    }
}

/// The keys of the render in progress.
fn keys(state: &State) -> Result<Arc<KeySpace>, Error> {
    state
        .lookup(super::KEYS)
        .and_then(|v| v.downcast_object::<KeySpace>())
        .ok_or_else(|| invalid("no keys in this render"))
}

/// The first visible key whose value holds `printed` (for naming it in an error).
pub(super) fn key_holding(state: &State, printed: &str) -> Option<String> {
    let keys = keys(state).ok()?;
    let found = keys
        .kvs
        .iter()
        .find(|(k, v)| keys.visible(k) && v.contains(printed))
        .or_else(|| {
            keys.kvs
                .iter()
                .find(|(k, v)| keys.visible(k) && printed.contains(v.as_str()) && !v.is_empty())
        });
    found.map(|(k, _)| k.clone())
}

/// Registers every function on `env`; key functions read the keys of each render from its
/// context, so one environment serves every render.
pub fn register(env: &mut Environment<'static>) {
    register_key_functions(env);
    register_string_functions(env);
    register_misc_functions(env);
    env.add_test("nginx_name", |state: &State, name: &str| {
        let ok = hostport::is_nginx_name(name);
        if !ok {
            if let Ok(k) = keys(state) {
                k.report(format!(
                    "{name:?} is not a valid nginx upstream name; left out"
                ));
            }
        }
        ok
    });
}

fn register_key_functions(env: &mut Environment<'static>) {
    env.add_function("dynamic_upstream", |state: &State, name: String| {
        let Some(version) = keys(state)?.balancer else {
            return Ok(Value::from(""));
        };
        if !crate::dynamic::layout::valid_name(&name) {
            return Err(invalid(format!(
                "dynamic_upstream({name:?}): an upstream name is letters, digits, '_', '.' and '-'"
            )));
        }
        Ok(Value::from_safe_string(crate::dynamic::layout::directive(
            &name, version,
        )))
    });
    env.add_function(
        "getv",
        |state: &State, key: String, default: Option<String>| keys(state)?.getv(&key, default),
    );
    env.add_function("get", |state: &State, key: String| {
        keys(state)?
            .lookup(&key)
            .map(|v| kv(&key, v))
            .ok_or_else(|| invalid(format!("key does not exist: {key}")))
    });
    env.add_function("exists", |state: &State, key: String| {
        Ok::<_, Error>(keys(state)?.lookup(&key).is_some())
    });
    env.add_function(
        "gets",
        |state: &State, pattern: String| -> Result<Vec<Value>, Error> {
            Ok(keys(state)?
                .glob(&pattern)?
                .into_iter()
                .map(|(key, v)| kv(key, v))
                .collect())
        },
    );
    env.add_function(
        "getvs",
        |state: &State, pattern: String| -> Result<Vec<String>, Error> {
            let mut vs: Vec<String> = keys(state)?
                .glob(&pattern)?
                .into_iter()
                .map(|(_, v)| v.clone())
                .collect();
            vs.sort();
            Ok(vs)
        },
    );
    env.add_function("ls", |state: &State, dir: String| {
        Ok::<_, Error>(keys(state)?.children(&dir, false))
    });
    env.add_function("lsdir", |state: &State, dir: String| {
        Ok::<_, Error>(keys(state)?.children(&dir, true))
    });
    // confd 0.17's own answers at the root: `ls "/"` lists only top-level leaves, `lsdir "/"`
    // nothing. Go templates get them; Jinja templates list the root like any directory.
    env.add_function("go_ls", |state: &State, dir: String| {
        let keys = keys(state)?;
        if dir != "/" {
            return Ok::<_, Error>(keys.children(&dir, false));
        }
        let dirs = keys.children(&dir, true);
        let mut all = keys.children(&dir, false);
        all.retain(|name| !dirs.contains(name) || keys.lookup(&format!("/{name}")).is_some());
        Ok(all)
    });
    env.add_function("go_lsdir", |state: &State, dir: String| {
        let keys = keys(state)?;
        Ok::<_, Error>(if dir == "/" {
            Vec::new()
        } else {
            keys.children(&dir, true)
        })
    });
    env.add_function("hostports", |state: &State, pattern: String| {
        keys(state)?.hostports(&pattern)
    });
}

fn register_string_functions(env: &mut Environment<'static>) {
    env.add_function("base", |p: String| keypath::base(&p));
    env.add_function("dir", |p: String| keypath::dir(&p));
    env.add_function("split", |s: String, sep: String| split(&s, &sep));
    env.add_function("join", |items: Vec<Value>, sep: String| {
        items
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(&sep)
    });
    // Go's per-rune mapping (ß stays ß, no final-sigma rule), as confd does.
    env.add_function("toUpper", |s: String| super::gotmpl::fmt::to_upper(&s));
    env.add_function("toLower", |s: String| super::gotmpl::fmt::to_lower(&s));
    env.add_function(
        "replace",
        |s: String, old: String, new: String, n: i64| match usize::try_from(n) {
            Ok(n) => s.replacen(&old, &new, n),
            Err(_) => s.replace(&old, &new),
        },
    );
    env.add_function("contains", |s: String, sub: String| s.contains(&sub));
    env.add_function("trimSuffix", |s: String, suffix: String| {
        s.strip_suffix(suffix.as_str())
            .map(str::to_owned)
            .unwrap_or(s)
    });
    env.add_function("base64Encode", |s: String| {
        base64::engine::general_purpose::STANDARD.encode(s)
    });
    env.add_function("base64Decode", |s: String| -> Result<String, Error> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&s)
            .map_err(|e| invalid(format!("base64Decode {s:?}: {e}")))?;
        String::from_utf8(bytes).map_err(|e| invalid(format!("base64Decode {s:?}: {e}")))
    });
    env.add_function("parseBool", |s: String| match s.as_str() {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(invalid(format!("parseBool: invalid syntax {s:?}"))),
    });
    env.add_function("atoi", |s: String| {
        s.parse::<i64>()
            .map_err(|_| invalid(format!("atoi: invalid syntax {s:?}")))
    });
    env.add_function("json", |s: String| {
        parse_json(&s, serde_json::Value::is_object, "json")
    });
    env.add_function("jsonArray", |s: String| {
        parse_json(&s, serde_json::Value::is_array, "jsonArray")
    });
}

fn register_misc_functions(env: &mut Environment<'static>) {
    env.add_function("getenv", |name: String, default: Option<String>| {
        let v = std::env::var(&name).unwrap_or_default();
        match default {
            Some(d) if v.is_empty() => d,
            _ => v,
        }
    });
    env.add_function("datetime", || {
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
    });
    env.add_function("fileExists", |p: String| std::path::Path::new(&p).exists());
    env.add_function("lookupIP", |host: String| lookup_ip(&host, |_| true));
    env.add_function("lookupIPV4", |host: String| {
        lookup_ip(&host, std::net::IpAddr::is_ipv4)
    });
    env.add_function("lookupIPV6", |host: String| {
        lookup_ip(&host, std::net::IpAddr::is_ipv6)
    });
    env.add_function(
        "lookupSRV",
        |service: String, proto: String, name: String| {
            super::dns::lookup_srv(&service, &proto, &name)
                .into_iter()
                .map(|s| Value::from_object(SrvRecord(s)))
                .collect::<Vec<_>>()
        },
    );
    env.add_function("seq", |first: i64, last: i64| {
        (first..=last).collect::<Vec<i64>>()
    });
    env.add_function("reverse", |items: Vec<Value>| {
        items.into_iter().rev().collect::<Vec<_>>()
    });
    env.add_function("sortByLength", |mut items: Vec<String>| {
        items.sort_by_key(|s| s.len());
        items
    });
    env.add_function("sortKVByLength", |mut items: Vec<Value>| {
        items.sort_by_key(|v| v.get_attr("key").map(|k| k.to_string().len()).unwrap_or(0));
        items
    });
    env.add_function("map", |pairs: Rest<Value>| -> Result<Value, Error> {
        if pairs.len() % 2 != 0 {
            return Err(invalid(
                "map: expected key/value pairs (an even number of arguments)",
            ));
        }
        Ok(pairs
            .chunks(2)
            .map(|p| (p[0].to_string(), p[1].clone()))
            .collect::<BTreeMap<_, _>>()
            .into())
    });
    env.add_function("add", |a: i64, b: i64| {
        a.checked_add(b).ok_or_else(|| invalid("add: overflow"))
    });
    env.add_function("sub", |a: i64, b: i64| {
        a.checked_sub(b).ok_or_else(|| invalid("sub: overflow"))
    });
    env.add_function("mul", |a: i64, b: i64| {
        a.checked_mul(b).ok_or_else(|| invalid("mul: overflow"))
    });
    env.add_function("div", |a: i64, b: i64| {
        a.checked_div(b)
            .ok_or_else(|| invalid("div: division by zero"))
    });
    env.add_function("mod", |a: i64, b: i64| {
        a.checked_rem(b)
            .ok_or_else(|| invalid("mod: division by zero"))
    });
}

/// Go's `strings.Split`: an empty separator splits into characters.
fn split(s: &str, sep: &str) -> Vec<String> {
    if sep.is_empty() {
        s.chars().map(String::from).collect()
    } else {
        s.split(sep).map(str::to_owned).collect()
    }
}

fn parse_json(s: &str, shape: fn(&serde_json::Value) -> bool, name: &str) -> Result<Value, Error> {
    let v: serde_json::Value =
        serde_json::from_str(s).map_err(|e| invalid(format!("{name}: {e}")))?;
    if !shape(&v) {
        return Err(invalid(format!("{name}: unexpected JSON shape in {s:?}")));
    }
    Ok(Value::from(Serde(v)))
}

/// How long an answer about a host name is trusted: a resolver outage costs one lookup per name
/// per TTL, not one per render.
const RESOLVES_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// Whether the host resolves (as nginx will ask when it loads the config), cached for
/// RESOLVES_TTL; bounded by LOOKUP_TIMEOUT.
fn resolves(host: &str) -> bool {
    use std::collections::HashMap;
    use std::time::Instant;
    static CACHE: Mutex<Option<HashMap<String, (bool, Instant)>>> = Mutex::new(None);
    let now = Instant::now();
    if let Ok(mut cache) = CACHE.lock() {
        if let Some((ok, at)) = cache.get_or_insert_default().get(host) {
            if now.duration_since(*at) < RESOLVES_TTL {
                return *ok;
            }
        }
    }
    let ok = !lookup_ip(host, |_| true).is_empty();
    if let Ok(mut cache) = CACHE.lock() {
        cache
            .get_or_insert_default()
            .insert(host.to_owned(), (ok, now));
    }
    ok
}

/// How long `lookupIP` waits for the system resolver, which has no timeout of its own.
const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Addresses of `host`, sorted as strings; an unresolvable name yields none (as in confd), and
/// so does one the resolver has not answered within LOOKUP_TIMEOUT (its thread is left to end
/// by itself).
fn lookup_ip(host: &str, keep: fn(&std::net::IpAddr) -> bool) -> Vec<String> {
    use std::net::ToSocketAddrs;
    let (tx, rx) = std::sync::mpsc::channel();
    let name = host.to_owned();
    std::thread::spawn(move || {
        let _ = tx.send((name.as_str(), 0).to_socket_addrs().map(Vec::from_iter));
    });
    let mut ips: Vec<String> = match rx.recv_timeout(LOOKUP_TIMEOUT) {
        Ok(Ok(addrs)) => addrs
            .into_iter()
            .map(|a| a.ip())
            .filter(keep)
            .map(|ip| ip.to_string())
            .collect(),
        _ => Vec::new(),
    };
    ips.sort();
    ips.dedup();
    ips
}
