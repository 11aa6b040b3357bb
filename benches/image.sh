#!/usr/bin/env bash
# benches/image.sh: the release image's size and its start to /readyz.
#
#   bash .ci/image && bash benches/image.sh [ROUNDS]      (default 10 rounds)
#
# Size: podman's uncompressed size of localhost/augur:<version>, and what takes it (from the
# image's files). Start: a local Prometheus (Debian's, empty TSDB) on a loopback port; each
# round runs the image as the manifests do (uid 65532, read-only root, /tmp tmpfs, the
# rules of manifests/base/config.yaml and an `augur certs` certificate mounted read-only)
# and times `podman run -d` until /readyz answers 200 (ready = the first relist reached
# Prometheus), polling every 10 ms; then the same for the binary started directly, to show
# what the container adds. Prints min, median and max of each. Needs root (podman).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-10}
version=$(cargo pkgid --quiet)
version=${version##*[#@]}
image=localhost/augur:$version
binary=target/release/augur
podman image exists "$image" || { echo "no image $image: run bash .ci/image first" >&2; exit 1; }
[[ -x $binary ]] || { echo "no $binary: run bash .ci/image first" >&2; exit 1; }

work=$(mktemp -d)
prometheus_pid=
name=augur-bench-$$
cleanup() {
    podman --runtime runc rm --force --time=0 "$name" >/dev/null 2>&1 || true
    [[ -n $prometheus_pid ]] && kill "$prometheus_pid" 2>/dev/null
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== size of $image"
size=$(podman image inspect --format '{{.Size}}' "$image")
awk -v s="$size" 'BEGIN { printf "uncompressed: %d bytes (%.1f MB, %.1f MiB)\n", s, s / 1e6, s / 1048576 }'
podman --runtime runc create --name "$name" "$image" >/dev/null
podman export "$name" | tar --list --verbose | awk '
    $1 !~ /^d/ { path = $6; size = $3
        if (path ~ /libonnxruntime/) part = "ONNX Runtime"
        else if (path ~ /^(\.\/)?adapter$/) part = "augur (stripped)"
        else if (path ~ /\.so/) part = "C and C++ runtime libraries"
        else part = "CA bundle, passwd, group, nsswitch.conf"
        sum[part] += size }
    END { for (p in sum) printf "  %-42s %7.1f MB\n", p, sum[p] / 1e6 }' | sort -k1,1
podman --runtime runc rm "$name" >/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
prom_port=$(free_port)
printf 'global:\n  scrape_interval: 1h\n' >"$work/prometheus.yml"
/usr/bin/prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
    --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
prometheus_pid=$!
until curl -fs "http://127.0.0.1:$prom_port/-/ready" >/dev/null 2>&1; do sleep 0.1; done

mkdir -p "$work/config"
cp manifests/base/config.yaml "$work/config/config.yaml"
"$binary" certs --out "$work/tls" >/dev/null
chmod -R go+rX "$work"

now_ms() { date +%s%3N; }
# Runs "$@" (which must start augur on $port), returns the milliseconds to /readyz 200.
time_to_ready() {
    local start end
    start=$(now_ms)
    "$@"
    until curl -fsk --max-time 1 "https://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
        (($(now_ms) - start < 30000)) || { echo "not ready in 30 s" >&2; return 1; }
        sleep 0.01
    done
    end=$(now_ms)
    echo $((end - start))
}
stats() { sort -n | awk '{ v[NR] = $1 } END { printf "min %d ms, median %d ms, max %d ms (%d rounds)\n", v[1], v[int((NR + 1) / 2)], v[NR], NR }'; }
args() {
    echo serve --config="$1/config/config.yaml" --tls-cert-file="$1/tls/tls.crt" \
        --tls-private-key-file="$1/tls/tls.key" --prometheus-url="http://127.0.0.1:$prom_port/" \
        --secure-port="$port" --bind-address=127.0.0.1
}

echo "== podman run -d $image … until /readyz is 200"
container() {
    # shellcheck disable=SC2046
    podman --runtime runc run -d --name "$name" --network host --user 65532:65532 \
        --read-only --read-only-tmpfs=false --tmpfs /tmp:rw,mode=1777 --cap-drop all \
        --security-opt no-new-privileges -v "$work/config:/etc/augur/config:ro" \
        -v "$work/tls:/etc/augur/tls:ro" "$image" $(args /etc/augur) >/dev/null
}
for _ in $(seq "$rounds"); do
    port=$(free_port)
    time_to_ready container
    podman --runtime runc rm --force --time=0 "$name" >/dev/null
done | stats

echo "== $binary started directly, until /readyz is 200"
direct() {
    # shellcheck disable=SC2046
    "$binary" $(args "$work") >"$work/augur.log" 2>&1 &
    augur_pid=$!
}
for _ in $(seq "$rounds"); do
    port=$(free_port)
    time_to_ready direct
    kill "$augur_pid"
    wait "$augur_pid" 2>/dev/null || true
done | stats
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
