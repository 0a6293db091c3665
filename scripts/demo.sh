#!/usr/bin/env bash
# The demo: a throwaway etcd + nginx + two tiny HTTP backends on loopback, in a temp dir.
# Instances register in etcd as /<app>_<ENV>/<ip>-<port> = <ip>:<port>; confd-rs renders nginx's
# upstreams; after each change we show what nginx serves. Everything is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_packages
cargo build --quiet
BIN=$PWD/target/debug/confd-rs

WORK=$(mktemp -d /tmp/confd-rs-demo.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

ETCD_PORT=$(free_port); PEER_PORT=$(free_port); FRONT=$(free_port); B1=$(free_port); B2=$(free_port)
ETCD=http://127.0.0.1:$ETCD_PORT
step() { printf '\n== %s\n' "$*"; }
etcdctl() { ETCDCTL_API=3 command etcdctl --endpoints "$ETCD" "$@" >/dev/null; }

start_etcd() {
    etcd --name demo --data-dir "$WORK/etcd" --logger=zap --log-level=error \
        --listen-client-urls "$ETCD" --advertise-client-urls "$ETCD" \
        --listen-peer-urls "http://127.0.0.1:$PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
        --initial-cluster "demo=http://127.0.0.1:$PEER_PORT" >>"$WORK/etcd.log" 2>&1 &
    ETCD_PID=$!
    PIDS+=("$ETCD_PID")
    until etcdctl endpoint health 2>/dev/null; do sleep 0.2; done
}

step "etcd on $ETCD"
start_etcd

step "nginx on 127.0.0.1:$FRONT, proxying /search/ to upstream search_PRE; backends on :$B1 and :$B2"
NGX=$WORK/nginx
mkdir -p "$NGX"/{conf,logs,tmp,conf.d}
: >"$NGX/conf.d/upstreams.conf"
cat >"$NGX/conf/nginx.conf" <<NGINX
$( [ "$(id -u)" = 0 ] && echo "user root root;" )
worker_processes 1;
pid $NGX/logs/nginx.pid;
error_log $NGX/logs/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $NGX/tmp/body; proxy_temp_path $NGX/tmp/proxy;
    fastcgi_temp_path $NGX/tmp/fastcgi; uwsgi_temp_path $NGX/tmp/uwsgi; scgi_temp_path $NGX/tmp/scgi;
    include $NGX/conf.d/upstreams.conf;
    server { listen 127.0.0.1:$FRONT; location /search/ { set \$up search_PRE; proxy_pass http://\$up; } }
    server { listen 127.0.0.1:$B1; location / { return 200 "hello from backend :$B1\n"; } }
    server { listen 127.0.0.1:$B2; location / { return 200 "hello from backend :$B2\n"; } }
}
NGINX
NGINX_ARGS="-p $NGX -c $NGX/conf/nginx.conf"
nginx $NGINX_ARGS -g 'daemon off;' 2>>"$WORK/nginx.err" &
PIDS+=($!)
until (exec 3<>"/dev/tcp/127.0.0.1/$FRONT") 2>/dev/null; do sleep 0.1; done

step "a confdir as on a host's /etc/confd, pointed at this etcd and this nginx"
CONFDIR=$WORK/confd
mkdir -p "$CONFDIR/conf.d"
cp -r templates "$CONFDIR/templates"
printf 'backend = "etcdv3"\nnodes = ["%s"]\n' "$ETCD" >"$CONFDIR/confd.toml"
cat >"$CONFDIR/conf.d/nginx-upstreams.toml" <<TOML
[template]
src = "nginx-upstreams.conf.tmpl"
dest = "$NGX/conf.d/upstreams.conf"
keys = ["/"]
check_cmd = "nginx -t -q $NGINX_ARGS"
reload_cmd = "nginx -s reload $NGINX_ARGS"
TOML
cat "$CONFDIR/conf.d/nginx-upstreams.toml"

UP=$NGX/conf.d/upstreams.conf
METRICS=$(free_port)
step "start the confd-rs daemon: it watches etcd; nothing is re-run from here on"
"$BIN" --confdir "$CONFDIR" --metrics-addr "127.0.0.1:$METRICS" 2> >(sed -u 's/^/    [confd-rs] /' >&2) &
DAEMON=$!
PIDS+=("$DAEMON")
until grep -q Generated "$UP" 2>/dev/null; do
    kill -0 "$DAEMON" 2>/dev/null || { echo "confd-rs exited: see its log above" >&2; exit 1; }
    sleep 0.05
done

show() {
    echo "--- $UP:"; sed 's/^/    /' "$UP"
    sleep 0.3 # nginx -s reload returns before the new workers serve
    echo "--- nginx serves GET /search/ (4 requests):"
    for _ in 1 2 3 4; do printf '    '; http_get "$FRONT" /search/; done
}
# Runs an etcdctl change and reports when (whether) the daemon rewrote the upstreams file.
change() {
    local before t0 ms=0
    before=$(cat "$UP"); t0=$(date +%s%N)
    etcdctl "$@"
    while [ "$(cat "$UP")" = "$before" ] && [ "$ms" -lt 1500 ]; do sleep 0.005; ms=$(( ($(date +%s%N) - t0) / 1000000 )); done
    if [ "$(cat "$UP")" = "$before" ]; then echo "--- upstreams file unchanged"
    else echo "--- upstreams file rewritten $(( ($(date +%s%N) - t0) / 1000000 )) ms after etcdctl started"; fi
}

step "register instance :$B1"
change put "/search_PRE/127.0.0.1-$B1" "127.0.0.1:$B1"; show

step "register instance :$B2 (nginx now round-robins)"
change put "/search_PRE/127.0.0.1-$B2" "127.0.0.1:$B2"; show

step "a value that tries to inject nginx directives is left out, and logged by key"
change put "/search_PRE/evil" '127.0.0.1:1; } server { listen 127.0.0.1:1; } upstream x { server 127.0.0.1:2'
etcdctl del "/search_PRE/evil"

step "deregister :$B1"
change del "/search_PRE/127.0.0.1-$B1"; show

step "--noop (as CI would run it) shows nothing to change: the daemon keeps the file in step"
"$BIN" --confdir "$CONFDIR" --onetime --noop --exit-code 2>/dev/null && echo "    in sync (exit 0)"

step "etcd dies: nginx keeps serving the last good config, /healthz says why"
{ kill -9 "$ETCD_PID"; wait "$ETCD_PID"; } 2>/dev/null || true
sleep 0.3
printf '    /healthz: '; http_get "$METRICS" /healthz
for _ in 1 2; do printf '    '; http_get "$FRONT" /search/; done

step "etcd is back, and an instance registers right away: the daemon reconnects and catches up"
start_etcd
change put "/search_PRE/127.0.0.1-$B1" "127.0.0.1:$B1"; show
printf '    /healthz: '; http_get "$METRICS" /healthz

step "the other half of the loop: confd-rs register keeps an instance in etcd while it runs"
B3=$(free_port)
sed -i "s|^}$|    server { listen 127.0.0.1:$B3; location / { return 200 \"hello from backend :$B3 (registered by the agent)\\n\"; } }\n}|" "$NGX/conf/nginx.conf"
nginx $NGINX_ARGS -s reload 2>/dev/null
"$BIN" register --node "$ETCD" --app search --env PRE --ip 127.0.0.1 --port "$B3" --ttl 5 \
    2> >(sed -u 's/^/    [register] /' >&2) &
AGENT=$!
until grep -q "$B3" "$UP"; do sleep 0.01; done
show
kill -TERM "$AGENT"; wait "$AGENT" || true
until ! grep -q "$B3" "$UP"; do sleep 0.01; done
echo "--- after SIGTERM to the agent, :$B3 is gone from the upstreams at once (not after its 5 s TTL)"

step "reload-free mode: nginx with confd-rs's Lua balancer, and dynamic = SOCKET in the resource"
sleep 0.5 # the agent's deregistration above is still being reloaded
nginx $NGINX_ARGS -s stop; while [ -e "$NGX/logs/nginx.pid" ]; do sleep 0.05; done
mkdir -p "$WORK/run"; chmod 0750 "$WORK/run"   # the socket's directory is its protection
sed -e "s|/usr/share/confd-rs/lua/|$PWD/lua/|" -e "s|/run/confd-rs/nginx/admin.sock|$WORK/run/admin.sock|" \
    etc-confd/nginx/confd-rs-dynamic.conf >"$NGX/conf/confd-rs-dynamic.conf"
sed -i -e '1i load_module /usr/lib/nginx/modules/ndk_http_module.so;\nload_module /usr/lib/nginx/modules/ngx_http_lua_module.so;' \
    -e "s|^    include $NGX/conf.d/upstreams.conf;|    include $NGX/conf/confd-rs-dynamic.conf;\n&|" "$NGX/conf/nginx.conf"
nginx $NGINX_ARGS -g 'daemon off;' 2>>"$WORK/nginx.err" &
PIDS+=($!)
until [ -S "$WORK/run/admin.sock" ]; do sleep 0.05; done
printf 'dynamic = "%s"\nreload_pidfile = "%s"\n' "$WORK/run/admin.sock" "$NGX/logs/nginx.pid" \
    >>"$CONFDIR/conf.d/nginx-upstreams.toml"
echo "--- conf.d/nginx-upstreams.toml now ends with:"; tail -2 "$CONFDIR/conf.d/nginx-upstreams.toml" | sed 's/^/    /'
until grep -q balancer_by_lua_block "$UP"; do sleep 0.05; done   # the daemon saw the edit: one reload
# The master's children, from /proc (a fresh machine may have no procps).
workers() {
    awk -v m="$(cat "$NGX/logs/nginx.pid")" '{ pid = $1; sub(/.*\) /, ""); if ($2 == m) print pid }' \
        /proc/[0-9]*/stat 2>/dev/null | paste -sd' '
}
sleep 0.3; W=$(workers)
echo "--- nginx workers: $W"
step "deregister :$B1, then register it again: no nginx -t, no reload"
change del "/search_PRE/127.0.0.1-$B1"; show
change put "/search_PRE/127.0.0.1-$B1" "127.0.0.1:$B1"; show
echo "--- nginx workers: $(workers) (before: $W): the same processes, no connection closed"
echo "--- confd-rs status:"; "$BIN" status --metrics-addr "127.0.0.1:$METRICS" | grep '^upstream' | sed 's/^/    /'

step "SIGTERM: the daemon finishes what it is doing and exits 0"
kill -TERM "$DAEMON"; wait "$DAEMON" && echo "    confd-rs exited $?"

step "done: everything under $WORK is removed"
