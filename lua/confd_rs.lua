-- confd_rs: reload-free upstream membership for nginx, fed by confd-rs.
--
-- confd-rs still renders every upstream file: its `server` lines and
--   balancer_by_lua_block { require("confd_rs").balance("NAME", V) }
-- where V is the etcd revision it rendered. When only server lists change, it POSTs the new
-- sets to admin() instead of reloading. balance() uses a posted set only while it is at least
-- as new as the file nginx loaded, so a lost dict (restart, or a reload that resized it) or a
-- failed POST leaves the file's own list in charge: the file stays the truth.
--
-- Layout of `lua_shared_dict confd_rs`:
--   gen         dict-wide counter; every store takes a new value G from it (never reused)
--   v:NAME = G  which data key is current. A number, so rewriting it happens in place and
--               cannot fail for lack of memory (a string of another size would be freed first
--               and then might not fit: the old value would be lost)
--   d:NAME:G    the set as canonical JSON text {"version","peers","max_fails","fail_timeout"}
--   l:NAME      held while an admin request changes NAME
-- A store writes d:NAME:G, then points v:NAME at G, then deletes the previous data key. Each
-- dict operation is atomic and a data key is written once and deleted only after v:NAME has
-- moved away from it, so a reader that reads v:NAME = G and then d:NAME:G gets exactly the
-- set stored with G, or nothing (then v:NAME has moved on and it reads again). The version
-- lives inside the data, so a reader can never pair a version with another version's peers.

local balancer = require("ngx.balancer")
local cjson = require("cjson.safe")
local ffi = require("ffi")

local ngx = ngx
local log, ERR, WARN, INFO = ngx.log, ngx.ERR, ngx.WARN, ngx.INFO
local floor = math.floor
local concat = table.concat
local fmt = string.format

local _M = {}

local DICT = "confd_rs"
local MAX_PEERS = 4096
local MAX_NAME = 200
-- Where a request goes when no peer is usable: connect() is refused at once, so nginx answers
-- 502 without waiting. (ngx.exit inside the balancer gives 500 with Debian's build, and a
-- `down` placeholder in the upstream would leave nginx with no tries for set_more_tries.)
local NOWHERE = "unix:/dev/null"

-- Peers are checked with libc's inet_pton: a full IPv4/IPv6 literal parser, stricter than a
-- pattern (no leading zeros in IPv4 octets, one "::" at most, embedded IPv4 tails).
pcall(ffi.cdef, "int inet_pton(int af, const char *src, void *dst);")
local AF_INET, AF_INET6 = 2, 10 -- Linux values
local addr_buf = ffi.new("unsigned char[16]")

local function ip_ok(af, s)
  return ffi.C.inet_pton(af, s, addr_buf) == 1
end

------------------------------------------------------------------------------------------------
-- Shared dict

local warned_no_dict = false

-- Without the dict nothing can be posted, so balance() serves the file and admin() fails; say
-- so once per worker rather than on every request.
local function get_dict()
  local dict = ngx.shared[DICT]
  if not dict and not warned_no_dict then
    warned_no_dict = true
    log(ERR, "confd_rs: no `lua_shared_dict ", DICT, "`: serving the upstream files' own ",
        "server lists; the admin endpoint answers 500")
  end
  return dict
end

-- The current data text of NAME and its generation, or nil. Retries when a store switched
-- v:NAME between our two reads (see the layout above); a few rounds are plenty since stores
-- are rare and never yield between their steps.
local function read_set(dict, name)
  for _ = 1, 4 do
    local g = dict:get("v:" .. name)
    if not g then
      return nil
    end
    local text = dict:get("d:" .. name .. ":" .. g)
    if text then
      return text, g
    end
  end
  log(ERR, "confd_rs: upstream ", name, ": set changing too fast to read, using the file")
  return nil
end

------------------------------------------------------------------------------------------------
-- JSON output. cjson is used for strings only: Debian's lua-cjson 2.1.0 encodes an empty
-- table as {} (so an empty peer list would not be an array) and prints numbers with 14
-- significant digits (an etcd revision can need 16).

local function jnum(x)
  if x == floor(x) and x > -2 ^ 53 and x < 2 ^ 53 then
    return fmt("%.0f", x)
  end
  -- the shortest form that reads back as the same double
  for p = 15, 16 do
    local s = fmt("%." .. p .. "g", x)
    if tonumber(s) == x then
      return s
    end
  end
  return fmt("%.17g", x)
end

local jstr = cjson.encode

-- The canonical text of a set: fixed key order and number forms, so that two texts are equal
-- exactly when the sets are (used for "unchanged"), and GET returns the peers in posted order.
local function set_text(version, peers, max_fails, fail_timeout)
  local quoted = {}
  for i = 1, #peers do
    quoted[i] = '"' .. peers[i] .. '"' -- validated: only hex digits, '.', ':', '[' and ']'
  end
  return '{"version":' .. jnum(version) .. ',"peers":[' .. concat(quoted, ",")
    .. '],"max_fails":' .. jnum(max_fails) .. ',"fail_timeout":' .. jnum(fail_timeout) .. "}"
end

------------------------------------------------------------------------------------------------
-- balance()

-- Per worker: the decoded set of each upstream, keyed by the generation it was read at, and
-- the passive health of each peer. Health is kept by name and address (not per decoded set)
-- so that a peer staying in a changed set keeps its state.
local sets = {}
local health = {}
local last_nowhere_log = {}

-- "10.0.0.1:80" -> "10.0.0.1", 80; "[::1]:80" -> "[::1]", 80 (checked by admin() already).
-- IPv6 keeps its brackets: set_current_peer parses the host with ngx_parse_url, which reads a
-- bare "::1" as host ":" port ":1" and fails ("invalid port").
local function split_peer(addr)
  local host, port = addr:match("^(.+):(%d+)$")
  return host, tonumber(port)
end

local function decode_set(name, g, text)
  local t = cjson.decode(text)
  if type(t) ~= "table" then
    log(ERR, "confd_rs: upstream ", name, ": stored set is not JSON, using the file")
    return nil
  end
  local peers, distinct, seen = {}, 0, {}
  for i, addr in ipairs(t.peers) do
    local host, port = split_peer(addr)
    peers[i] = { addr = addr, host = host, port = port }
    if not seen[addr] then
      seen[addr] = true
      distinct = distinct + 1
    end
  end
  -- forget the health of peers that left the set
  local h = health[name] or {}
  for addr in pairs(h) do
    if not seen[addr] then
      h[addr] = nil
    end
  end
  health[name] = h
  return {
    name = name,
    gen = g,
    version = t.version,
    peers = peers,
    distinct = distinct,
    max_fails = t.max_fails,
    fail_timeout = t.fail_timeout,
    health = h,
    rr = 1,
  }
end

-- The set to route NAME from, decoding only when the generation changed: one dict read per
-- request, and a POST is seen by every worker on its next request.
local function current_set(dict, name)
  local cached = sets[name]
  local g = dict:get("v:" .. name)
  if not g then
    sets[name] = nil
    return nil
  end
  if cached and cached.gen == g then
    return cached
  end
  local text
  text, g = read_set(dict, name)
  if not text then
    sets[name] = nil
    return nil
  end
  local set = decode_set(name, g, text)
  sets[name] = set
  return set
end

-- Passive health as nginx's max_fails/fail_timeout without `zone` (per worker). As in nginx,
-- a set of one peer is never marked down: there would be nothing else to try.
local function is_down(set, h, now)
  if not h or set.max_fails == 0 or set.distinct == 1 or h.fails < set.max_fails then
    return false
  end
  if now - h.last >= set.fail_timeout then
    h.fails = 0 -- fail_timeout has passed: a fresh chance
    return false
  end
  return true
end

local function note_failure(set, addr, now)
  if set.distinct == 1 then
    return
  end
  local h = set.health[addr]
  if not h then
    h = { fails = 0, last = 0 }
    set.health[addr] = h
  end
  -- failures older than fail_timeout do not count towards max_fails
  if now - h.last >= set.fail_timeout then
    h.fails = 0
  end
  h.fails = h.fails + 1
  h.last = now
  if set.max_fails > 0 and h.fails == set.max_fails then
    log(WARN, "confd_rs: upstream ", set.name, ": peer ", addr, " temporarily disabled for ",
        set.fail_timeout, " s after ", h.fails, " failures")
  end
end

local function live_count(set, now)
  local live = set.distinct
  for _, h in pairs(set.health) do
    if is_down(set, h, now) then
      live = live - 1
    end
  end
  return live
end

-- Next peer in round robin order that this request has not tried and that is not down.
local function pick(set, tried, now)
  local peers, n = set.peers, #set.peers
  local i = set.rr
  for _ = 1, n do
    if i > n then
      i = 1
    end
    local p = peers[i]
    i = i + 1
    if not tried[p.addr] and not is_down(set, set.health[p.addr], now) then
      set.rr = i
      return p
    end
  end
  return nil
end

local function route_nowhere(set, st)
  st.last = nil
  local now = ngx.now()
  -- nginx's own "no live upstreams" is an error too; at most once a second per upstream
  if (last_nowhere_log[set.name] or 0) + 1 <= now then
    last_nowhere_log[set.name] = now
    local tried = 0
    for _ in pairs(st.tried) do
      tried = tried + 1
    end
    log(ERR, "confd_rs: upstream ", set.name, ": no live peers (", #set.peers,
        " in version ", set.version, ", ", tried, " tried by this request): 502")
  end
  local ok, err = balancer.set_current_peer(NOWHERE)
  if not ok then
    log(ERR, "confd_rs: upstream ", set.name, ": set_current_peer(", NOWHERE, "): ", err)
  end
end

function _M.balance(name, file_version)
  local ctx = ngx.ctx
  local st = ctx.confd_rs
  if st == false then
    return -- this request started on the file's list: its retries stay there
  end
  local now = ngx.now()

  if st then
    -- A retry. Count a failure for the peer the previous attempt used, unless nginx moved on
    -- for another reason ("next": e.g. a 404 listed in proxy_next_upstream).
    if st.last and balancer.get_last_failure() == "failed" then
      note_failure(st.set, st.last, now)
    end
  else
    local dict = get_dict()
    local set = dict and current_set(dict, name)
    if not set or set.version < file_version then
      ctx.confd_rs = false
      return -- no set, or older than the file: nginx uses the upstream's own servers
    end
    -- The whole request uses the set it started with, even if a POST lands meanwhile.
    st = { set = set, tried = {} }
    ctx.confd_rs = st
    -- Retries: a refused connect moves on to another live peer. nginx already grants one try
    -- per `server` of the file; ask for one per live peer on top (not live - 1), so that the
    -- balancer also runs after the last live peer failed, which is the only way it learns of
    -- that failure (nothing of ours runs after the response), and answers it from NOWHERE.
    -- proxy_next_upstream_tries still caps the sum.
    local live = live_count(set, now)
    if live > 0 then
      balancer.set_more_tries(live)
    end
  end

  local set = st.set
  local p = pick(set, st.tried, now)
  if not p then
    return route_nowhere(set, st)
  end
  st.tried[p.addr] = true
  st.last = p.addr
  local ok, err = balancer.set_current_peer(p.host, p.port)
  if not ok then
    log(ERR, "confd_rs: upstream ", name, ": set_current_peer(", p.addr, "): ", err)
    return route_nowhere(set, st)
  end
end

------------------------------------------------------------------------------------------------
-- admin()

local function respond(status, body, allow)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  if allow then
    ngx.header["Allow"] = allow
  end
  body = body .. "\n"
  ngx.header["Content-Length"] = #body
  ngx.print(body)
  -- no ngx.exit: it would unwind through admin()'s pcall and skip the unlock
end

local function fail(status, msg, extra)
  return respond(status, '{"error":' .. jstr(msg) .. (extra or "") .. "}")
end

local function is_int(x, lo, hi)
  return type(x) == "number" and x >= lo and x <= hi and x == floor(x)
end

-- A peer: an IPv4 literal with a port, or [IPv6]:port. Returns an error message or nil.
local function peer_error(p)
  if type(p) ~= "string" then
    return "peers must be strings"
  end
  local shown = #p > 60 and p:sub(1, 60) .. "..." or p
  local v6, port = p:match("^%[([%x:.]+)%]:(%d+)$")
  local ok
  if v6 then
    ok = ip_ok(AF_INET6, v6)
  else
    local v4
    v4, port = p:match("^([%d.]+):(%d+)$")
    ok = v4 and ip_ok(AF_INET, v4)
  end
  if not ok then
    return "peer " .. jstr(shown) .. " is not an IPv4 address with a port or [IPv6]:port"
  end
  if not port:match("^[1-9]%d*$") or tonumber(port) > 65535 then
    return "peer " .. jstr(shown) .. " has a port outside 1-65535"
  end
end

-- Debian's lua-cjson cannot tell [] from {} once decoded (both are an empty table), so an
-- empty "peers" is accepted only if the body really has an array there.
local function empty_peers_is_array(body)
  return body:find('"peers"%s*:%s*%[') ~= nil
end

local function is_array(t)
  local n = 0
  for _ in pairs(t) do
    n = n + 1
  end
  for i = 1, n do
    if t[i] == nil then
      return false
    end
  end
  return true
end

-- The request body as a string. nginx writes bodies larger than client_body_buffer_size to a
-- temporary file; read it from there rather than refuse it (client_max_body_size still caps
-- it, with nginx's own 413).
local function request_body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body then
    return body
  end
  local path = ngx.req.get_body_file()
  if not path then
    return nil
  end
  local f, err = io.open(path, "rb")
  if not f then
    return nil, err
  end
  body = f:read("*a")
  f:close()
  return body
end

-- Validates a POST body; returns the canonical text, the version and force, or an error.
local function parse_post(body)
  local t, err = cjson.decode(body)
  if t == nil then
    return nil, "body is not JSON: " .. tostring(err)
  end
  if type(t) ~= "table" or (next(t) ~= nil and is_array(t)) then
    return nil, "body must be a JSON object"
  end
  local version = t.version
  if not is_int(version, 0, 2 ^ 53) then
    return nil, "version must be a non-negative integer"
  end
  local peers = t.peers
  if type(peers) ~= "table" or not is_array(peers)
      or (next(peers) == nil and not empty_peers_is_array(body)) then
    return nil, "peers must be an array of \"a.b.c.d:port\" or \"[v6]:port\" strings"
  end
  if #peers > MAX_PEERS then
    return nil, "more than " .. MAX_PEERS .. " peers"
  end
  for i = 1, #peers do
    local perr = peer_error(peers[i])
    if perr then
      return nil, perr
    end
  end
  local max_fails = t.max_fails == nil and 1 or t.max_fails
  if not is_int(max_fails, 0, 1000) then
    return nil, "max_fails must be an integer from 0 to 1000"
  end
  local fail_timeout = t.fail_timeout == nil and 10 or t.fail_timeout
  if type(fail_timeout) ~= "number" or not (fail_timeout >= 0 and fail_timeout <= 86400) then
    return nil, "fail_timeout must be a number of seconds from 0 to 86400"
  end
  local force = t.force
  if force == nil then
    force = false
  elseif type(force) ~= "boolean" then
    return nil, "force must be true or false"
  end
  return set_text(version, peers, max_fails, fail_timeout), version, force
end

-- One admin change of NAME at a time across workers. The critical sections below never
-- yield, so the lock is held for microseconds; its expiry only matters if a worker dies
-- holding it.
local function lock(dict, name)
  local key = "l:" .. name
  for _ = 1, 200 do
    local ok, err = dict:safe_add(key, true, 5)
    if ok then
      return key
    end
    if err ~= "exists" then
      return nil, 507, "shared dict " .. DICT .. " is full (" .. tostring(err) .. ")"
    end
    ngx.sleep(0.005)
  end
  return nil, 503, "another change of upstream " .. name .. " is in progress"
end

-- The version held in a stored text: it starts with {"version":V, (set_text writes it so).
local function text_version(text)
  return tonumber(text:match('^{"version":(%d+)'))
end

local function store(dict, name, text, version, force)
  local old_text, old_g = read_set(dict, name)
  if old_text then
    local held = text_version(old_text)
    if version == held and text == old_text then
      return respond(200, '{"result":"unchanged","version":' .. jnum(version) .. "}")
    end
    if not force and version <= held then
      local msg = version < held
        and "version " .. jnum(version) .. " is older than the version " .. jnum(held) .. " held"
        or "version " .. jnum(version) .. " is held with another set (force replaces it)"
      return fail(409, msg, ',"version":' .. jnum(held))
    end
  end

  -- safe_* never evicts other entries: a full dict fails this POST (then confd-rs takes the
  -- reload path), it does not silently drop another upstream's set.
  local full = "shared dict " .. DICT .. " is full: "
  local ok, err = dict:safe_add("gen", 0)
  if not ok and err ~= "exists" then
    return fail(507, full .. tostring(err))
  end
  local g = dict:incr("gen", 1) -- in place: a number never needs new memory
  if not g then
    return fail(500, "cannot take a generation number")
  end
  local data_key = "d:" .. name .. ":" .. g
  ok, err = dict:safe_set(data_key, text)
  if not ok then
    return fail(507, full .. tostring(err))
  end
  ok, err = dict:safe_set("v:" .. name, g)
  if not ok then
    -- only a first store can fail here (an existing number is rewritten in place)
    dict:delete(data_key)
    return fail(507, full .. tostring(err))
  end
  if old_g then
    dict:delete("d:" .. name .. ":" .. old_g)
  end
  log(INFO, "confd_rs: upstream ", name, ": stored version ", jnum(version),
      force and " (forced)" or "")
  return respond(200, '{"result":"stored","version":' .. jnum(version) .. "}")
end

local function delete(dict, name)
  local g = dict:get("v:" .. name)
  if not g then
    return fail(404, "no set for upstream " .. name)
  end
  dict:delete("v:" .. name)
  dict:delete("d:" .. name .. ":" .. g)
  log(INFO, "confd_rs: upstream ", name, ": set deleted, the file's servers serve")
  return respond(200, '{"result":"deleted"}')
end

local function list_all(dict)
  local parts = {}
  for _, key in ipairs(dict:get_keys(0)) do
    local name = key:match("^v:(.+)$")
    local text = name and read_set(dict, name)
    if text then
      parts[#parts + 1] = jstr(name) .. ":" .. text
    end
  end
  table.sort(parts) -- a stable answer, whatever order the dict keeps
  return respond(200, "{" .. concat(parts, ",") .. "}")
end

function _M.admin()
  local method = ngx.req.get_method()
  local uri = ngx.var.uri
  local name = uri:match("^/upstreams/(.*)$")
  if uri ~= "/upstreams" and not name then
    return fail(404, "no such endpoint: GET /upstreams, GET|POST|DELETE /upstreams/NAME")
  end
  local allow = name and "GET, HEAD, POST, DELETE" or "GET, HEAD"
  local read_only = method == "GET" or method == "HEAD"
  if not read_only and not (name and (method == "POST" or method == "DELETE")) then
    return respond(405, '{"error":' .. jstr("method " .. method .. " not allowed") .. "}", allow)
  end

  local dict = get_dict()
  if not dict then
    return fail(500, "nginx has no `lua_shared_dict " .. DICT .. "`")
  end
  if not name then
    return list_all(dict)
  end

  local name_ok = #name <= MAX_NAME and name:find("^[A-Za-z0-9_.-]+$") ~= nil
  if read_only then
    local text = name_ok and read_set(dict, name)
    if not text then
      return fail(404, "no set for upstream " .. name)
    end
    return respond(200, text)
  end
  if not name_ok then
    return fail(400, "upstream name must match ^[A-Za-z0-9_.-]+$ and have at most "
      .. MAX_NAME .. " characters")
  end

  local text, version, force
  if method == "POST" then
    local body, err = request_body()
    if not body then
      return fail(400, err and "cannot read the body: " .. err or "no body")
    end
    text, version, force = parse_post(body)
    if not text then
      return fail(400, version)
    end
  end

  local key, status, err = lock(dict, name)
  if not key then
    return fail(status, err)
  end
  -- unlock even if the change raises an error
  local ok, perr = pcall(function()
    if method == "POST" then
      return store(dict, name, text, version, force)
    end
    return delete(dict, name)
  end)
  dict:delete(key)
  if not ok then
    error(perr)
  end
end

return _M
