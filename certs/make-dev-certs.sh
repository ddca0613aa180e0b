#!/usr/bin/env bash
# Development TLS material for Junction, made with openssl:
#   ca.pem / ca.key          a development CA (kept when it exists, so clients keep trusting it)
#   server.pem / server.key  a server certificate for localhost, 127.0.0.1 and ::1, signed by the CA
#   client.pem / client.key  a client certificate (CN from --client-cn), signed by the CA
# Never use these in production: the CA key sits next to the certificates, unencrypted.
#
# Usage: certs/make-dev-certs.sh [--dir DIR] [--client-cn NAME] [--days N] [--hosts LIST]
#   --dir DIR         where to write (default: certs/dev beside this script; git ignores it)
#   --client-cn NAME  CN of the client certificate (default: dev-client)
#   --days N          validity of the server and client certificates (default: 825)
#   --hosts LIST      comma-separated names and addresses of the server certificate
#                     (default: localhost,127.0.0.1,::1)
# Running it again in the same directory issues new server and client certificates (new serial
# numbers) from the same CA: a running broker picks them up without a restart.
set -euo pipefail

dir="$(cd "$(dirname "$0")" && pwd)/dev"
client_cn=dev-client
days=825
hosts=localhost,127.0.0.1,::1
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="${2:?--dir needs a directory}"; shift 2 ;;
    --client-cn) client_cn="${2:?--client-cn needs a name}"; shift 2 ;;
    --days) days="${2:?--days needs a number}"; shift 2 ;;
    --hosts) hosts="${2:?--hosts needs a list}"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "make-dev-certs.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v openssl >/dev/null || { echo "make-dev-certs.sh: openssl not found (Debian: apt-get install openssl)" >&2; exit 1; }
mkdir -p "$dir"
cd "$dir"
umask 077
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# subjectAltName from the host list: addresses as IP, the rest as DNS.
san=""
IFS=',' read -ra names <<<"$hosts"
for h in "${names[@]}"; do
  if [[ "$h" =~ ^[0-9.]+$ || "$h" == *:* ]]; then san+="${san:+,}IP:$h"; else san+="${san:+,}DNS:$h"; fi
done
first="${names[0]}"

# EC P-256 keys: small, fast to make, understood by OpenSSL, Node.js, browsers and Mosquitto.
newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [ ! -f ca.pem ] || [ ! -f ca.key ]; then
  newkey ca.key
  openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/O=Junction development/CN=Junction Dev CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem 2>/dev/null
  echo "made the development CA: $dir/ca.pem"
fi

# sign NAME CN EXTENSIONS: NAME.key, NAME.pem signed by the CA, with a random serial.
sign() {
  newkey "$tmp/$1.key"
  openssl req -new -key "$tmp/$1.key" -subj "/O=Junction development/CN=$2" -out "$tmp/$1.csr" 2>/dev/null
  printf '%s\n' "$3" >"$tmp/$1.ext"
  openssl x509 -req -in "$tmp/$1.csr" -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
    -days "$days" -sha256 -extfile "$tmp/$1.ext" -out "$tmp/$1.pem" 2>/dev/null
  # Replace both files by rename, key first: a watching broker never reads a half-written file.
  mv -f "$tmp/$1.key" "$1.key"
  mv -f "$tmp/$1.pem" "$1.pem"
}

sign server "$first" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$san"
sign client "$client_cn" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
chmod 644 ca.pem server.pem client.pem

echo "server certificate for $hosts: $dir/server.pem (key server.key)"
echo "client certificate, CN=$client_cn: $dir/client.pem (key client.key)"
