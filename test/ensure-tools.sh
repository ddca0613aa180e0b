#!/usr/bin/env bash
# Runs before `npm test`: the suite drives the broker with Debian's mosquitto-clients too.
# Installs them when missing and we are root with apt-get; otherwise says what to install.
set -u
command -v mosquitto_pub >/dev/null 2>&1 && command -v mosquitto_sub >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends mosquitto-clients </dev/null >/dev/null ||
    { apt-get update </dev/null >/dev/null && apt-get install -y --no-install-recommends mosquitto-clients </dev/null >/dev/null; }
  command -v mosquitto_pub >/dev/null 2>&1 && exit 0
fi
echo "the tests need mosquitto_pub and mosquitto_sub: install Debian's mosquitto-clients (apt-get install -y mosquitto-clients)" >&2
exit 1
