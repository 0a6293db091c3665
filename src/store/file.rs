//! Key files: YAML, JSON or TOML maps (nested maps become `/a/b` paths), and the JSON that
//! `etcdctl get --prefix -w json` prints, so CI can render from a dump of production.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::Value;

use super::{Snapshot, StoreError};
use crate::keypath;

pub struct FileStore {
    paths: Vec<PathBuf>,
}

impl FileStore {
    pub fn new(paths: Vec<PathBuf>) -> FileStore {
        FileStore { paths }
    }

    /// Re-reads every file (later files override earlier ones) and keeps keys under `prefixes`.
    pub fn snapshot(&self, prefixes: &[String]) -> Result<Snapshot, StoreError> {
        let mut revision = 0;
        let mut all = BTreeMap::new();
        for path in &self.paths {
            let one = read(path)?;
            revision = revision.max(one.revision);
            all.extend(one.kvs().iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        all.retain(|k, _| prefixes.iter().any(|p| k.starts_with(p.as_str())));
        Ok(Snapshot::new(revision, all))
    }
}

fn read(path: &Path) -> Result<Snapshot, StoreError> {
    let text = std::fs::read_to_string(path).map_err(|e| StoreError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    parse(path, &text)
}

/// The keys of a key file's text; `path` names it in errors and its extension picks the format.
pub fn parse(path: &Path, text: &str) -> Result<Snapshot, StoreError> {
    let err = |reason: String| StoreError::File {
        path: path.display().to_string(),
        reason,
    };
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let doc: Value = match ext {
        "toml" => toml::from_str(text)
            .map_err(|e| err(format!("invalid TOML: {}", e.message().trim())))?,
        "json" => serde_json::from_str(text).map_err(|e| err(format!("invalid JSON: {e}")))?,
        // YAML is a superset of JSON, so it also reads key files with other names. As confd
        // reads it: YAML 1.1 (yes/on are booleans, 0755 is octal).
        _ => super::yaml11::parse(text).map_err(|e| err(format!("invalid YAML: {e}")))?,
    };
    if is_etcdctl_dump(&doc) {
        return etcdctl_dump(&doc).map_err(err);
    }
    let Value::Object(map) = doc else {
        return Err(err("expected a map of key → value at the top level".into()));
    };
    let mut kvs = BTreeMap::new();
    for (k, v) in map {
        flatten(&keypath::join("/", &k), v, &mut kvs);
    }
    Ok(Snapshot::new(0, kvs))
}

fn flatten(key: &str, value: Value, out: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                flatten(&keypath::join(key, &k), v, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.into_iter().enumerate() {
                flatten(&keypath::join(key, &i.to_string()), v, out);
            }
        }
        Value::String(s) => {
            out.insert(key.to_owned(), s);
        }
        // confd stores no key for a null (or an empty YAML value).
        Value::Null => {}
        Value::Number(n) if n.is_f64() => {
            out.insert(
                key.to_owned(),
                super::yaml11::go_float(n.as_f64().unwrap_or(f64::NAN)),
            );
        }
        other => {
            out.insert(key.to_owned(), other.to_string());
        }
    }
}

/// etcdctl's range response: a `header` object and nothing but `kvs`, `count` and `more` beside it
/// (an empty range has no `kvs` at all).
fn is_etcdctl_dump(doc: &Value) -> bool {
    let Some(map) = doc.as_object() else {
        return false;
    };
    map.get("header").is_some_and(Value::is_object)
        && map
            .keys()
            .all(|k| matches!(k.as_str(), "header" | "kvs" | "count" | "more"))
}

fn etcdctl_dump(doc: &Value) -> Result<Snapshot, String> {
    let b64 = |field: &str, kv: &Value| -> Result<String, String> {
        let s = kv.get(field).and_then(Value::as_str).unwrap_or("");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| format!("etcdctl dump: {field} {s:?} is not base64: {e}"))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    let revision = doc
        .pointer("/header/revision")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let mut kvs = BTreeMap::new();
    for kv in doc
        .get("kvs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        kvs.insert(b64("key", kv)?, b64("value", kv)?);
    }
    Ok(Snapshot::new(revision, kvs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_str(name: &str, text: &str) -> Result<Snapshot, StoreError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        read(&path)
    }

    fn keys(s: &Snapshot) -> Vec<(&str, &str)> {
        s.kvs()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn yaml_nested_maps_become_paths() {
        let s = read_str(
            "k.yaml",
            "search_PRE:\n  172.18.100.31-86: 172.18.100.31:86\n/flat/key: 3\nlist: [a, b]\n",
        )
        .expect("reads");
        assert_eq!(
            keys(&s),
            [
                ("/flat/key", "3"),
                ("/list/0", "a"),
                ("/list/1", "b"),
                ("/search_PRE/172.18.100.31-86", "172.18.100.31:86")
            ]
        );
    }

    #[test]
    fn toml_and_json_read_the_same() {
        let t = read_str("k.toml", "[app]\nport = \"80\"\n").expect("toml");
        let j = read_str("k.json", r#"{"app": {"port": "80"}}"#).expect("json");
        assert_eq!(t.kvs, j.kvs);
    }

    #[test]
    fn etcdctl_json_dump_is_decoded() {
        // etcdctl get --prefix / -w json
        let dump = r#"{"header":{"cluster_id":1,"member_id":2,"revision":42,"raft_term":2},
            "kvs":[{"key":"L3NlYXJjaF9QUkUvMTcyLjE4LjEwMC4zMS04Ng==","create_revision":5,
            "mod_revision":5,"version":1,"value":"MTcyLjE4LjEwMC4zMTo4Ng=="}],"count":1}"#;
        let s = read_str("dump.json", dump).expect("reads");
        assert_eq!(s.revision, 42);
        assert_eq!(
            keys(&s),
            [("/search_PRE/172.18.100.31-86", "172.18.100.31:86")]
        );
    }

    #[test]
    fn bad_files_name_the_file() {
        let err = read_str("bad.yaml", "a: [unclosed")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.yaml: invalid YAML"), "{err}");
        let err = read_str("list.json", "[1, 2]").unwrap_err().to_string();
        assert!(err.contains("list.json: expected a map"), "{err}");
    }
}
