//! Key paths as confd treats them: Go's `path.Join` / `path.Clean` over absolute paths.

/// Joins two key paths and cleans the result; always absolute, never a trailing slash (but "/").
pub fn join(a: &str, b: &str) -> String {
    clean(&format!("/{a}/{b}"))
}

/// Go's `path.Clean`: drops empty and `.` segments and resolves `..` (a rooted path cannot climb
/// above `/`); the empty path is `.`.
pub fn clean(p: &str) -> String {
    cleaned(p.to_owned())
}

/// `p` cleaned, kept as it is when it already is (every stored key is).
fn cleaned(p: String) -> String {
    if is_clean(&p) {
        p
    } else {
        resolve(&p)
    }
}

/// `clean` the long way: segment by segment.
fn resolve(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut segs: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." if segs.last().is_some_and(|s| *s != "..") => {
                segs.pop();
            }
            ".." if !rooted => segs.push(".."),
            ".." => {}
            s => segs.push(s),
        }
    }
    match (rooted, segs.is_empty()) {
        (true, _) => format!("/{}", segs.join("/")),
        (false, true) => ".".to_owned(),
        (false, false) => segs.join("/"),
    }
}

/// Go's `path.Base`: the last element, trailing slashes removed; "" is ".", all-slashes is "/".
pub fn base(p: &str) -> String {
    if p.is_empty() {
        return ".".to_owned();
    }
    let trimmed = p.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        _ if trimmed.is_empty() => "/".to_owned(),
        Some((_, last)) => last.to_owned(),
        None => trimmed.to_owned(),
    }
}

/// Go's `path.Dir`: everything before the last slash, cleaned.
pub fn dir(p: &str) -> String {
    clean(p.rfind('/').map_or("", |i| &p[..=i]))
}

/// Whether `p` is already clean: what `clean` would return unchanged (without allocating),
/// except that `.` and `..` alone are not accepted either.
pub fn is_clean(p: &str) -> bool {
    if p == "/" {
        return true;
    }
    // Every key of every snapshot comes here (100,000 in a big one): `split` finds the slashes
    // with memchr, several times faster than a loop over the bytes.
    let rest = p.strip_prefix('/').unwrap_or(p);
    rest.split('/')
        .all(|segment| !matches!(segment, "" | "." | ".."))
}

/// The key as seen from inside `prefix` (confd: `path.Join("/", strings.TrimPrefix(k, prefix))`).
pub fn relative(key: &str, prefix: &str) -> String {
    let rest = if prefix == "/" {
        key
    } else {
        key.strip_prefix(prefix).unwrap_or(key)
    };
    cleaned(if rest.starts_with('/') {
        rest.to_owned()
    } else {
        format!("/{rest}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_and_clean_like_go_path() {
        assert_eq!(join("", "/"), "/");
        assert_eq!(join("", ""), "/");
        assert_eq!(join("/prod", "/search_PRE/"), "/prod/search_PRE");
        assert_eq!(join("prod/", "a//b/./c/../d"), "/prod/a/b/d");
        assert_eq!(clean("/../a"), "/a");
        assert_eq!(clean(""), ".");
        assert_eq!(clean("a/../../b/"), "../b");
    }

    #[test]
    fn base_and_dir_like_go_path() {
        assert_eq!(base("/a/b"), "b");
        assert_eq!(base("/a/b/"), "b");
        assert_eq!(base("/"), "/");
        assert_eq!(base(""), ".");
        assert_eq!(base("x"), "x");
        assert_eq!(dir("/a/b"), "/a");
        assert_eq!(dir("/a"), "/");
        assert_eq!(dir("a"), ".");
        assert_eq!(dir("/a/b/"), "/a/b");
        assert_eq!(dir(""), ".");
    }

    #[test]
    fn is_clean_agrees_with_clean() {
        for p in [
            "/", "/a", "/a/b", "a/b", "/a/", "/a//b", "/a/./b", "/a/../b", "/..", "//", "", "a/",
        ] {
            assert_eq!(is_clean(p), resolve(p) == p, "{p:?}");
            assert_eq!(clean(p), resolve(p), "{p:?}");
        }
        assert!(!is_clean("."));
        assert!(!is_clean(".."));
    }

    proptest::proptest! {
        #[test]
        fn the_short_cut_agrees_with_the_long_way(p in "[a./]{0,8}", key in "/[a./]{0,8}") {
            proptest::prop_assert_eq!(clean(&p), resolve(&p));
            // Keys are rooted: for them, clean means exactly "Clean leaves it as it is".
            proptest::prop_assert_eq!(is_clean(&key), resolve(&key) == key);
        }
    }

    #[test]
    fn relative_strips_the_prefix() {
        assert_eq!(relative("/prod/a/b", "/prod"), "/a/b");
        assert_eq!(relative("/a/b", "/"), "/a/b");
        assert_eq!(relative("/prod", "/prod"), "/");
        assert_eq!(relative("/prod/a/../b", "/prod"), "/b");
        assert_eq!(relative("/production/a", "/prod"), "/uction/a");
    }
}
