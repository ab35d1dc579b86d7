# Shell functions shared by the scripts that run rawpost against real servers on loopback
# (.ci/interop, .ci/soak). Source it; it defines functions only.

# install_debs PACKAGE...: installs Debian packages. Installing a server package starts its
# service on :80/:443 unless a policy says no: add /usr/sbin/policy-rc.d (exit 101) only if
# none exists, and remove only what was added.
install_debs() {
  local added_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    added_policy=1
  fi
  local status=0
  apt-get update -q >/dev/null || status=$?
  [ "$status" -eq 0 ] && { DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null || status=$?; }
  [ -n "$added_policy" ] && rm -f /usr/sbin/policy-rc.d
  return "$status"
}

# test_pki DIR LABEL: a test PKI made at run time, ECDSA P-256: DIR/root.pem (the root to pin)
# -> intermediate DIR/ca.pem -> leaf for api.example.test (DIR/leaf.pem, its key DIR/leaf.key),
# and DIR/chain.pem (leaf then intermediate, what a server sends). LABEL names the CAs.
test_pki() {
  local dir="$1" label="$2"
  pki() { openssl "$@" >/dev/null 2>&1; }
  ec() { pki ecparam -name prime256v1 -genkey -noout -out "$1"; }
  ec "$dir/root.key"; ec "$dir/ca.key"; ec "$dir/leaf.key"
  pki req -x509 -new -key "$dir/root.key" -days 30 -subj "/CN=rawpost $label root" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$dir/root.pem"
  pki req -new -key "$dir/ca.key" -subj "/CN=rawpost $label intermediate" -out "$dir/ca.csr"
  printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' > "$dir/ca.ext"
  pki x509 -req -in "$dir/ca.csr" -CA "$dir/root.pem" -CAkey "$dir/root.key" -CAcreateserial \
    -days 30 -extfile "$dir/ca.ext" -out "$dir/ca.pem"
  pki req -new -key "$dir/leaf.key" -subj "/CN=api.example.test" -out "$dir/leaf.csr"
  printf 'subjectAltName=DNS:api.example.test\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' > "$dir/leaf.ext"
  pki x509 -req -in "$dir/leaf.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 30 -extfile "$dir/leaf.ext" -out "$dir/leaf.pem"
  cat "$dir/leaf.pem" "$dir/ca.pem" > "$dir/chain.pem"
  openssl verify -CAfile "$dir/root.pem" -untrusted "$dir/ca.pem" "$dir/leaf.pem" >/dev/null
}

# free_ports N: N free TCP ports on 127.0.0.1, on one line.
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
}

# wait_port PORT: waits (up to 5 s) until something accepts connections on 127.0.0.1:PORT.
wait_port() {
  local _
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  return 1
}
