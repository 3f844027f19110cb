#!/usr/bin/env bash
# The unmodified docker CLI against shoal's socket.
. "$(dirname "$0")/lib.sh"

if ! command -v docker >/dev/null; then
	fail "the docker CLI is installed (scripts/deps.sh test installs docker.io when missing)"
	exit 1
fi
daemon_start k --hostname docker-k || { fail "daemon starts"; exit 1; }
export DOCKER_HOST="unix://$(sock k)"
export DOCKER_CONFIG="$T/docker-config"
port=$(free_port)

out=$(docker version 2>&1)
rc=$?
[ $rc -eq 0 ] && contains "$out" "Server:" && contains "$out" "0.1.0" && contains "$out" "1.41" &&
	ok "docker version" || fail "docker version" "rc=$rc" "$out"

out=$(docker info 2>&1)
rc=$?
[ $rc -eq 0 ] && contains "$out" "Swarm: inactive" && ok "docker info (inactive)" || fail "docker info (inactive)" "rc=$rc" "$out"

out=$(docker node ls 2>&1)
rc=$?
[ $rc -ne 0 ] && contains "$out" "This node is not a swarm manager" && ok "docker node ls outside a swarm" ||
	fail "docker node ls outside a swarm" "rc=$rc" "$out"

out=$(docker swarm init --advertise-addr 127.0.0.1 --listen-addr "127.0.0.1:$port" 2>&1)
rc=$?
if [ $rc -eq 0 ] && contains "$out" "Swarm initialized: current node (" &&
	grep -qE "docker swarm join --token SHOAL-1-[a-z2-7]{52}-[a-z2-7]{26} 127.0.0.1:$port" <<<"$out"; then
	ok "docker swarm init"
else
	fail "docker swarm init" "rc=$rc" "$out"
fi

out=$(docker swarm init --advertise-addr 127.0.0.1 2>&1)
rc=$?
[ $rc -ne 0 ] && contains "$out" "Error response from daemon: This node is already part of a swarm." &&
	ok "docker swarm init twice gives Docker's error" || fail "docker swarm init twice" "rc=$rc" "$out"

out=$(docker info 2>&1)
rc=$?
[ $rc -eq 0 ] && contains "$out" "Swarm: active" && contains "$out" "Is Manager: true" && contains "$out" "Node Address: 127.0.0.1" &&
	ok "docker info (active)" || fail "docker info (active)" "rc=$rc" "$out"

id=$("$SHOAL_BIN" -H "$DOCKER_HOST" node ls -q)
out=$(docker node ls 2>&1)
rc=$?
[ $rc -eq 0 ] && grep -qE "^$id \* +docker-k +Ready +Active +Leader +0\.1\.0$" <<<"$out" &&
	ok "docker node ls" || fail "docker node ls" "rc=$rc" "$out"

out=$(docker node inspect self 2>&1)
rc=$?
[ $rc -eq 0 ] && contains "$out" "\"ID\": \"$id\"" && contains "$out" '"Hostname": "docker-k"' &&
	ok "docker node inspect self" || fail "docker node inspect self" "rc=$rc" "$out"
out=$(docker node inspect --pretty self 2>&1)
rc=$?
[ $rc -eq 0 ] && contains "$out" "Hostname:" && contains "$out" "docker-k" && ok "docker node inspect --pretty self" ||
	fail "docker node inspect --pretty self" "rc=$rc" "$out"

out=$(docker node update --label-add from=docker self 2>&1)
rc=$?
[ $rc -eq 0 ] && "$SHOAL_BIN" -H "$DOCKER_HOST" node inspect self | grep -q '"from": "docker"' &&
	ok "docker node update --label-add" || fail "docker node update --label-add" "rc=$rc" "$out"

out=$(docker swarm leave --force 2>&1)
rc=$?
[ $rc -eq 0 ] && contains "$out" "Node left the swarm." && ok "docker swarm leave --force" || fail "docker swarm leave --force" "rc=$rc" "$out"

daemon_stop k
rc=$?
[ $rc -eq 0 ] && ok "the daemon exits 0 after the docker CLI session" || fail "clean exit after docker CLI" "rc=$rc" "$(tail -n 40 "$(daemon_log k)")"
done_testing
