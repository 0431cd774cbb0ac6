#!/usr/bin/env bash
# Writes throwaway certificates for the TLS tests into DIR (openssl):
#   ca.pem / ca.key            the test CA
#   server.pem / server.key    signed by it, for localhost and 127.0.0.1
#   client.pem / client.key    signed by it (mutual TLS)
#   other-ca.pem               an unrelated CA
#   other-client.pem / .key    signed by the unrelated CA
# Keys are P-256 (fast to make); everything is valid for one day.
#   tests/testing/make_certs.sh DIR
set -euo pipefail
dir="$1"
mkdir -p "$dir"
cd "$dir"

newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

make_ca() {  # name
  openssl req -x509 "${newkey[@]}" -keyout "$1.key" -out "$1.pem" -days 1 \
    -subj "/CN=statehub test $1" 2>/dev/null
}

make_leaf() {  # name ca extensions
  openssl req -new "${newkey[@]}" -keyout "$1.key" -out "$1.csr" \
    -subj "/CN=statehub test $1" 2>/dev/null
  printf '%s\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" \
    -CAcreateserial -out "$1.pem" -days 1 -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

make_ca ca
make_ca other-ca
make_leaf server ca "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
make_leaf client ca "extendedKeyUsage=clientAuth"
make_leaf other-client other-ca "extendedKeyUsage=clientAuth"
