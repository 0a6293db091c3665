// Command oracle renders one template the way confd 0.17 does, so that the expected output of
// each case in tests/go-templates is recorded by real Go text/template, not written by hand.
//
//	go run . TEMPLATE KEYS.json > expected
//
// KEYS.json is a flat JSON object of string values: {"/shop_PRD/10.0.1.11-8080": "10.0.1.11:8080"}.
// Like confd, the template is parsed with
//
//	template.New(filepath.Base(src)).Funcs(funcs).ParseFiles(src)
//
// and executed with nil data, so `.` and `$` at the top of a template print <no value>. The
// function map is confd's (resource/template/template_funcs.go) plus memkv's store functions
// (getv getvs get gets exists ls lsdir), re-implemented here with the same semantics. Nothing
// is written to stdout unless the whole template renders; errors go to stderr with exit 1.
//
// Standard library only (no third-party modules): it runs offline with Debian's golang-go.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// KVPair is memkv.KVPair: it prints as {/key value}.
type KVPair struct {
	Key   string
	Value string
}

// KVPairs is memkv.KVPairs, the named type `gets` returns. Because it is a named type, confd's
// `reverse` (a type switch on []string and []memkv.KVPair) does not recognise it and returns a
// `gets` result unchanged, while `sortKVByLength` (parameter []memkv.KVPair) accepts it and
// returns a plain []KVPair, which `reverse` then does reverse.
type KVPairs []KVPair

func (ks KVPairs) Len() int           { return len(ks) }
func (ks KVPairs) Less(i, j int) bool { return ks[i].Key < ks[j].Key }
func (ks KVPairs) Swap(i, j int)      { ks[i], ks[j] = ks[j], ks[i] }

type keyError struct {
	key string
}

func (e *keyError) Error() string { return "key does not exist: " + e.key }

// store is memkv.Store: a flat map from full key to value.
type store map[string]string

// get: the KVPair of an existing key (exact spelling), an error otherwise.
func (s store) get(key string) (KVPair, error) {
	v, ok := s[key]
	if !ok {
		return KVPair{}, &keyError{key}
	}
	return KVPair{key, v}, nil
}

// exists: true for a leaf key only.
func (s store) exists(key string) bool {
	_, ok := s[key]
	return ok
}

// getv KEY [DEFAULT]: the default is used for a missing key only (an empty value is returned).
func (s store) getv(key string, v ...string) (string, error) {
	kv, err := s.get(key)
	if err != nil {
		if len(v) > 0 {
			return v[0], nil
		}
		return "", err
	}
	return kv.Value, nil
}

// gets PATTERN: the pairs whose key path.Match-es PATTERN, sorted by key.
func (s store) gets(pattern string) (KVPairs, error) {
	ks := make(KVPairs, 0)
	for k, v := range s {
		m, err := path.Match(pattern, k)
		if err != nil {
			return nil, err
		}
		if m {
			ks = append(ks, KVPair{k, v})
		}
	}
	sort.Sort(ks)
	return ks, nil
}

// getvs PATTERN: the values of gets PATTERN, sorted as strings.
func (s store) getvs(pattern string) ([]string, error) {
	vs := make([]string, 0)
	ks, err := s.gets(pattern)
	if err != nil {
		return vs, err
	}
	for _, kv := range ks {
		vs = append(vs, kv.Value)
	}
	sort.Strings(vs)
	return vs, nil
}

func terms(p string) []string { return strings.Split(path.Clean(p), "/") }

func hasPrefixTerms(prefix, test []string) bool {
	if len(test) < len(prefix) {
		return false
	}
	for i := range prefix {
		if prefix[i] != test[i] {
			return false
		}
	}
	return true
}

func sortedSet(m map[string]bool) []string {
	vs := make([]string, 0, len(m))
	for k := range m {
		vs = append(vs, k)
	}
	sort.Strings(vs)
	return vs
}

// ls DIR: names one level below DIR (leaves and directories), sorted, each once. A key equal to
// DIR lists its own base name. The parent of a key is compared term by term after path.Clean,
// so `ls "/"` lists only the top-level leaves.
func (s store) ls(dir string) []string {
	m := make(map[string]bool)
	prefix := terms(dir)
	for k := range s {
		if k == dir {
			m[path.Base(k)] = true
			continue
		}
		if hasPrefixTerms(prefix, terms(path.Dir(k))) {
			rest := strings.TrimPrefix(strings.TrimPrefix(k, dir), "/")
			m[strings.Split(rest, "/")[0]] = true
		}
	}
	return sortedSet(m)
}

// lsdir DIR: the directories one level below DIR, sorted. `lsdir "/"` is empty.
func (s store) lsdir(dir string) []string {
	m := make(map[string]bool)
	prefix := terms(dir)
	for k := range s {
		if !strings.HasPrefix(k, dir) {
			continue
		}
		items := terms(path.Dir(k))
		if hasPrefixTerms(prefix, items) && len(items)-len(prefix) >= 1 {
			m[items[len(prefix)]] = true
		}
	}
	return sortedSet(m)
}

func seq(first, last int) []int {
	var arr []int
	for i := first; i <= last; i++ {
		arr = append(arr, i)
	}
	return arr
}

type byLengthKV []KVPair

func (s byLengthKV) Len() int           { return len(s) }
func (s byLengthKV) Swap(i, j int)      { s[i], s[j] = s[j], s[i] }
func (s byLengthKV) Less(i, j int) bool { return len(s[i].Key) < len(s[j].Key) }

// sortKVByLength sorts in place with sort.Sort (not stable beyond 12 items).
func sortKVByLength(values []KVPair) []KVPair {
	sort.Sort(byLengthKV(values))
	return values
}

type byLength []string

func (s byLength) Len() int           { return len(s) }
func (s byLength) Swap(i, j int)      { s[i], s[j] = s[j], s[i] }
func (s byLength) Less(i, j int) bool { return len(s[i]) < len(s[j]) }

func sortByLength(values []string) []string {
	sort.Sort(byLength(values))
	return values
}

// reverse reverses []string and []KVPair in place; anything else (a KVPairs from gets, a
// []interface{} from jsonArray, ...) comes back unchanged.
func reverse(values interface{}) interface{} {
	switch v := values.(type) {
	case []string:
		for l, r := 0, len(v)-1; l < r; l, r = l+1, r-1 {
			v[l], v[r] = v[r], v[l]
		}
	case []KVPair:
		for l, r := 0, len(v)-1; l < r; l, r = l+1, r-1 {
			v[l], v[r] = v[r], v[l]
		}
	}
	return values
}

// getenv NAME [DEFAULT]: an unset or empty variable gives the default ("" without one).
func getenv(key string, v ...string) string {
	def := ""
	if len(v) > 0 {
		def = v[0]
	}
	if value := os.Getenv(key); value != "" {
		return value
	}
	return def
}

func createMap(values ...interface{}) (map[string]interface{}, error) {
	if len(values)%2 != 0 {
		return nil, errors.New("invalid map call")
	}
	dict := make(map[string]interface{}, len(values)/2)
	for i := 0; i < len(values); i += 2 {
		key, ok := values[i].(string)
		if !ok {
			return nil, errors.New("map keys must be strings")
		}
		dict[key] = values[i+1]
	}
	return dict, nil
}

func jsonObject(data string) (map[string]interface{}, error) {
	var ret map[string]interface{}
	err := json.Unmarshal([]byte(data), &ret)
	return ret, err
}

func jsonArray(data string) ([]interface{}, error) {
	var ret []interface{}
	err := json.Unmarshal([]byte(data), &ret)
	return ret, err
}

// Host-dependent functions: present so that templates parse exactly as under confd, but the
// corpus never calls them (their output depends on DNS, the clock and the file system).
func lookupIP(data string) []string {
	ips, err := net.LookupIP(data)
	if err != nil {
		return nil
	}
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	sort.Strings(out)
	return out
}

func lookupIPFamily(sep string) func(string) []string {
	return func(data string) []string {
		var out []string
		for _, ip := range lookupIP(data) {
			if strings.Contains(ip, sep) {
				out = append(out, ip)
			}
		}
		return out
	}
}

type sortSRV []*net.SRV

func (s sortSRV) Len() int      { return len(s) }
func (s sortSRV) Swap(i, j int) { s[i], s[j] = s[j], s[i] }
func (s sortSRV) Less(i, j int) bool {
	a := fmt.Sprintf("%s%d%d%d", s[i].Target, s[i].Port, s[i].Priority, s[i].Weight)
	b := fmt.Sprintf("%s%d%d%d", s[j].Target, s[j].Port, s[j].Priority, s[j].Weight)
	return a < b
}

func lookupSRV(service, proto, name string) []*net.SRV {
	_, addrs, err := net.LookupSRV(service, proto, name)
	if err != nil {
		return []*net.SRV{}
	}
	sort.Sort(sortSRV(addrs))
	return addrs
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func funcMap(s store) template.FuncMap {
	return template.FuncMap{
		// confd's newFuncMap
		"base":         path.Base,
		"split":        strings.Split,
		"json":         jsonObject,
		"jsonArray":    jsonArray,
		"dir":          path.Dir,
		"map":          createMap,
		"getenv":       getenv,
		"join":         strings.Join,
		"datetime":     time.Now,
		"toUpper":      strings.ToUpper,
		"toLower":      strings.ToLower,
		"contains":     strings.Contains,
		"replace":      strings.Replace,
		"trimSuffix":   strings.TrimSuffix,
		"lookupIP":     lookupIP,
		"lookupIPV4":   lookupIPFamily("."),
		"lookupIPV6":   lookupIPFamily(":"),
		"lookupSRV":    lookupSRV,
		"fileExists":   fileExists,
		"base64Encode": func(data string) string { return base64.StdEncoding.EncodeToString([]byte(data)) },
		"base64Decode": func(data string) (string, error) {
			b, err := base64.StdEncoding.DecodeString(data)
			return string(b), err
		},
		"parseBool":      strconv.ParseBool,
		"reverse":        reverse,
		"sortByLength":   sortByLength,
		"sortKVByLength": sortKVByLength,
		"add":            func(a, b int) int { return a + b },
		"sub":            func(a, b int) int { return a - b },
		"div":            func(a, b int) int { return a / b },
		"mod":            func(a, b int) int { return a % b },
		"mul":            func(a, b int) int { return a * b },
		"seq":            seq,
		"atoi":           strconv.Atoi,
		// memkv's store functions
		"exists": s.exists,
		"ls":     s.ls,
		"lsdir":  s.lsdir,
		"get":    s.get,
		"gets":   s.gets,
		"getv":   s.getv,
		"getvs":  s.getvs,
	}
}

func run(src, keysFile string) ([]byte, error) {
	raw, err := os.ReadFile(keysFile)
	if err != nil {
		return nil, err
	}
	keys := map[string]string{}
	if err := json.Unmarshal(raw, &keys); err != nil {
		return nil, fmt.Errorf("%s: want a flat JSON object of string values: %v", keysFile, err)
	}
	tmpl, err := template.New(filepath.Base(src)).Funcs(funcMap(store(keys))).ParseFiles(src)
	if err != nil {
		return nil, fmt.Errorf("unable to process template %s: %v", src, err)
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, nil); err != nil {
		return nil, fmt.Errorf("unable to process template %s: %v", src, err)
	}
	return out.Bytes(), nil
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: go run . TEMPLATE KEYS.json > expected")
		os.Exit(2)
	}
	out, err := run(os.Args[1], os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "oracle:", err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
}
