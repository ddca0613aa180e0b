#!/usr/bin/env bash
# Runs before `npm test`: the suite drives the broker with Debian's mosquitto-clients too, checks
# password files against mosquitto_passwd and Mosquitto (package mosquitto), makes TLS material with
# openssl, opens a page in Chromium and checks /metrics and the alert rules with promtool. Installs
# what is missing when we are root with apt-get; otherwise says what to install.
set -u
declare -A need=([mosquitto_pub]=mosquitto-clients [mosquitto_sub]=mosquitto-clients [mosquitto_passwd]=mosquitto [openssl]=openssl [chromium]=chromium [promtool]=prometheus)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${missing[@]}" </dev/null >/dev/null ||
    { apt-get update </dev/null >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" </dev/null >/dev/null; }
  ok=1
  for cmd in "${!need[@]}"; do command -v "$cmd" >/dev/null 2>&1 || ok=0; done
  [ "$ok" = 1 ] && exit 0
fi
echo "the tests need mosquitto_pub, mosquitto_sub, mosquitto_passwd, openssl, chromium and promtool: install the Debian packages (apt-get install -y ${missing[*]})" >&2
exit 1
