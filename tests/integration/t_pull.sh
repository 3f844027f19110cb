#!/usr/bin/env bash
# image pull from Debian's docker-registry on 127.0.0.1: a two-layer OCI image
# with whiteouts built here and pushed with skopeo (as OCI, as Docker v2 and as
# a two-platform index), pulled through shoal's CLI and the docker CLI; up to
# date on a second pull; plain HTTP only with --insecure-registry; unknown
# tags, unknown media types and a corrupt blob refused without a trace; the
# bearer-token flow against a token server issuing RS256 JWTs; HTTPS with a
# CA from STATE/certs.d.
. "$(dirname "$0")/lib.sh"

for tool in docker-registry skopeo openssl python3 curl /bin/busybox; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		fail "$tool is installed (scripts/deps.sh test installs it)"
		exit 1
	fi
done

# Servers started here; registry() runs in $(...), so it leaves its pid in a file.
_servers=()
_kill_servers() {
	local pid f
	for pid in "${_servers[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for f in "$T"/*/server.pid; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
}
_cleanup_hooks+=(_kill_servers)

# registry NAME [CONFIG LINES...]: serve the shared storage $T/reg on a free
# port (printed), with extra config lines (auth, tls) appended.
registry() {
	local name=$1 port
	shift
	port=$(free_port) || return 1
	mkdir -p "$T/$name"
	{
		echo "version: 0.1"
		echo "log: {level: warn}"
		echo "storage:"
		echo "  filesystem: {rootdirectory: $T/reg}"
		echo "  delete: {enabled: true}"
		echo "http:"
		echo "  addr: 127.0.0.1:$port"
		local line
		for line in "$@"; do echo "$line"; done
	} >"$T/$name/config.yml"
	docker-registry serve "$T/$name/config.yml" >"$T/$name/log" 2>&1 &
	echo $! >"$T/$name/server.pid"
	echo "$port"
}

# up URL: the registry answers at all (any HTTP status).
up() { curl -s -k -o /dev/null "$1"; }

# ---- the image: two layers, the second deleting /etc/gone and making /opq opaque ----
mkoci() {
	local d=$T/oci tarflags=(--sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=gnu)
	mkdir -p "$d/l1/bin" "$d/l1/etc" "$d/l1/opq" "$d/l2/etc" "$d/l2/opq" "$d/layout" || return 1
	cp /bin/busybox "$d/l1/bin/busybox" && ln -sf busybox "$d/l1/bin/sh" || return 1
	echo "delete me" >"$d/l1/etc/gone" && echo keep >"$d/l1/etc/kept" || return 1
	echo old >"$d/l1/opq/old" || return 1
	: >"$d/l2/etc/.wh.gone" && : >"$d/l2/opq/.wh..wh..opq" && echo new >"$d/l2/opq/new" || return 1
	tar -C "$d/l1" "${tarflags[@]}" -cf "$d/l1.tar" . && tar -C "$d/l2" "${tarflags[@]}" -cf "$d/l2.tar" . || return 1
	gzip -n -k "$d/l1.tar" && gzip -n -k "$d/l2.tar" || return 1
	python3 - "$d" <<'PY' || return 1
import hashlib, json, os, shutil, sys
d = sys.argv[1]
lay = os.path.join(d, "layout")
os.makedirs(os.path.join(lay, "blobs", "sha256"), exist_ok=True)
def blob(data):
    h = hashlib.sha256(data).hexdigest()
    open(os.path.join(lay, "blobs", "sha256", h), "wb").write(data)
    return "sha256:" + h, len(data)
def desc(mt, data, **extra):
    dg, size = blob(data)
    return dict(mediaType=mt, digest=dg, size=size, **extra)
diff_ids = ["sha256:" + hashlib.sha256(open(os.path.join(d, n), "rb").read()).hexdigest()
            for n in ("l1.tar", "l2.tar")]
layers = [desc("application/vnd.oci.image.layer.v1.tar+gzip", open(os.path.join(d, n), "rb").read())
          for n in ("l1.tar.gz", "l2.tar.gz")]
def manifest(arch):
    cfg = json.dumps({"architecture": arch, "os": "linux", "created": "2024-01-02T03:04:05Z",
                      "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
                      "rootfs": {"type": "layers", "diff_ids": diff_ids}},
                     sort_keys=True, separators=(",", ":")).encode()
    m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
         "config": desc("application/vnd.oci.image.config.v1+json", cfg), "layers": layers}
    return json.dumps(m, separators=(",", ":")).encode()
amd64 = desc("application/vnd.oci.image.manifest.v1+json", manifest("amd64"))
arm64 = desc("application/vnd.oci.image.manifest.v1+json", manifest("arm64"))
# The amd64 entry comes second: selection must look at the platform.
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
    dict(arm64, platform={"os": "linux", "architecture": "arm64"}),
    dict(amd64, platform={"os": "linux", "architecture": "amd64"})]}
multi = desc("application/vnd.oci.image.index.v1+json", json.dumps(index).encode())
top = {"schemaVersion": 2, "manifests": [
    dict(amd64, annotations={"org.opencontainers.image.ref.name": "v1"}),
    dict(multi, annotations={"org.opencontainers.image.ref.name": "multi"})]}
open(os.path.join(lay, "index.json"), "w").write(json.dumps(top))
open(os.path.join(lay, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
open(os.path.join(d, "manifest-digest"), "w").write(amd64["digest"])
open(os.path.join(d, "diff-id-2"), "w").write(diff_ids[1][7:])
open(os.path.join(d, "layer-2"), "w").write(layers[1]["digest"][7:])
# An artifact: a manifest whose config has a media type no image has.
art = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
       "config": dict(json.loads(manifest("amd64"))["config"],
                      mediaType="application/vnd.example.unknown.config.v1+json"),
       "layers": layers}
open(os.path.join(d, "artifact.json"), "w").write(json.dumps(art))
PY
}
mkoci && ok "a two-layer OCI image layout with whiteouts is built" ||
	{ fail "a two-layer OCI image layout with whiteouts is built"; exit 1; }
mdigest=$(cat "$T/oci/manifest-digest")

mkdir -p "$T/reg"
P=$(registry plain) && wait_for 10 up "http://127.0.0.1:$P/v2/" &&
	ok "docker-registry serves on 127.0.0.1:$P" ||
	{ fail "docker-registry starts" "$(cat "$T/plain/log")"; exit 1; }
R=127.0.0.1:$P/test/bb

push() { skopeo copy -q --dest-tls-verify=false "$@" >"$T/push.log" 2>&1; }
push "oci:$T/oci/layout:v1" "docker://$R:v1" &&
	push --format v2s2 "oci:$T/oci/layout:v1" "docker://$R:v2s2" &&
	push --all "oci:$T/oci/layout:multi" "docker://$R:multi" &&
	curl -sf -X PUT -H "Content-Type: application/vnd.oci.image.manifest.v1+json" \
		--data-binary "@$T/oci/artifact.json" "http://127.0.0.1:$P/v2/test/bb/manifests/artifact" \
		-o /dev/null &&
	ok "skopeo pushes the image as OCI, Docker v2 and an index; an artifact is pushed" ||
	fail "the image is pushed" "$(cat "$T/push.log")"

daemon_start a --insecure-registry "127.0.0.1:$P" || { fail "daemon a starts"; exit 1; }
state=$T/a/state/images

out=$(sh_ a image pull "$R:v1" 2>&1)
rc=$?
if [ $rc -eq 0 ] && contains "$out" "v1: Pulling from test/bb" &&
	[ "$(grep -c ': Pull complete$' <<<"$out")" = 2 ] &&
	contains "$out" "Digest: $mdigest" &&
	contains "$out" "Status: Downloaded newer image for $R:v1" &&
	[ "$(tail -n 1 <<<"$out")" = "$R:v1" ]; then
	ok "image pull by tag (OCI manifest) prints Docker's progress and the name"
else
	fail "image pull by tag" "rc=$rc" "$out"
fi

out=$(sh_ a image ls 2>&1)
grep -Eq "^127\.0\.0\.1:$P/test/bb +v1 " <<<"$out" && ok "image ls shows the pulled image" ||
	fail "image ls shows the pulled image" "$out"

out=$(sh_ a image pull "$R:v1" 2>&1)
contains "$out" "Status: Image is up to date for $R:v1" && ! contains "$out" "Pull complete" &&
	ok "pulling again: Image is up to date" || fail "pulling again: up to date" "$out"

l2=$state/layers/$(cat "$T/oci/diff-id-2")
[ "$(stat -c '%F %t:%T' "$l2/etc/gone" 2>&1)" = "character special file 0:0" ] &&
	ok "the whiteout .wh.gone is a 0:0 character device in the upper layer" ||
	fail "whiteout as a 0:0 character device" "$(ls -la "$l2/etc" 2>&1)"
python3 -c 'import os,sys; sys.exit(os.getxattr(sys.argv[1], "trusted.overlay.opaque") != b"y")' "$l2/opq" &&
	[ -f "$l2/opq/new" ] && [ ! -e "$l2/opq/.wh..wh..opq" ] &&
	ok "the opaque directory has trusted.overlay.opaque=y" ||
	fail "opaque directory" "$(ls -la "$l2/opq" 2>&1)"

out=$(DOCKER_HOST="unix://$(sock a)" docker pull "$R:v2s2" 2>&1)
rc=$?
[ $rc -eq 0 ] && contains "$out" "Status: Downloaded newer image for $R:v2s2" &&
	ok "docker pull (Docker v2 manifest) through POST /images/create" ||
	fail "docker pull" "rc=$rc" "$out"

out=$(sh_ a image pull "$R:multi" 2>&1)
rc=$?
[ $rc -eq 0 ] && contains "$out" "Status: Downloaded newer image for $R:multi" &&
	[ "$(sh_ a image ls --format json 2>/dev/null | grep -c "\"Tag\":\"multi\"")" = 1 ] &&
	ok "an index: its linux/amd64 manifest is pulled" || fail "pull of an index" "rc=$rc" "$out"
id_v1=$(api a GET /v1.41/images/json | python3 -c '
import json, sys
imgs = json.loads(sys.stdin.read().rsplit("\n", 2)[0])
print(" ".join(sorted({i["Id"] for i in imgs})))')
[ "$(wc -w <<<"$id_v1")" = 1 ] && ok "OCI, Docker v2 and the index's amd64 entry are one image (one id)" ||
	fail "one image id" "$id_v1"

out=$(sh_ a image pull "127.0.0.1:$P/test/bb@$mdigest" 2>&1)
rc=$?
[ $rc -eq 0 ] && contains "$out" "Digest: $mdigest" && contains "$out" "Status: Image is up to date" &&
	ok "pull by digest" || fail "pull by digest" "rc=$rc" "$out"

out=$(sh_ a image pull "$R:nope" 2>&1)
rc=$?
[ $rc -eq 1 ] && [ "$out" = "Error response from daemon: manifest for $R:nope not found: manifest unknown: manifest unknown" ] &&
	ok "an unknown tag: Docker's manifest unknown error" || fail "unknown tag" "rc=$rc" "$out"
out=$(api a POST "/v1.41/images/create?fromImage=$R&tag=nope")
contains "$out" "HTTP 404" && ok "an unknown tag is a 404 before the stream starts" ||
	fail "unknown tag status" "$out"

out=$(sh_ a image pull "$R:artifact" 2>&1)
rc=$?
[ $rc -eq 1 ] && contains "$out" "Error response from daemon: " &&
	contains "$out" "application/vnd.example.unknown.config.v1+json" &&
	ok "a manifest with an unknown config media type is refused" || fail "unknown media type" "rc=$rc" "$out"

# Plain HTTP needs --insecure-registry.
daemon_start b || { fail "daemon b starts"; exit 1; }
out=$(sh_ b image pull "$R:v1" 2>&1)
rc=$?
[ $rc -eq 1 ] && contains "$out" "https://127.0.0.1:$P/v2/test/bb/manifests/v1" &&
	contains "$out" "--insecure-registry 127.0.0.1:$P" &&
	ok "without --insecure-registry: an HTTPS error naming the flag" || fail "https refused" "rc=$rc" "$out"
[ -z "$(find "$T/b/state/images/blobs" "$T/b/state/images/tmp" -type f 2>/dev/null)" ] &&
	[ "$(sh_ b image ls -q | wc -l)" = 0 ] && ok "... and nothing is stored" ||
	fail "nothing stored" "$(find "$T/b/state/images" -type f)"

# ---- the bearer-token flow, on the same storage ----
mkdir -p "$T/tok"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/tok/key.pem" -out "$T/tok/cert.pem" \
	-subj /CN=shoal-test-token -days 2 >/dev/null 2>&1 || fail "a token signing certificate"
cat >"$T/tok/server.py" <<'PY'
import base64, http.server, json, os, subprocess, sys, time, urllib.parse
d, port = sys.argv[1], int(sys.argv[2])
der = subprocess.run(["openssl", "x509", "-in", os.path.join(d, "cert.pem"), "-outform", "DER"],
                     check=True, capture_output=True).stdout
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        with open(os.path.join(d, "requests"), "a") as f:
            f.write("service=%s scope=%s\n" % (q.get("service", [""])[0], " ".join(q.get("scope", []))))
        access = []
        for s in q.get("scope", []):
            typ, name, actions = s.split(":", 2) if s.count(":") >= 2 else ("", "", "")
            access.append({"type": typ, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        claims = {"iss": "shoal-test-issuer", "sub": "", "aud": q.get("service", [""])[0],
                  "exp": now + 300, "nbf": now - 10, "iat": now, "jti": str(now), "access": access}
        signing = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", os.path.join(d, "key.pem")],
                             input=signing.encode(), check=True, capture_output=True).stdout
        body = json.dumps({"token": signing + "." + b64(sig)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
TP=$(free_port)
python3 "$T/tok/server.py" "$T/tok" "$TP" >"$T/tok/log" 2>&1 &
_servers+=($!)
A=$(registry auth "auth:" "  token:" "    realm: http://127.0.0.1:$TP/token" \
	"    service: shoal-test" "    issuer: shoal-test-issuer" "    rootcertbundle: $T/tok/cert.pem")
if wait_for 10 up "http://127.0.0.1:$TP/token" && wait_for 10 up "http://127.0.0.1:$A/v2/"; then
	code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$A/v2/test/bb/manifests/v1")
	[ "$code" = 401 ] && ok "the token registry answers 401 without a token" || fail "401 without a token" "$code"
	rm -f "$T/tok/requests"
	daemon_start c --insecure-registry "127.0.0.1:$A" || { fail "daemon c starts"; exit 1; }
	out=$(sh_ c image pull "127.0.0.1:$A/test/bb:v1" 2>&1)
	rc=$?
	[ $rc -eq 0 ] && contains "$out" "Status: Downloaded newer image for 127.0.0.1:$A/test/bb:v1" &&
		ok "pull through the bearer-token flow" ||
		fail "bearer pull" "rc=$rc" "$out" "$(cat "$T/auth/log" "$T/tok/log" 2>/dev/null | tail -5)"
	grep -qx "service=shoal-test scope=repository:test/bb:pull" "$T/tok/requests" 2>/dev/null &&
		ok "the token server was asked for repository:test/bb:pull of service shoal-test" ||
		fail "token scope" "$(cat "$T/tok/requests" 2>&1)"
else
	fail "the token server and the token registry start" "$(cat "$T/tok/log" "$T/auth/log")"
fi

# ---- HTTPS with a CA from STATE/certs.d ----
mkdir -p "$T/tls"
(
	cd "$T/tls" &&
		openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -subj /CN=shoal-test-ca \
			-days 2 -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign &&
		openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 &&
		printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >ext &&
		openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt \
			-days 2 -extfile ext
) >"$T/tls/log" 2>&1 || fail "a test CA and a server certificate" "$(cat "$T/tls/log")"
S=$(registry tlsreg "  tls:" "    certificate: $T/tls/srv.crt" "    key: $T/tls/srv.key")
if wait_for 10 up "https://127.0.0.1:$S/v2/"; then
	daemon_start d || { fail "daemon d starts"; exit 1; }
	out=$(sh_ d image pull "127.0.0.1:$S/test/bb:v1" 2>&1)
	rc=$?
	[ $rc -eq 1 ] && contains "$out" "https://127.0.0.1:$S/" && contains "$out" "certs.d/127.0.0.1:$S/ca.crt" &&
		[ -z "$(find "$T/d/state/images/blobs" -type f)" ] &&
		ok "HTTPS with an unknown CA fails clearly, nothing stored" || fail "unknown CA" "rc=$rc" "$out"
	mkdir -p "$T/d/state/certs.d/127.0.0.1:$S" && cp "$T/tls/ca.crt" "$T/d/state/certs.d/127.0.0.1:$S/ca.crt"
	out=$(sh_ d image pull "127.0.0.1:$S/test/bb:v1" 2>&1)
	rc=$?
	[ $rc -eq 0 ] && contains "$out" "Status: Downloaded newer image for 127.0.0.1:$S/test/bb:v1" &&
		ok "HTTPS with the CA in STATE/certs.d/127.0.0.1:$S/ca.crt" || fail "https pull" "rc=$rc" "$out"
else
	fail "the TLS registry starts" "$(cat "$T/tlsreg/log")"
fi

# ---- a corrupt blob (last: it spoils the shared storage) ----
l2blob=$(cat "$T/oci/layer-2")
data=$T/reg/docker/registry/v2/blobs/sha256/${l2blob:0:2}/$l2blob/data
if [ -f "$data" ]; then
	size=$(stat -c %s "$data")
	chmod u+w "$data" && head -c "$size" /dev/zero | tr '\0' x >"$data"
	daemon_start e --insecure-registry "127.0.0.1:$P" || { fail "daemon e starts"; exit 1; }
	out=$(sh_ e image pull "$R:v1" 2>&1)
	rc=$?
	[ $rc -eq 1 ] && contains "$out" "Error response from daemon: " && contains "$out" "digest mismatch" &&
		contains "$out" "$l2blob" && ok "a corrupt blob: a digest mismatch error" ||
		fail "corrupt blob" "rc=$rc" "$out"
	[ "$(sh_ e image ls -q | wc -l)" = 0 ] &&
		[ -z "$(find "$T/e/state/images/tmp" "$T/e/state/images/layers" -mindepth 1 2>/dev/null)" ] &&
		[ -z "$(find "$T/e/state/images/blobs" -type f 2>/dev/null)" ] &&
		ok "... no image, no blobs, nothing in STATE/images/tmp" ||
		fail "leftovers after a corrupt blob" "$(find "$T/e/state/images" 2>&1)"
else
	fail "the registry stores blobs where expected" "$data"
fi

# ---- a registry that stalls in the middle of a layer: cancellation ----
mkdir -p "$T/slow"
cat >"$T/slow/server.py" <<'PY'
import hashlib, http.server, json, sys, time
port, log = int(sys.argv[1]), sys.argv[2]
config = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}).encode()
cfg_digest = "sha256:" + hashlib.sha256(config).hexdigest()
layer_digest = "sha256:" + "1" * 64
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_digest, "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest,
                "size": 10 << 20}]}).encode()
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def reply(self, body, ctype="application/octet-stream", length=None):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
    def do_GET(self):
        if self.path.endswith("/manifests/v1"):
            self.reply(manifest, "application/vnd.oci.image.manifest.v1+json")
        elif self.path.endswith(cfg_digest):
            self.reply(config)
        elif self.path.endswith(layer_digest):
            self.reply(b"x" * 65536, length=10 << 20)
            open(log, "a").write("stalling\n")
            time.sleep(120)
        else:
            self.reply(b"{}", "application/json")
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
SP=$(free_port)
python3 "$T/slow/server.py" "$SP" "$T/slow/requests" >"$T/slow/log" 2>&1 &
_servers+=($!)
stalled() { [ "$(grep -c stalling "$T/slow/requests" 2>/dev/null)" -ge "$1" ]; }
# find_tmp NAME: files in a daemon's STATE/images/tmp.
find_tmp() { find "$T/$1/state/images/tmp" -mindepth 1 2>/dev/null; }
if wait_for 10 up "http://127.0.0.1:$SP/v2/"; then
	daemon_start f --insecure-registry "127.0.0.1:$SP" || { fail "daemon f starts"; exit 1; }
	"$SHOAL_BIN" -H "unix://$(sock f)" image pull "127.0.0.1:$SP/test/slow:v1" >"$T/slow/pull1.out" 2>&1 &
	cli=$!
	if wait_for 20 stalled 1; then
		[ -n "$(find_tmp f)" ] && ok "a stalled layer download has its temp file in STATE/images/tmp" ||
			fail "a temp file while downloading"
		kill "$cli"
		wait "$cli" 2>/dev/null
		wait_for 10 grep -q "pull failed: the pull was cancelled" "$(daemon_log f)" && wait_for 10 test -z "$(find_tmp f)" &&
			ok "a client that hangs up cancels its pull; the temp file is removed" ||
			fail "cancel on hang-up" "$(tail -5 "$(daemon_log f)")" "$(find_tmp f)"
		sh_ f image pull "127.0.0.1:$SP/test/slow:v1" >"$T/slow/pull2.out" 2>&1 &
		cli=$!
		if wait_for 20 stalled 2; then
			start=$SECONDS
			daemon_stop f
			rc=$?
			[ $rc -eq 0 ] && [ $((SECONDS - start)) -lt 10 ] &&
				ok "the daemon stops promptly during a pull (exit 0)" ||
				fail "stop during a pull" "rc=$rc after $((SECONDS - start)) s" "$(tail -5 "$(daemon_log f)")"
			wait "$cli"
			rc=$?
			[ $rc -ne 0 ] && ok "... and the client's pull fails" ||
				fail "client pull during shutdown" "rc=$rc" "$(cat "$T/slow/pull2.out")"
		else
			fail "the second pull reaches the stalled layer" "$(cat "$T/slow/pull2.out")"
		fi
	else
		fail "the pull reaches the stalled layer" "$(cat "$T/slow/pull1.out")"
	fi
else
	fail "the stalling registry starts" "$(cat "$T/slow/log")"
fi

daemon_stop a && ok "daemon a stops cleanly" || fail "daemon a stops cleanly"
! grep -q "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error" "$T"/*/daemon.log &&
	ok "no sanitizer reports (leaks included)" ||
	fail "sanitizer reports" "$(grep -h -A5 "Sanitizer\|runtime error" "$T"/*/daemon.log | head -20)"

done_testing
