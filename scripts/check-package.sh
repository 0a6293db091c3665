#!/usr/bin/env bash
# Installs the package scripts/package.sh built and checks it as an operator would meet it:
# the installed binary runs (version, the example confdir, check, a noop render from a key
# file), its man pages and completions are in place, and no symbol needs a glibc newer than 2.17.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
deb=$(ls target/debian/confd-rs_*.deb | tail -1)
apt-get install -y "./$deb"

fail() { echo "check-package: $*" >&2; exit 1; }
[ "$(command -v confd-rs)" = /usr/bin/confd-rs ] || fail "confd-rs is not /usr/bin/confd-rs"
confd-rs --version | grep -q '^confd-rs [0-9]' || fail "--version"

newest=$(objdump -T /usr/bin/confd-rs | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
[ "$(printf '%s\n2.17\n' "$newest" | sort -V | tail -1)" = 2.17 ] \
    || fail "the binary needs glibc $newest (floor: 2.17)"
echo "glibc floor: the newest symbol the binary needs is GLIBC_$newest"

for f in /etc/confd-rs/confd.toml /etc/confd-rs/conf.d/nginx-upstreams.toml \
    /etc/confd-rs/templates/nginx-upstream.conf.tmpl /lib/systemd/system/confd-rs.service \
    /etc/supervisor/conf.d/confd-rs.conf.example /usr/share/man/man1/confd-rs.1.gz \
    /usr/share/man/man1/confd-rs-register.1.gz /usr/share/bash-completion/completions/confd-rs \
    /usr/share/zsh/vendor-completions/_confd-rs /usr/share/fish/vendor_completions.d/confd-rs.fish \
    /usr/share/confd-rs/monitoring/confd-rs-alerts.yml /usr/share/doc/confd-rs/README.md \
    /usr/share/confd-rs/lua/confd_rs.lua /usr/share/confd-rs/nginx/confd-rs-dynamic.conf \
    /usr/lib/tmpfiles.d/confd-rs.conf; do
    [ -e "$f" ] || fail "$f is missing"
done
grep -q '^ExecStart=/usr/bin/confd-rs -confdir /etc/confd-rs' /lib/systemd/system/confd-rs.service \
    || fail "the unit does not run the installed binary on the installed confdir"

getent group confd-rs >/dev/null || fail "the confd-rs group (the balancer socket's directory) was not created"

# The reload-free mode's nginx lines, as installed, in a private nginx with the Lua modules: its
# config test passes and it starts (a wrong lua_package_path passes -t but fails to start).
ngx=$(mktemp -d)
mkdir -p "$ngx/logs" "$ngx/run"
sed "s|/run/confd-rs/nginx/admin.sock|$ngx/run/admin.sock|" /usr/share/confd-rs/nginx/confd-rs-dynamic.conf >"$ngx/dynamic.conf"
cat >"$ngx/nginx.conf" <<NGINX
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
pid $ngx/logs/nginx.pid;
error_log $ngx/logs/error.log;
events {}
http { access_log off; include $ngx/dynamic.conf; }
NGINX
nginx -q -t -p "$ngx" -c "$ngx/nginx.conf" || fail "nginx -t with the installed dynamic.conf"
nginx -p "$ngx" -c "$ngx/nginx.conf" || fail "nginx with the installed dynamic.conf did not start"
for _ in $(seq 50); do [ -S "$ngx/run/admin.sock" ] && break; sleep 0.1; done
answer=$(curl -s --unix-socket "$ngx/run/admin.sock" http://nginx/upstreams || true)
nginx -p "$ngx" -c "$ngx/nginx.conf" -s stop 2>/dev/null
[ "$answer" = "{}" ] || fail "the installed balancer's endpoint answered '$answer', not {}"
rm -rf "$ngx"

confd-rs check --confdir /etc/confd-rs >/dev/null || fail "check of the installed example confdir"
keys=$(mktemp --suffix=.yaml)
printf 'search_PRE:\n  10.0.0.1-80: "10.0.0.1:80"\n' >"$keys"
out=$(confd-rs --confdir /etc/confd-rs --onetime --noop --backend file --file "$keys" 2>&1) \
    || fail "noop render of the example: $out"
grep -q 'upstream search_PRE' <<<"$out" || fail "the example did not render: $out"
rm -f "$keys"
echo "check-package: $deb installs and runs"
