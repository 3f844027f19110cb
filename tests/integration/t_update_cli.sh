#!/usr/bin/env bash
# Updates from the CLI on one daemon (process driver): the blue/green flags,
# "service promote" and "service rollback" refusing what they cannot do, the
# COLOR column of "service ps"; then updates that run (dynamic_tests): a
# rolling start-first update, a blue/green deployment promoted by hand and
# rolled back, a rolling rollback.
. "$(dirname "$0")/lib.sh"

daemon_start u --hostname upd-h1 --runtime process --bridge none || { fail "daemon starts"; exit 1; }
port=$(free_port)
check "swarm init" sh_ u swarm init --advertise-addr 127.0.0.1 --listen-addr "127.0.0.1:$port"

# inspect_field SERVICE EXPR: EXPR (Python, j = the service) from "service inspect".
inspect_field() {
	sh_ u service inspect "$1" | jpy "(lambda j: $2)(j[0])"
}

# --- flags, refusals ----------------------------------------------------------------------------
out=$(sh_ u service create -d --name bg --replicas 2 --update-strategy blue-green \
	--bluegreen-promote manual --bluegreen-grace 30s shoal-demo:latest sleep 1000 2>&1)
[ $? -eq 0 ] && [[ "$out" =~ ^[0-9a-z]{25}$ ]] && ok "create --update-strategy blue-green --bluegreen-promote manual" ||
	fail "create blue-green" "$out"
[ "$(inspect_field bg "j['Spec']['UpdateStrategy']")" = blue-green ] &&
	[ "$(inspect_field bg "j['Spec']['BlueGreen']")" = '{"Promote": "manual", "Grace": 30000000000}' ] &&
	ok "inspect shows UpdateStrategy and BlueGreen" || fail "inspect blue-green spec" "$(sh_ u service inspect bg 2>&1)"
out=$(sh_ u service inspect --pretty bg 2>&1)
contains "$out" "Update Strategy:	blue-green" && contains "$out" " Promote:	manual" &&
	contains "$out" " Grace:		30s" && ok "inspect --pretty shows the strategy" || fail "inspect --pretty strategy" "$out"

out=$(sh_ u service promote bg 2>&1)
rc=$?
[ $rc -eq 1 ] && [ "$out" = "Error response from daemon: service bg has no green set ready to promote (deployment: none)" ] &&
	ok "promote without a ready green set fails" || fail "promote refused" "rc=$rc" "$out"
out=$(sh_ u service promote nope 2>&1)
[ $? -eq 1 ] && contains "$out" "service nope not found" && ok "promote of an unknown service fails" ||
	fail "promote unknown" "$out"
out=$(sh_ u service rollback -d bg 2>&1)
rc=$?
[ $rc -eq 1 ] && contains "$out" "Error response from daemon: rpc error: code = FailedPrecondition desc = service " &&
	contains "$out" "does not have a previous spec" && ok "rollback without a previous spec fails as Docker's" ||
	fail "rollback refused" "rc=$rc" "$out"

out=$(sh_ u service create -d --name badp --bluegreen-promote sometimes shoal-demo:latest sleep 1000 2>&1)
rc=$?
[ $rc -eq 1 ] && contains "$out" 'invalid BlueGreen.Promote "sometimes" (want auto or manual)' &&
	[ -z "$(sh_ u service ls -q -f name=badp)" ] && ok "a bad --bluegreen-promote is refused" ||
	fail "bad --bluegreen-promote" "rc=$rc" "$out"
out=$(sh_ u service create -d --name badg --bluegreen-grace soon shoal-demo:latest sleep 1000 2>&1)
[ $? -eq 125 ] && contains "$out" 'invalid argument "soon" for "--bluegreen-grace" flag' &&
	ok "a bad --bluegreen-grace is refused" || fail "bad --bluegreen-grace" "$out"
out=$(sh_ u service create -d --name bgg --mode global --update-strategy blue-green shoal-demo:latest sleep 1000 2>&1)
[ $? -eq 1 ] && contains "$out" "blue-green deployments need a replicated service" &&
	ok "blue-green with --mode global is refused" || fail "blue-green global" "$out"
out=$(sh_ u service update -d --bluegreen-promote auto --bluegreen-grace 2m bg 2>&1)
[ $? -eq 0 ] && [ "$(inspect_field bg "j['Spec']['BlueGreen']")" = '{"Promote": "auto", "Grace": 120000000000}' ] &&
	ok "update --bluegreen-promote/--bluegreen-grace" || fail "update blue-green flags" "$out"
out=$(sh_ u service --help 2>&1)
grep -qE "^  promote " <<<"$out" && grep -qE "^  rollback " <<<"$out" && ok "service --help lists promote and rollback" ||
	fail "service --help" "$out"
sh_ u service rm bg >/dev/null

# --- updates that run ---------------------------------------------------------------------------
# They need the updater wired into the leader's dispatch pass.
dynamic_tests() {
	local out rc
	out=$(sh_ u image load -i "$DEMO_IMAGE" 2>&1)
	[ "$out" = "Loaded image: shoal-demo:latest" ] || { fail "the demo image loads" "$out"; return; }
	export SHOAL_CONVERGE_TIMEOUT=45

	out=$(timeout 60 "$SHOAL_BIN" -H "unix://$(sock u)" service create --name roll --replicas 2 \
		--update-monitor 1s shoal-demo:latest sleep 1000 2>&1)
	[ $? -eq 0 ] && ok "a rolling service converges" || fail "create roll" "$out"
	out=$(sh_ u service ps roll)
	grep -qE "^ID +NAME +IMAGE +NODE +DESIRED STATE +CURRENT STATE +ERROR +PORTS$" <<<"$out" &&
		! contains "$out" COLOR && ok "service ps of a rolling service has no COLOR column" || fail "ps no COLOR" "$out"

	out=$(timeout 90 "$SHOAL_BIN" -H "unix://$(sock u)" service update --env-add V=2 \
		--update-order start-first roll 2>&1)
	rc=$?
	[ $rc -eq 0 ] && contains "$out" "verify: Service converged" &&
		[ "$(inspect_field roll "j['UpdateStatus']['State']")" = completed ] &&
		ok "a start-first update completes (UpdateStatus completed)" || fail "start-first update" "rc=$rc" "$out"
	[ "$(sh_ u service ps -f desired-state=running -q roll | wc -l)" = 2 ] &&
		ok "two tasks run after the update" || fail "tasks after update" "$(sh_ u service ps roll)"

	out=$(timeout 90 "$SHOAL_BIN" -H "unix://$(sock u)" service rollback roll 2>&1)
	rc=$?
	[ $rc -eq 0 ] && contains "$out" "rollback: manually requested rollback" &&
		[ "$(inspect_field roll "j['UpdateStatus']['State']")" = rollback_completed ] &&
		[ "$(inspect_field roll "j['Spec']['TaskTemplate']['ContainerSpec'].get('Env')")" = null ] &&
		ok "service rollback of a rolling service completes" || fail "rolling rollback" "rc=$rc" "$out"

	out=$(timeout 60 "$SHOAL_BIN" -H "unix://$(sock u)" service create --name green --replicas 2 \
		--update-strategy blue-green --bluegreen-promote manual --bluegreen-grace 1h \
		--update-monitor 1s shoal-demo:latest sleep 1000 2>&1)
	[ $? -eq 0 ] && ok "a blue-green service converges" || fail "create green" "$out"
	out=$(timeout 90 "$SHOAL_BIN" -H "unix://$(sock u)" service update --env-add V=2 green 2>&1)
	rc=$?
	[ $rc -eq 0 ] && contains "$out" "promote" &&
		[ "$(inspect_field green "j['Deployment']['State']")" = ready ] &&
		ok "a manual blue-green update stops at ready" || fail "blue-green ready" "rc=$rc" "$out" "$(sh_ u service inspect green 2>&1)"
	out=$(sh_ u service ps green)
	grep -qE "^ID +NAME +COLOR +IMAGE " <<<"$out" && grep -qE " green\.[12] +green +" <<<"$out" &&
		grep -qE " green\.[12] +blue +" <<<"$out" && ok "service ps shows the COLOR column" || fail "ps COLOR" "$out"

	out=$(sh_ u service promote green 2>&1)
	[ $? -eq 0 ] && [ "$out" = green ] &&
		[ "$(inspect_field green "j['Deployment']['LiveColor']")" = green ] &&
		[ "$(inspect_field green "j['Deployment']['State']")" = promoted ] &&
		ok "service promote switches LiveColor to green" || fail "promote" "$out" "$(sh_ u service inspect green 2>&1)"
	out=$(sh_ u service inspect --pretty green 2>&1)
	contains "$out" "Live Color:	green" && contains "$out" "traffic switched to green by request" &&
		ok "inspect --pretty shows the deployment" || fail "pretty deployment" "$out"

	out=$(timeout 90 "$SHOAL_BIN" -H "unix://$(sock u)" service rollback green 2>&1)
	rc=$?
	[ $rc -eq 0 ] && contains "$out" "rolled back by request: blue serves" &&
		[ "$(inspect_field green "j['Deployment']['LiveColor']")" = blue ] &&
		[ "$(inspect_field green "j['Deployment']['State']")" = rolled_back ] &&
		[ "$(inspect_field green "j['UpdateStatus']['State']")" = rollback_completed ] &&
		ok "service rollback flips back to blue" || fail "blue-green rollback" "rc=$rc" "$out"
	wait_for 30 bash -c "[ \"\$('$SHOAL_BIN' -H unix://$(sock u) service ps -f desired-state=running -q green | wc -l)\" = 2 ]" &&
		ok "the green tasks are stopped" || fail "green tasks left" "$(sh_ u service ps green)"
	sh_ u service rm roll green >/dev/null
}
dynamic_tests

done_testing
