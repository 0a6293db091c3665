#!/usr/bin/env bash
# Builds target/debian/confd-rs_*.deb: the binary built for glibc 2.17 (cargo-zigbuild with zig
# from PyPI's ziglang), man pages and shell completions generated from the CLI definition, the
# systemd unit, supervisor examples, the example confdir (/etc/confd-rs) and the monitoring files.
# Installs what it needs (cargo-zigbuild, cargo-deb, ziglang in a venv) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=x86_64-unknown-linux-gnu
GLIBC=2.17
export PATH="$HOME/.cargo/bin:$PATH"

if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    apt-get install -y python3-venv
fi
ZIGENV=target/zigenv
[ -x "$ZIGENV/bin/python" ] || python3 -m venv "$ZIGENV"
"$ZIGENV/bin/python" -c 'import ziglang' 2>/dev/null || "$ZIGENV/bin/pip" install --quiet ziglang
export PATH="$PWD/$ZIGENV/bin:$PATH"
command -v cargo-zigbuild >/dev/null || cargo install --locked cargo-zigbuild
command -v cargo-deb >/dev/null || cargo install --locked cargo-deb
rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"

cargo zigbuild --release --locked --target "$TARGET.$GLIBC" --bin confd-rs
BIN=target/$TARGET/release/confd-rs

rm -rf target/assets
"$BIN" generate man target/assets/man
mkdir -p target/assets/completions
"$BIN" generate completions bash >target/assets/completions/confd-rs.bash
"$BIN" generate completions zsh >target/assets/completions/_confd-rs
"$BIN" generate completions fish >target/assets/completions/confd-rs.fish

cargo deb --no-build --target "$TARGET" --output target/debian/
ls target/debian/confd-rs_*.deb
