#!/usr/bin/env bash
# Makes this machine (Debian 12, root) ready for `npm test`: Debian packages (postgresql among them: tests run
# throwaway clusters of it, test/helpers/postgres.ts), a running dockerd,
# node_modules, the Go-built peers (crane, oras, regclient, distribution v3, versitygw, cosign, notation, OCI
# conformance), the local images regctl-test/traefik:v3.6, regctl-test/node:20 and the trial services'
# regctl-test/postgres:15 and regctl-test/versitygw:v1.8.0.
#
# Idempotent: every step checks first and skips what is already there at the pinned version, so a
# second run takes seconds. Any failure names the peer and the command, prints the tail of its log
# and exits non-zero.
#
# Environment:
#   REGCTL_PEERS_DIR    where Go-built peers go (default /var/cache/regctl-test/bin)
#   REGCTL_TEST_LOGS    where build logs go (default /var/log/regctl-test)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS_DIR="${REGCTL_PEERS_DIR:-/var/cache/regctl-test/bin}"
LOG_DIR="${REGCTL_TEST_LOGS:-/var/log/regctl-test}"
BUILD_DIR="$(dirname "$PEERS_DIR")/build"

CRANE_PKG="github.com/google/go-containerregistry/cmd/crane"
CRANE_MOD="github.com/google/go-containerregistry"
CRANE_VERSION="v0.22.1"
ORAS_PKG="oras.land/oras/cmd/oras"
ORAS_MOD="oras.land/oras"
ORAS_VERSION="v1.3.6"
REGCLIENT_PKG="github.com/regclient/regclient/cmd/regctl"
REGCLIENT_MOD="github.com/regclient/regclient"
REGCLIENT_VERSION="v0.11.7"
REGISTRY_V3_PKG="github.com/distribution/distribution/v3/cmd/registry"
REGISTRY_V3_MOD="github.com/distribution/distribution/v3"
REGISTRY_V3_VERSION="v3.1.1"
CONFORMANCE_MOD="github.com/opencontainers/distribution-spec/conformance"
ACTIONLINT_PKG="github.com/rhysd/actionlint/cmd/actionlint"
ACTIONLINT_MOD="github.com/rhysd/actionlint"
ACTIONLINT_VERSION="v1.7.7"
VERSITYGW_PKG="github.com/versity/versitygw/cmd/versitygw"
VERSITYGW_MOD="github.com/versity/versitygw"
VERSITYGW_VERSION="v1.8.0"
COSIGN_PKG="github.com/sigstore/cosign/v3/cmd/cosign"
COSIGN_MOD="github.com/sigstore/cosign/v3"
COSIGN_VERSION="v3.1.3"
NOTATION_PKG="github.com/notaryproject/notation/cmd/notation"
NOTATION_MOD="github.com/notaryproject/notation"
TRAEFIK_MOD="github.com/traefik/traefik/v3"
TRAEFIK_IMAGE="regctl-test/traefik:v3.6"
BASE_IMAGE="regctl-test/node:20"
VERSION_LABEL="org.regctl.test.version"

APT_PACKAGES=(
  docker.io containerd docker-compose skopeo podman docker-registry pebble chromium
  openssl jq curl iproute2 ca-certificates busybox-static tar groovy default-jre-headless apache2-utils postgresql
)

START_SECONDS=$SECONDS
mkdir -p "$PEERS_DIR" "$LOG_DIR" "$BUILD_DIR"

say() { printf 'provision: %s\n' "$*"; }

# fail PEER COMMAND [LOG]: the one way out on error.
fail() {
  local peer="$1" cmd="$2" log="${3:-}"
  printf 'provision: FAILED [%s] command: %s\n' "$peer" "$cmd" >&2
  if [[ -n "$log" && -f "$log" ]]; then
    printf 'provision: last lines of %s:\n' "$log" >&2
    tail -n 30 "$log" >&2 || true
  fi
  exit 1
}

# run PEER LOG COMMAND...: runs COMMAND with its output in LOG, fails loudly naming PEER.
run() {
  local peer="$1" log="$2"
  shift 2
  if ! "$@" >>"$log" 2>&1; then
    fail "$peer" "$*" "$log"
  fi
}

# Only one provisioning at a time on this machine (several test runs may start together).
exec 9>"$LOG_DIR/.provision.lock"
if ! flock -w 3600 9; then
  fail "lock" "flock $LOG_DIR/.provision.lock"
fi

# ---------------------------------------------------------------------------------------------
# Debian packages
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]} > 0)); then
  if [[ "$(id -u)" != 0 ]]; then
    fail "apt" "apt-get install ${missing[*]} (needs root)"
  fi
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  run apt "$LOG_DIR/apt.log" apt-get update
  run apt "$LOG_DIR/apt.log" apt-get install -y --no-install-recommends "${missing[@]}"
fi

# ---------------------------------------------------------------------------------------------
# Go toolchain: the machine's own, never a downloaded one.
export PATH="$PATH:/usr/local/go/bin"
export GOTOOLCHAIN=local
export GOFLAGS=-buildvcs=false
command -v go >/dev/null 2>&1 || fail "go" "command -v go (install Go >= 1.26 at /usr/local/go)"
GO_VERSION="$(go env GOVERSION)"
go_minor="$(sed -E 's/^go1\.([0-9]+).*/\1/' <<<"$GO_VERSION")"
if [[ ! "$go_minor" =~ ^[0-9]+$ ]] || ((go_minor < 26)); then
  fail "go" "go env GOVERSION = $GO_VERSION (Traefik v3.6 needs Go >= 1.26)"
fi

# pinned_version DIR MODULE: the version DIR/go.mod requires for MODULE.
pinned_version() {
  awk -v m="$2" '$1 == m { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$1/go.mod"
}
CONFORMANCE_VERSION="$(pinned_version "$REPO_ROOT/test/peers/conformance" "$CONFORMANCE_MOD")"
TRAEFIK_VERSION="$(pinned_version "$REPO_ROOT/test/peers/traefik" "$TRAEFIK_MOD")"
NOTATION_VERSION="$(pinned_version "$REPO_ROOT/test/peers/notation" "$NOTATION_MOD")"
[[ -n "$CONFORMANCE_VERSION" ]] || fail "conformance" "read $CONFORMANCE_MOD from test/peers/conformance/go.mod"
[[ -n "$TRAEFIK_VERSION" ]] || fail "traefik" "read $TRAEFIK_MOD from test/peers/traefik/go.mod"
[[ -n "$NOTATION_VERSION" ]] || fail "notation" "read $NOTATION_MOD from test/peers/notation/go.mod"

# built_version BINARY MODULE: the version of MODULE linked into a Go binary, or nothing.
built_version() {
  [[ -x "$1" ]] || return 0
  go version -m "$1" 2>/dev/null | awk -v m="$2" '($1 == "mod" || $1 == "dep") && $2 == m { print $3; exit }'
}

# ---------------------------------------------------------------------------------------------
# Traefik: the slowest build, started first in the background; the image is made at the end.
image_label() {
  docker image inspect -f "{{ index .Config.Labels \"$VERSION_LABEL\" }}" "$1" 2>/dev/null || true
}

build_traefik_binary() {
  local out="$BUILD_DIR/traefik.$$"
  (
    cd "$REPO_ROOT/test/peers/traefik"
    CGO_ENABLED=0 nice -n 5 go build -trimpath \
      -ldflags "-s -w -X $TRAEFIK_MOD/pkg/version.Version=$TRAEFIK_VERSION -X $TRAEFIK_MOD/pkg/version.Codename=regctl-test" \
      -o "$out" "$TRAEFIK_MOD/cmd/traefik"
  ) && mv -f "$out" "$PEERS_DIR/traefik"
}

traefik_pid=""
traefik_started=0
need_traefik_image=0
# docker may not be up yet: the image check is repeated once dockerd answers.
if [[ "$(built_version "$PEERS_DIR/traefik" "$TRAEFIK_MOD")" != "$TRAEFIK_VERSION" ]]; then
  say "building Traefik $TRAEFIK_VERSION in the background (log: $LOG_DIR/traefik-build.log)"
  : >"$LOG_DIR/traefik-build.log"
  traefik_started=$SECONDS
  export -f build_traefik_binary
  export REPO_ROOT BUILD_DIR PEERS_DIR TRAEFIK_MOD TRAEFIK_VERSION
  # its own session, so a failure elsewhere can stop the whole build (go and its compilers) on exit
  setsid bash -c build_traefik_binary >>"$LOG_DIR/traefik-build.log" 2>&1 &
  traefik_pid=$!
  trap '[[ -n "$traefik_pid" ]] && kill -- "-$traefik_pid" 2>/dev/null; true' EXIT
fi

# ---------------------------------------------------------------------------------------------
# dockerd
if ! docker info >/dev/null 2>&1; then
  say "starting dockerd (log: /var/log/dockerd.log)"
  command -v dockerd >/dev/null 2>&1 || fail "docker" "command -v dockerd"
  # fd 9 (the provisioning lock) is closed for dockerd: it outlives this script and would hold the lock for good.
  (nohup dockerd >/var/log/dockerd.log 2>&1 9>&- &)
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || fail "docker" "docker info (dockerd did not answer within 60 s)" /var/log/dockerd.log
fi
if [[ "$(image_label "$TRAEFIK_IMAGE")" != "$TRAEFIK_VERSION" ]]; then
  need_traefik_image=1
fi

# ---------------------------------------------------------------------------------------------
# node_modules: `npm ci` when missing; `npm install` (which keeps what is already right) when the lock
# file is newer than what npm last installed (npm writes node_modules/.package-lock.json after it).
cd "$REPO_ROOT"
if [[ ! -d node_modules || ! -f node_modules/.package-lock.json ]]; then
  if [[ -f package-lock.json ]]; then
    say "installing node_modules (npm ci)"
    run npm "$LOG_DIR/npm.log" npm ci --no-audit --no-fund
  else
    say "installing node_modules (npm install)"
    run npm "$LOG_DIR/npm.log" npm install --no-audit --no-fund
  fi
elif [[ ! -f package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  say "updating node_modules (npm install)"
  run npm "$LOG_DIR/npm.log" npm install --no-audit --no-fund
fi

# ---------------------------------------------------------------------------------------------
# Go peers installed from the module proxy: go_install NAME PACKAGE MODULE VERSION
go_install() {
  local name="$1" pkg="$2" mod="$3" version="$4"
  local log="$LOG_DIR/$name-build.log"
  if [[ "$(built_version "$PEERS_DIR/$name" "$mod")" == "$version" ]]; then
    return 0
  fi
  say "building $name ($pkg@$version)"
  local gobin="$BUILD_DIR/gobin-$name"
  rm -rf "$gobin"
  mkdir -p "$gobin"
  : >"$log"
  run "$name" "$log" env GOBIN="$gobin" CGO_ENABLED=0 go install -trimpath "$pkg@$version"
  mv -f "$gobin/$(basename "$pkg")" "$PEERS_DIR/$name"
  rm -rf "$gobin"
}
go_install crane "$CRANE_PKG" "$CRANE_MOD" "$CRANE_VERSION"
go_install oras "$ORAS_PKG" "$ORAS_MOD" "$ORAS_VERSION"
# regclient's CLI is also called regctl: installed as `regclient` so it never shadows ours.
go_install regclient "$REGCLIENT_PKG" "$REGCLIENT_MOD" "$REGCLIENT_VERSION"
go_install registry-v3 "$REGISTRY_V3_PKG" "$REGISTRY_V3_MOD" "$REGISTRY_V3_VERSION"
# actionlint checks the GitHub workflows `regctl ci github` writes.
go_install actionlint "$ACTIONLINT_PKG" "$ACTIONLINT_MOD" "$ACTIONLINT_VERSION"
# versitygw is the S3-compatible server the S3 storage driver is tested against (posix backend on a temp dir).
go_install versitygw "$VERSITYGW_PKG" "$VERSITYGW_MOD" "$VERSITYGW_VERSION"
# cosign and notation sign images in our registry and verify them (signature policies, the UI's signed marks).
go_install cosign "$COSIGN_PKG" "$COSIGN_MOD" "$COSIGN_VERSION"

# The conformance suite is a program (package main) configured by OCI_* environment variables;
# it is built from test/peers/conformance so its version is pinned by our go.mod and go.sum.
if [[ "$(built_version "$PEERS_DIR/conformance" "$CONFORMANCE_MOD")" != "$CONFORMANCE_VERSION" ]]; then
  say "building conformance ($CONFORMANCE_MOD@$CONFORMANCE_VERSION)"
  : >"$LOG_DIR/conformance-build.log"
  (cd test/peers/conformance &&
    run conformance "$LOG_DIR/conformance-build.log" \
      env CGO_ENABLED=0 go build -trimpath -o "$BUILD_DIR/conformance.$$" "$CONFORMANCE_MOD")
  mv -f "$BUILD_DIR/conformance.$$" "$PEERS_DIR/conformance"
fi

# notation is built from test/peers/notation (v1.3.2 pinned by its go.mod and go.sum): `go install …@version`
# reads the module's version list for deprecation notices, which the module proxy refuses for notation.
if [[ "$(built_version "$PEERS_DIR/notation" "$NOTATION_MOD")" != "$NOTATION_VERSION" ]]; then
  say "building notation ($NOTATION_MOD@$NOTATION_VERSION)"
  : >"$LOG_DIR/notation-build.log"
  (cd test/peers/notation &&
    run notation "$LOG_DIR/notation-build.log" \
      env CGO_ENABLED=0 go build -trimpath -o "$BUILD_DIR/notation.$$" "$NOTATION_PKG")
  mv -f "$BUILD_DIR/notation.$$" "$PEERS_DIR/notation"
fi

# ---------------------------------------------------------------------------------------------
# Base image regctl-test/node:20: the machine's node, its shared libraries, CA certificates,
# users root and node (1000), /tmp, and busybox as /bin/sh with its applets.
NODE_VERSION="$(/usr/bin/node --version)"
if [[ "$(image_label "$BASE_IMAGE")" != "$NODE_VERSION" ]]; then
  say "making $BASE_IMAGE from /usr/bin/node $NODE_VERSION"
  log="$LOG_DIR/base-image.log"
  : >"$log"
  root="$BUILD_DIR/node-rootfs"
  rm -rf "$root"
  mkdir -p "$root"/usr/{bin,lib,lib64,local/bin,sbin} "$root"/{etc/ssl,tmp,root,home/node,var/tmp}
  # merged-/usr layout, as on Debian 12, so the paths ldd prints (/lib/..., /lib64/...) stay valid
  ln -s usr/bin "$root/bin"
  ln -s usr/sbin "$root/sbin"
  ln -s usr/lib "$root/lib"
  ln -s usr/lib64 "$root/lib64"
  chmod 1777 "$root/tmp" "$root/var/tmp"
  cp /usr/bin/node "$root/usr/bin/node"
  libs="$(ldd /usr/bin/node | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')"
  [[ -n "$libs" ]] || fail "base-image" "ldd /usr/bin/node"
  for lib in $libs; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib" || fail "base-image" "cp -L $lib"
  done
  cp -rL /etc/ssl/certs "$root/etc/ssl/certs" || fail "base-image" "cp -rL /etc/ssl/certs"
  cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
node:x:1000:1000:node:/home/node:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
  cat >"$root/etc/group" <<'EOF'
root:x:0:
node:x:1000:
nogroup:x:65534:
EOF
  printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
  chmod 700 "$root/root"
  if [[ -x /bin/busybox ]]; then
    cp /bin/busybox "$root/usr/bin/busybox"
    for applet in $(/bin/busybox --list); do
      [[ -e "$root/usr/bin/$applet" ]] || ln -s busybox "$root/usr/bin/$applet"
    done
  fi
  chown -R 1000:1000 "$root/home/node"
  run base-image "$log" bash -c "tar -C '$root' --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    --change 'LABEL $VERSION_LABEL=$NODE_VERSION' \
    --change 'CMD [\"node\"]' \
    - '$BASE_IMAGE'"
  rm -rf "$root"
  out="$(docker run --rm "$BASE_IMAGE" node -e 'console.log(1)' 2>>"$log")" || true
  [[ "$out" == "1" ]] || fail "base-image" "docker run --rm $BASE_IMAGE node -e 'console.log(1)' printed '$out'" "$log"
fi

# ---------------------------------------------------------------------------------------------
# Trial-service images (the PostgreSQL and S3 services a swarm stack runs with `trial:`), made from this machine's
# binaries: regctl-test/postgres:15 from Debian's PostgreSQL 15 and regctl-test/versitygw:v1.8.0 from the
# versitygw peer, each with busybox as /bin/sh and an entry point keeping the official image's contract
# (test/setup/images/). The label holds the binary's version and the entry point's digest: a change rebuilds.

# copy_with_libs ROOT FILE...: FILE and the shared libraries ldd lists for it, at the same paths under ROOT.
copy_with_libs() {
  local root="$1" f lib
  shift
  for f in "$@"; do
    mkdir -p "$root$(dirname "$f")"
    cp -L "$f" "$root$f"
    for lib in $(ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
      [[ -e "$root$lib" ]] && continue
      mkdir -p "$root$(dirname "$lib")"
      cp -L "$lib" "$root$lib"
    done
  done
}

# busybox_root ROOT: a merged-/usr tree with busybox and its applets, /tmp, and nsswitch.
busybox_root() {
  local root="$1" applet
  rm -rf "$root"
  mkdir -p "$root"/usr/{bin,lib,lib64,local/bin,sbin} "$root"/{etc,tmp,run,var/tmp}
  ln -s usr/bin "$root/bin"
  ln -s usr/sbin "$root/sbin"
  ln -s usr/lib "$root/lib"
  ln -s usr/lib64 "$root/lib64"
  ln -s ../run "$root/var/run"
  chmod 1777 "$root/tmp" "$root/var/tmp"
  cp /bin/busybox "$root/usr/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [[ -e "$root/usr/bin/$applet" ]] || ln -s busybox "$root/usr/bin/$applet"
  done
  printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
}

digest_of() { sha256sum "$1" | cut -c1-12; }

PG_IMAGE="regctl-test/postgres:15"
PG_HOME=/usr/lib/postgresql/15
PG_ENTRYPOINT="$REPO_ROOT/test/setup/images/postgres-entrypoint.sh"
PG_LABEL="$("$PG_HOME/bin/postgres" --version | awk '{ print $3 }')-$(digest_of "$PG_ENTRYPOINT")"
if [[ "$(image_label "$PG_IMAGE")" != "$PG_LABEL" ]]; then
  say "making $PG_IMAGE from $PG_HOME"
  log="$LOG_DIR/postgres-image.log"
  : >"$log"
  root="$BUILD_DIR/postgres-rootfs"
  busybox_root "$root"
  copy_with_libs "$root" "$PG_HOME"/bin/* "$PG_HOME"/lib/*.so >>"$log" 2>&1 || fail "postgres-image" "copy $PG_HOME" "$log"
  mkdir -p "$root/usr/share/postgresql" "$root/usr/share/zoneinfo" "$root/var/lib/postgresql/data"
  cp -rL /usr/share/postgresql/15 "$root/usr/share/postgresql/15"
  cp -rL /usr/share/zoneinfo/. "$root/usr/share/zoneinfo/"
  cp "$PG_ENTRYPOINT" "$root/usr/local/bin/docker-entrypoint.sh"
  chmod 755 "$root/usr/local/bin/docker-entrypoint.sh"
  printf 'root:x:0:0:root:/root:/bin/sh\npostgres:x:999:999:postgres:/var/lib/postgresql:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\npostgres:x:999:\n' >"$root/etc/group"
  chown -R 999:999 "$root/var/lib/postgresql"
  run postgres-image "$log" bash -c "tar -C '$root' --numeric-owner -c . | docker import \
    --change 'ENV PATH=$PG_HOME/bin:/usr/local/bin:/usr/bin:/bin' \
    --change 'ENV PGDATA=/var/lib/postgresql/data' \
    --change 'ENTRYPOINT [\"/usr/local/bin/docker-entrypoint.sh\"]' \
    --change 'EXPOSE 5432' \
    --change 'LABEL $VERSION_LABEL=$PG_LABEL' \
    - '$PG_IMAGE'"
  rm -rf "$root"
  out="$(docker run --rm --entrypoint postgres "$PG_IMAGE" --version 2>>"$log")" || true
  [[ "$out" == "postgres (PostgreSQL) 15"* ]] || fail "postgres-image" "docker run --rm $PG_IMAGE postgres --version printed '$out'" "$log"
fi

VGW_IMAGE="regctl-test/versitygw:$VERSITYGW_VERSION"
VGW_ENTRYPOINT="$REPO_ROOT/test/setup/images/versitygw-entrypoint.sh"
VGW_LABEL="$VERSITYGW_VERSION-$(digest_of "$VGW_ENTRYPOINT")"
if [[ "$(image_label "$VGW_IMAGE")" != "$VGW_LABEL" ]]; then
  say "making $VGW_IMAGE from $PEERS_DIR/versitygw"
  log="$LOG_DIR/versitygw-image.log"
  : >"$log"
  root="$BUILD_DIR/versitygw-rootfs"
  busybox_root "$root"
  cp "$PEERS_DIR/versitygw" "$root/usr/local/bin/versitygw"
  cp "$VGW_ENTRYPOINT" "$root/usr/local/bin/docker-entrypoint.sh"
  chmod 755 "$root/usr/local/bin/docker-entrypoint.sh"
  mkdir -p "$root/etc/ssl/certs"
  cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\n' >"$root/etc/group"
  run versitygw-image "$log" bash -c "tar -C '$root' --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    --change 'ENTRYPOINT [\"/usr/local/bin/docker-entrypoint.sh\"]' \
    --change 'LABEL $VERSION_LABEL=$VGW_LABEL' \
    - '$VGW_IMAGE'"
  rm -rf "$root"
  out="$(docker run --rm "$VGW_IMAGE" --version 2>>"$log" | head -n 1)" || true
  [[ "$out" == "Version"* ]] || fail "versitygw-image" "docker run --rm $VGW_IMAGE --version printed '$out'" "$log"
fi

# ---------------------------------------------------------------------------------------------
# Traefik image, once its binary is built.
if [[ -n "$traefik_pid" ]]; then
  say "waiting for the Traefik build"
  if ! wait "$traefik_pid"; then
    traefik_pid=""
    fail "traefik" "(cd test/peers/traefik && go build $TRAEFIK_MOD/cmd/traefik)" "$LOG_DIR/traefik-build.log"
  fi
  traefik_pid=""
  say "Traefik built in $((SECONDS - traefik_started)) s"
  need_traefik_image=1
fi
if ((need_traefik_image)); then
  say "making $TRAEFIK_IMAGE"
  log="$LOG_DIR/traefik-image.log"
  : >"$log"
  root="$BUILD_DIR/traefik-rootfs"
  rm -rf "$root"
  mkdir -p "$root"/{etc/ssl/certs,tmp}
  chmod 1777 "$root/tmp"
  cp "$PEERS_DIR/traefik" "$root/traefik"
  cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/:/traefik
nobody:x:65534:65534:nobody:/nonexistent:/traefik
EOF
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  run traefik "$log" bash -c "tar -C '$root' --numeric-owner -c . | docker import \
    --change 'ENTRYPOINT [\"/traefik\"]' \
    --change 'EXPOSE 80 443' \
    --change 'LABEL $VERSION_LABEL=$TRAEFIK_VERSION' \
    - '$TRAEFIK_IMAGE'"
  run traefik "$log" docker tag "$TRAEFIK_IMAGE" "regctl-test/traefik:$TRAEFIK_VERSION"
  rm -rf "$root"
  out="$(docker run --rm "$TRAEFIK_IMAGE" version 2>>"$log" | awk '$1 == "Version:" { print $2 }')" || true
  [[ "$out" == "$TRAEFIK_VERSION" ]] || fail "traefik" "docker run --rm $TRAEFIK_IMAGE version printed '$out'" "$log"
fi

# ---------------------------------------------------------------------------------------------
# Summary
first_line() { "$@" 2>&1 | head -n 1 || true; }
version_of() {
  case "$1" in
  crane) built_version "$PEERS_DIR/crane" "$CRANE_MOD" ;;
  oras) built_version "$PEERS_DIR/oras" "$ORAS_MOD" ;;
  regclient) built_version "$PEERS_DIR/regclient" "$REGCLIENT_MOD" ;;
  registry-v3) built_version "$PEERS_DIR/registry-v3" "$REGISTRY_V3_MOD" ;;
  actionlint) built_version "$PEERS_DIR/actionlint" "$ACTIONLINT_MOD" ;;
  versitygw) built_version "$PEERS_DIR/versitygw" "$VERSITYGW_MOD" ;;
  cosign) built_version "$PEERS_DIR/cosign" "$COSIGN_MOD" ;;
  notation) built_version "$PEERS_DIR/notation" "$NOTATION_MOD" ;;
  groovy) dpkg-query -W -f='${Version}' groovy ;;
  conformance) built_version "$PEERS_DIR/conformance" "$CONFORMANCE_MOD" ;;
  traefik) image_label "$TRAEFIK_IMAGE" ;;
  node-image) image_label "$BASE_IMAGE" ;;
  postgres-image) image_label "$PG_IMAGE" ;;
  versitygw-image) image_label "$VGW_IMAGE" ;;
  dockerd) docker version -f '{{.Server.Version}}' 2>/dev/null ;;
  docker-compose) dpkg-query -W -f='${Version}' docker-compose ;;
  skopeo) first_line skopeo --version ;;
  podman) first_line podman --version ;;
  docker-registry) dpkg-query -W -f='${Version}' docker-registry ;;
  pebble) dpkg-query -W -f='${Version}' pebble ;;
  chromium) /usr/bin/chromium --version 2>/dev/null | head -n 1 ;;
  go) printf '%s' "$GO_VERSION" ;;
  node) printf '%s' "$NODE_VERSION" ;;
  esac
}
printf '\n%-16s %s\n' "peer" "version"
for peer in crane oras regclient registry-v3 actionlint versitygw cosign notation conformance groovy traefik node-image \
  postgres-image versitygw-image dockerd docker-compose \
  skopeo podman docker-registry pebble chromium go node; do
  printf '%-16s %s\n' "$peer" "$(version_of "$peer")"
done
say "ready in $((SECONDS - START_SECONDS)) s (peers in $PEERS_DIR)"
