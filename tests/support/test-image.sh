#!/usr/bin/env bash
# Builds the image tests and benchmarks run: FROM scratch with Debian's static busybox and its
# applet links in /bin (no registry is reachable, DESIGN §12). Skips the build when TAG exists.
#
# Usage: tests/support/test-image.sh DOCKER_HOST [TAG]     (TAG defaults to odd-test/busybox:1)
#   e.g. tests/support/test-image.sh unix:///tmp/odd-d.Ab12Cd/docker.sock
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: test-image.sh DOCKER_HOST [TAG]" >&2
  exit 2
fi
host="$1"
tag="${2:-odd-test/busybox:1}"

if [ -x /usr/bin/docker ]; then docker=/usr/bin/docker; else docker="$(command -v docker)"; fi

if "$docker" -H "$host" image inspect "$tag" >/dev/null 2>&1; then
  exit 0
fi

busybox=/bin/busybox
# ldd succeeds only on a dynamic executable, which would not run in a scratch image.
if [ ! -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
  echo "test-image.sh: need a static $busybox (install busybox-static)" >&2
  exit 1
fi

ctx="$(mktemp -d /tmp/odd-img.XXXXXX)"
trap 'rm -rf "$ctx"' EXIT
cp "$busybox" "$ctx/busybox"
cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["/bin/sh"]
EOF

# The private dockerd has no bridge, so RUN needs network none; the classic builder keeps the
# build independent of BuildKit's session support in the CLI.
DOCKER_BUILDKIT=0 "$docker" -H "$host" build -q --network none --force-rm -t "$tag" "$ctx" \
  >/dev/null
