#!/usr/bin/env bash
# Images through the API and the CLI: a docker-save archive of busybox built
# here, loaded (twice), listed by shoal and by the docker CLI, a corrupt
# archive refused without a trace, removal, and a clean shutdown.
. "$(dirname "$0")/lib.sh"

if [ ! -x /bin/busybox ]; then
	fail "/bin/busybox is installed (scripts/deps.sh test installs busybox-static)"
	exit 1
fi

# mkimage DIR OUT [EXTRA]: a reproducible docker-save archive of one image,
# busybox:latest, whose one layer holds /bin/busybox and /bin/sh (and the
# file EXTRA as /extra).
mkimage() {
	local dir=$1 out=$2 extra=${3:-}
	local tarflags=(--sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=gnu)
	mkdir -p "$dir/rootfs/bin" "$dir/archive" || return 1
	cp /bin/busybox "$dir/rootfs/bin/busybox" && ln -sf busybox "$dir/rootfs/bin/sh" || return 1
	[ -z "$extra" ] || cp "$extra" "$dir/rootfs/extra" || return 1
	tar -C "$dir/rootfs" "${tarflags[@]}" -cf "$dir/layer.tar" . || return 1
	python3 - "$dir" <<'PY' || return 1
import hashlib, json, os, shutil, sys
d = sys.argv[1]
layer = open(os.path.join(d, "layer.tar"), "rb").read()
diff_id = hashlib.sha256(layer).hexdigest()
os.makedirs(os.path.join(d, "archive", diff_id))
shutil.copy(os.path.join(d, "layer.tar"), os.path.join(d, "archive", diff_id, "layer.tar"))
config = json.dumps({
    "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
    "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"], "Labels": {"org.example.test": "images"}},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff_id]},
    "history": [{"created": "2024-01-02T03:04:05Z", "created_by": "t_images.sh"}],
}, sort_keys=True, separators=(",", ":")).encode()
cfg_hex = hashlib.sha256(config).hexdigest()
open(os.path.join(d, "archive", cfg_hex + ".json"), "wb").write(config)
manifest = [{"Config": cfg_hex + ".json", "RepoTags": ["busybox:latest"],
             "Layers": [diff_id + "/layer.tar"]}]
open(os.path.join(d, "archive", "manifest.json"), "w").write(json.dumps(manifest))
open(os.path.join(d, "image-id"), "w").write(cfg_hex)
PY
	tar -C "$dir/archive" "${tarflags[@]}" -cf "$out" . || return 1
}

mkimage "$T/img" "$T/busybox.tar" && ok "a busybox image archive is built" ||
	{ fail "a busybox image archive is built"; exit 1; }
id=$(cat "$T/img/image-id")
mkimage "$T/img2" "$T/busybox2.tar" && cmp -s "$T/busybox.tar" "$T/busybox2.tar" &&
	ok "the archive is reproducible" || fail "the archive is reproducible"

daemon_start a || { fail "daemon starts"; exit 1; }

out=$(sh_ a image ls 2>&1)
[ "$out" = "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE" ] && ok "image ls on a new daemon: the header only" ||
	fail "image ls on a new daemon" "$out"

out=$(sh_ a image load -i "$T/busybox.tar" 2>&1)
rc=$?
[ $rc -eq 0 ] && [ "$out" = "Loaded image: busybox:latest" ] && ok "image load -i prints Loaded image: busybox:latest" ||
	fail "image load -i" "rc=$rc" "$out"
[ -d "$T/a/state/images/layers" ] && [ -n "$(ls "$T/a/state/images/layers")" ] &&
	ok "the layer is unpacked under STATE_DIR/images" || fail "the layer is unpacked under STATE_DIR/images"

out=$(sh_ a image ls 2>&1)
row=$(sed -n 2p <<<"$out")
if [ "$(wc -l <<<"$out")" -eq 2 ] && [[ "$row" =~ ^busybox\ +latest\ +${id:0:12}\ +[0-9]+\ years\ ago\ +[0-9.]+MB$ ]]; then
	ok "image ls: busybox, latest, the 12-hex id, created years ago, size in MB"
else
	fail "image ls shows the image" "$out"
fi
out=$(sh_ a image ls -q 2>&1)
[ "$out" = "${id:0:12}" ] && ok "image ls -q prints the short id" || fail "image ls -q" "$out"
out=$(sh_ a image ls --format json 2>&1)
python3 -c '
import json, sys
j = json.loads(sys.argv[1])
assert j["Repository"] == "busybox" and j["Tag"] == "latest", j
assert j["ID"] == sys.argv[2][:12], j
assert j["CreatedAt"] == "2024-01-02 03:04:05 +0000 UTC", j
assert j["Size"].endswith("MB"), j
' "$out" "$id" 2>&1 && ok "image ls --format json" || fail "image ls --format json" "$out"

out=$(api a GET /images/json)
python3 -c '
import json, sys
body, status = sys.argv[1].rsplit("\n", 1)
assert status.strip() == "HTTP 200", status
l = json.loads(body)
assert len(l) == 1, l
i = l[0]
assert i["Id"] == "sha256:" + sys.argv[2], i
assert i["RepoTags"] == ["busybox:latest"] and i["RepoDigests"] == [], i
assert i["Created"] == 1704164645 and i["ParentId"] == "", i
assert i["Containers"] == -1 and i["SharedSize"] == -1, i
assert i["Size"] > 1000000 and i["VirtualSize"] == i["Size"], i
assert i["Labels"] == {"org.example.test": "images"}, i
' "$out" "$id" 2>&1 && ok "GET /images/json: Docker's ImageSummary" || fail "GET /images/json" "$out"

if command -v docker >/dev/null; then
	out=$(DOCKER_HOST="unix://$(sock a)" DOCKER_CONFIG="$T/docker-config" docker image ls 2>&1)
	rc=$?
	[ $rc -eq 0 ] && grep -qE "^busybox +latest +${id:0:12} " <<<"$out" && ok "docker image ls shows it" ||
		fail "docker image ls shows it" "rc=$rc" "$out"
	out=$(DOCKER_HOST="unix://$(sock a)" DOCKER_CONFIG="$T/docker-config" docker load -i "$T/busybox.tar" 2>&1)
	rc=$?
	[ $rc -eq 0 ] && [ "$out" = "Loaded image: busybox:latest" ] && ok "docker load of the same archive" ||
		fail "docker load of the same archive" "rc=$rc" "$out"
else
	fail "the docker CLI is installed (scripts/deps.sh test installs docker.io when missing)"
fi

before=$(sh_ a image ls -q --no-trunc)
out=$(sh_ a image load <"$T/busybox.tar" 2>&1)
rc=$?
[ $rc -eq 0 ] && [ "$out" = "Loaded image: busybox:latest" ] && [ "$(sh_ a image ls -q --no-trunc)" = "$before" ] &&
	ok "loading the same archive again from stdin changes nothing" || fail "loading again" "rc=$rc" "$out"

out=$(api a POST /images/load -H 'Content-Type: application/x-tar' --data-binary @"$T/busybox.tar")
contains "$out" '{"stream":"Loaded image: busybox:latest\n"}' && contains "$out" "HTTP 200" &&
	ok "POST /images/load streams Docker's JSON lines" || fail "POST /images/load" "$out"

# Corrupt: one byte of the layer flipped, so its digest no longer matches.
python3 - "$T/busybox.tar" "$T/corrupt.tar" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
i = b.find(b"\x7fELF")
b[i + 200] ^= 0xff
open(sys.argv[2], "wb").write(b)
PY
out=$(sh_ a image rm busybox 2>&1) # start from an empty store: nothing may appear
[ -z "$(sh_ a image ls -q)" ] || fail "image rm before the corrupt load" "$out"
out=$(sh_ a image load -i "$T/corrupt.tar" 2>&1)
rc=$?
if [ $rc -eq 1 ] && contains "$out" "Error response from daemon: " && contains "$out" "but the config says its diff_id is sha256:"; then
	ok "a corrupt archive is refused with the loader's reason"
else
	fail "a corrupt archive is refused" "rc=$rc" "$out"
fi
out=$(api a POST /images/load -H 'Content-Type: application/x-tar' --data-binary @"$T/corrupt.tar")
contains "$out" "HTTP 400" && contains "$out" '"message"' && ok "POST /images/load of a corrupt archive answers 400" ||
	fail "corrupt archive status" "$out"
out=$(printf 'not a tar archive at all' | sh_ a image load 2>&1)
rc=$?
[ $rc -eq 1 ] && contains "$out" "Error response from daemon: " && ok "garbage on stdin is refused" || fail "garbage refused" "rc=$rc" "$out"
[ -z "$(sh_ a image ls -q)" ] && [ -z "$(ls -A "$T/a/state/images/layers" "$T/a/state/images/blobs/sha256" 2>/dev/null | grep -v ':$' | grep .)" ] &&
	ok "refused archives leave no image, blob or layer" ||
	fail "refused archives leave nothing" "$(sh_ a image ls 2>&1)" "$(ls -R "$T/a/state/images")"

out=$(sh_ a image load -i "$T/busybox.tar" 2>&1) && [ "$(sh_ a image ls -q --no-trunc)" = "$before" ] &&
	ok "the good archive loads again after the refusals" || fail "reload after refusals" "$out"
out=$(sh_ a image load -i "$T/no-such.tar" 2>&1)
rc=$?
[ $rc -eq 1 ] && [ "$out" = "open $T/no-such.tar: no such file or directory" ] && ok "image load -i of a missing file fails" ||
	fail "missing file" "rc=$rc" "$out"

out=$(sh_ a image rm nosuch:tag 2>&1)
rc=$?
[ $rc -eq 1 ] && [ "$out" = "Error response from daemon: No such image: nosuch:tag" ] &&
	ok "image rm of an unknown image: No such image" || fail "rm unknown" "rc=$rc" "$out"
out=$(api a DELETE /images/nosuch)
contains "$out" "HTTP 404" && contains "$out" '{"message":"No such image: nosuch"}' && ok "DELETE of an unknown image answers 404" ||
	fail "DELETE unknown" "$out"

out=$(sh_ a image rm busybox 2>&1)
rc=$?
[ $rc -eq 0 ] && [ "$out" = "Untagged: busybox:latest
Deleted: sha256:$id" ] && ok "image rm prints Untagged: and Deleted: lines" || fail "image rm" "rc=$rc" "$out"
out=$(sh_ a image ls 2>&1)
[ "$out" = "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE" ] && [ -z "$(ls -A "$T/a/state/images/layers")" ] &&
	ok "image ls is empty and the layer is gone" || fail "empty after rm" "$out" "$(ls -R "$T/a/state/images")"

# Names with a slash reach DELETE /images/{name} whole.
sed 's/"busybox:latest"/"example.com:5000\/team\/box:v1"/' "$T/img/archive/manifest.json" >"$T/m.json"
mkdir -p "$T/img3" && cp -r "$T/img/archive" "$T/img3/" && cp "$T/m.json" "$T/img3/archive/manifest.json" &&
	tar -C "$T/img3/archive" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$T/box.tar" .
out=$(sh_ a image load -i "$T/box.tar" 2>&1)
[ "$out" = "Loaded image: example.com:5000/team/box:v1" ] && ok "a name with a registry and a path loads" || fail "registry name load" "$out"
out=$(sh_ a image ls 2>&1)
grep -qE "^example.com:5000/team/box +v1 +${id:0:12} " <<<"$out" && ok "image ls splits the tag after the registry port" ||
	fail "registry name ls" "$out"
out=$(sh_ a image rm example.com:5000/team/box:v1 2>&1)
contains "$out" "Untagged: example.com:5000/team/box:v1" && ok "image rm of a name with slashes" || fail "rm name with slashes" "$out"

# Larger than the HTTP core's default 4 MiB body limit: the daemon takes
# image archives up to 512 MiB.
head -c $((6 * 1024 * 1024)) /dev/urandom >"$T/random.bin"
mkimage "$T/big" "$T/big.tar" "$T/random.bin" || fail "build a 6 MiB archive"
out=$(sh_ a image load -i "$T/big.tar" 2>&1)
rc=$?
[ $rc -eq 0 ] && [ "$out" = "Loaded image: busybox:latest" ] && sh_ a image ls | grep -qE "^busybox +latest .* 8\.[0-9]+MB$" &&
	ok "an archive over 4 MiB loads" || fail "an archive over 4 MiB loads" "rc=$rc" "$out" "$(sh_ a image ls 2>&1)"
out=$(python3 - "$(sock a)" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"POST /v1.41/images/load HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\n"
          b"Content-Length: 600000000\r\n\r\n")
print(s.recv(4096).decode(errors="replace"))
PY
)
contains "$out" "HTTP/1.1 413" && contains "$out" "request body is larger than 536870912 bytes" &&
	ok "an archive declared over 512 MiB is refused with 413 before it is sent" || fail "over 512 MiB refused" "$out"
[ -z "$(find "$T/a/state" -maxdepth 1 -name '.http-body-*')" ] && ok "no request-body temp file is left in the state dir" ||
	fail "no request-body temp file left" "$(ls -A "$T/a/state")"
out=$(sh_ a image rm "$(sh_ a image ls -q)" 2>&1)
rc=$?
[ $rc -eq 0 ] && contains "$out" "Untagged: busybox:latest" && contains "$out" "Deleted: sha256:" && [ -z "$(sh_ a image ls -q)" ] &&
	ok "image rm by short id" || fail "image rm by short id" "rc=$rc" "$out"

daemon_stop a
rc=$?
[ $rc -eq 0 ] && ok "the daemon exits 0 on SIGTERM" || fail "the daemon exits 0 on SIGTERM" "rc=$rc" "$(tail -n 30 "$(daemon_log a)")"
grep -q "ERROR: AddressSanitizer\|LeakSanitizer\|runtime error:" "$(daemon_log a)" &&
	fail "no sanitizer report" "$(grep -A5 "Sanitizer\|runtime error" "$(daemon_log a)" | head -n 30)" || ok "no sanitizer report"

done_testing
