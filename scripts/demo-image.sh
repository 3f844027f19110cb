#!/usr/bin/env bash
# Builds shoal-demo:latest, a small image for tests and demos, as a
# reproducible docker-save archive (load it with `shoal image load -i OUT` or
# POST /images/load).
# Usage: scripts/demo-image.sh OUT.tar   (BUSYBOX=/path/to/static/busybox to choose)
#
# One layer: a static busybox as /bin/busybox with a symlink per applet
# (`busybox --list`: sh, nc, httpd, sleep, ...), /etc/passwd and /etc/group
# with root and an "app" user (uid/gid 1000), /tmp (1777), /home/app, and a
# web root /www/index.html. Config: Cmd ["sh"], Env PATH=/bin. Every file
# is owned by 0:0 and dated 1970-01-01, entries sorted: the same busybox
# gives the same bytes, hence the same image id, on every run.
set -euo pipefail

out=${1:?usage: scripts/demo-image.sh OUT.tar}
bb=${BUSYBOX:-$(command -v busybox || true)}
if [ -z "$bb" ] || [ ! -x "$bb" ]; then
	echo "demo-image: no busybox found: install busybox-static (scripts/deps.sh run)" >&2
	exit 1
fi
if command -v readelf >/dev/null 2>&1 && LC_ALL=C readelf -l "$bb" 2>/dev/null | grep -q INTERP; then
	echo "demo-image: $bb is dynamically linked; the image needs a static one (busybox-static)" >&2
	exit 1
fi
case "$(uname -m)" in
x86_64) arch=amd64 ;;
aarch64) arch=arm64 ;;
armv7l) arch=arm ;;
*) arch=$(uname -m) ;;
esac

umask 022
work=$(mktemp -d "${TMPDIR:-/tmp}/shoal-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
archive=$work/archive
tarflags=(--sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=gnu)

mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/home/app" "$root/www" \
	"$root/proc" "$root/sys" "$root/dev" "$archive"
cp "$bb" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
for applet in $("$bb" --list); do
	case "$applet" in
	busybox | */* | "") continue ;;
	esac
	ln -s busybox "$root/bin/$applet"
done
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
app:x:1000:
nogroup:x:65534:
EOF
: >"$root/etc/hosts"
: >"$root/etc/hostname"
: >"$root/etc/resolv.conf"
cat >"$root/www/index.html" <<'EOF'
<!DOCTYPE html>
<html><head><title>shoal demo</title></head>
<body><h1>Hello from shoal-demo</h1></body></html>
EOF
chmod 0644 "$root"/etc/* "$root/www/index.html"
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
tar -C "$root" "${tarflags[@]}" -cf "$work/layer.tar" .

diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
mkdir "$archive/$diff_id"
mv "$work/layer.tar" "$archive/$diff_id/layer.tar"
printf '1.0' >"$archive/$diff_id/VERSION"
printf '%s' "{\"architecture\":\"$arch\",\"config\":{\"Cmd\":[\"sh\"],\"Env\":[\"PATH=/bin\"],\
\"Labels\":{\"org.opencontainers.image.title\":\"shoal-demo\"},\"WorkingDir\":\"/\"},\
\"created\":\"1970-01-01T00:00:00Z\",\"history\":[{\"created\":\"1970-01-01T00:00:00Z\",\
\"created_by\":\"scripts/demo-image.sh\"}],\"os\":\"linux\",\
\"rootfs\":{\"diff_ids\":[\"sha256:$diff_id\"],\"type\":\"layers\"}}" >"$work/config.json"
cfg=$(sha256sum "$work/config.json" | cut -d' ' -f1)
mv "$work/config.json" "$archive/$cfg.json"
printf '%s' "[{\"Config\":\"$cfg.json\",\"RepoTags\":[\"shoal-demo:latest\"],\
\"Layers\":[\"$diff_id/layer.tar\"]}]" >"$archive/manifest.json"
printf '%s' "{\"shoal-demo\":{\"latest\":\"$diff_id\"}}" >"$archive/repositories"
find "$archive" -type f -exec chmod 0644 {} + -o -type d -exec chmod 0755 {} +

tar -C "$archive" "${tarflags[@]}" -cf "$out.tmp" .
mv -f "$out.tmp" "$out"
