# Shared by scripts/demo.sh and scripts/test.sh (sourced, not run).

PACKAGES="build-essential protobuf-compiler libprotobuf-dev etcd-server etcd-client nginx supervisor openssl prometheus python3-venv
    libnginx-mod-http-lua libnginx-mod-http-ndk lua-resty-core lua-cjson"

# Installs the Debian packages the build and the tests need, when any is missing.
ensure_packages() {
    command -v cargo >/dev/null || { echo "cargo not found: this needs a Rust toolchain (rustup) on PATH" >&2; exit 1; }
    local missing=""
    for p in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        echo "installing:$missing" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # shellcheck disable=SC2086
        apt-get install -y -qq $missing >/dev/null
    fi
}

# A free TCP port on 127.0.0.1, below Linux's ephemeral range (32768+) so no outgoing
# connection can hold it.
free_port() {
    local port
    while :; do
        port=$(( (RANDOM % 12000) + 20000 ))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
    done
}

# GET http://127.0.0.1:PORT/PATH with bash alone (a fresh machine may have no curl); prints the body.
http_get() {
    exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'GET %s HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n' "$2" >&3
    sed '1,/^\r$/d' <&3
    exec 3<&-
}
