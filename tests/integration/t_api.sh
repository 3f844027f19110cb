#!/usr/bin/env bash
# The API socket with raw HTTP: version prefixes, Docker's ping headers,
# keep-alive, and bad input answered with Docker-style errors and no change.
. "$(dirname "$0")/lib.sh"

daemon_start a || { fail "daemon starts"; exit 1; }

for p in /version /v1.41/version /v1.40/version /v1.24/version; do
	out=$(api a GET "$p")
	contains "$out" '"ApiVersion":"1.41"' && contains "$out" "HTTP 200" && ok "GET $p" || fail "GET $p" "$out"
done
out=$(api a GET /v1.99/version)
contains "$out" "HTTP 400" && contains "$out" 'client version 1.99 is too new. Maximum supported API version is 1.41' &&
	ok "a too-new API version is refused like Docker" || fail "a too-new API version is refused" "$out"
out=$(api a GET /v1.12/version)
contains "$out" "HTTP 400" && contains "$out" 'client version 1.12 is too old. Minimum supported API version is 1.24' &&
	ok "a too-old API version is refused like Docker" || fail "a too-old API version is refused" "$out"

hdrs=$(curl -sS -I --unix-socket "$(sock a)" http://localhost/_ping)
if grep -qi '^Api-Version: 1.41' <<<"$hdrs" && grep -qi '^Ostype: linux' <<<"$hdrs" &&
	grep -qi '^Swarm: inactive' <<<"$hdrs" && grep -qi '^Docker-Experimental: false' <<<"$hdrs"; then
	ok "HEAD /_ping carries Docker's headers"
else
	fail "HEAD /_ping carries Docker's headers" "$hdrs"
fi
out=$(api a GET /_ping)
[ "$(head -n1 <<<"$out")" = OK ] && ok "GET /_ping answers OK" || fail "GET /_ping answers OK" "$out"

out=$(curl -sS -v --unix-socket "$(sock a)" http://localhost/_ping http://localhost/version 2>&1)
contains "$out" "Re-using existing connection" && ok "keep-alive: two requests on one connection" ||
	fail "keep-alive: two requests on one connection" "$out"

out=$(api a GET /no/such/thing)
contains "$out" '{"message":"page not found"}' && contains "$out" "HTTP 404" && ok "an unknown path answers 404 page not found" ||
	fail "unknown path" "$out"
out=$(api a DELETE /version)
contains "$out" '{"message":"page not found"}' && contains "$out" "HTTP 404" &&
	ok "a wrong method answers 404 page not found, as Docker's router does" || fail "wrong method" "$out"
out=$(curl -sS --unix-socket "$(sock a)" "http://localhost/no%0aFORGED%20line%0a")
if ! grep -q '^FORGED' "$(daemon_log a)" && grep -q 'no?FORGED line?' "$(daemon_log a)"; then
	ok "control characters from a request cannot forge log lines"
else
	fail "control characters from a request cannot forge log lines" "$(grep -n FORGED "$(daemon_log a)")"
fi

out=$(api a POST /swarm/init -H 'Content-Type: application/json' -d '{"ListenAddr": ')
contains "$out" "HTTP 400" && contains "$out" '"message"' && ok "malformed JSON answers 400" || fail "malformed JSON answers 400" "$out"
out=$(api a POST /swarm/init -H 'Content-Type: application/json' -d '{"ListenAddr": 5}')
contains "$out" "HTTP 400" && contains "$out" "ListenAddr" && ok "a field of the wrong type answers 400 naming the field" ||
	fail "wrong field type" "$out"
out=$(api a POST /swarm/init -H 'Content-Type: text/plain' -d '{}')
contains "$out" "HTTP 400" && contains "$out" "unsupported Content-Type header (text/plain): must be 'application/json'" &&
	ok "a non-JSON content type answers 400 like Docker" || fail "non-JSON content type" "$out"
out=$(api a POST /swarm/init -H 'Content-Type: application/json' -d '{"ListenAddr": "nonsense:99999"}')
contains "$out" "HTTP 400" && contains "$out" "invalid port" && ok "a bad listen address answers 400" || fail "bad listen address" "$out"
long=$(python3 -c 'print("\u00e9" * 300)')
out=$(api a POST /swarm/init -H 'Content-Type: application/json' -d "{\"ListenAddr\": \"$long\"}")
contains "$out" "HTTP 400" && contains "$out" '"message"' && ok "a long non-ASCII value answers 400, not 500" ||
	fail "long non-ASCII value" "$(tail -c 300 <<<"$out")"
head -c $((5 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$T/big.json"
out=$(api a POST /swarm/init -H 'Content-Type: application/json' --data-binary @"$T/big.json")
contains "$out" "HTTP 413" && ok "a body over the size limit answers 413" || fail "oversized body" "$(tail -c 300 <<<"$out")"
out=$(sh_ a info 2>&1)
contains "$out" "Swarm: inactive" && [ ! -e "$T/a/state/swarm" ] && ok "refused requests changed nothing" ||
	fail "refused requests changed nothing" "$out"
check "the daemon still serves after bad input" sh_ a version

port=$(free_port)
check "swarm init" sh_ a swarm init --advertise-addr 127.0.0.1 --listen-addr "127.0.0.1:$port"
id=$(sh_ a node ls -q)
# The leader's first pass gives the node its container subnet (a write of its
# record): the version below is taken after it.
has_subnet() { api a GET /nodes/"$id" | head -n1 | grep -q '"Subnet":"10\.89\.'; }
wait_for 10 has_subnet && ok "the leader gives the node a container subnet" || fail "node subnet" "$(api a GET /nodes/"$id")"
v=$(api a GET /nodes/"$id" | head -n1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["Version"]["Index"])')
out=$(api a POST "/nodes/$id/update?version=$v" -H 'Content-Type: application/json' -d '{"Role":"manager","Availability":"sleepy"}')
contains "$out" "HTTP 400" && contains "$out" "sleepy" && ok "an unknown availability answers 400" || fail "unknown availability" "$out"
out=$(api a POST "/nodes/$id/update?version=$v" -H 'Content-Type: application/json' -d '{"Role":"manager","Availability":"active","Labels":{"a":1}}')
contains "$out" "HTTP 400" && contains "$out" "Labels" && ok "a label of the wrong type answers 400" || fail "label wrong type" "$out"
out=$(api a POST "/nodes/$id/update?version=banana" -H 'Content-Type: application/json' -d '{"Role":"manager","Availability":"active"}')
contains "$out" "HTTP 400" && contains "$out" "banana" && ok "a bad version parameter answers 400" || fail "bad version parameter" "$out"
out=$(api a POST "/nodes/$id/update?version=%2B-1" -H 'Content-Type: application/json' -d '{"Role":"manager","Availability":"pause"}')
contains "$out" "HTTP 400" && ok "a signed version parameter answers 400" || fail "signed version" "$out"
out=$(api a POST "/nodes/$id/update?version=18446744073709551615" -H 'Content-Type: application/json' -d '{"Role":"manager","Availability":"pause"}')
contains "$out" "HTTP 409" && contains "$out" "update out of sequence" && ok "the largest version is a conflict, never 'any version'" ||
	fail "largest version" "$out"
out=$(api a GET "/nodes?filters=%7B%22role%22%3A5%7D")
contains "$out" "HTTP 400" && contains "$out" "invalid filter 'role'" && ok "a filter value of the wrong type answers 400" ||
	fail "filter of the wrong type" "$out"
big=$(python3 -c 'import urllib.parse, json; print(urllib.parse.quote(json.dumps({"name": {"x" * 6000: True}})))')
out=$(api a GET "/nodes?filters=$big")
contains "$out" "HTTP 200" && contains "$out" '[]' && ok "a long filter is applied, not ignored" || fail "long filter" "$(tail -c 300 <<<"$out")"
out=$(api a POST "/nodes/zzzz/update?version=$v" -H 'Content-Type: application/json' -d '{"Role":"manager","Availability":"active"}')
contains "$out" "HTTP 404" && contains "$out" "node zzzz not found" && ok "updating an unknown node answers 404" || fail "unknown node update" "$out"
v2=$(api a GET /nodes/"$id" | head -n1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["Version"]["Index"])')
[ "$v" = "$v2" ] && ok "refused node updates changed nothing" || fail "refused node updates changed nothing" "$v -> $v2"

daemon_stop a
rc=$?
[ $rc -eq 0 ] && ok "the daemon exits 0 after the bad input (no sanitizer report)" ||
	fail "clean exit after bad input" "rc=$rc" "$(tail -n 40 "$(daemon_log a)")"
done_testing
