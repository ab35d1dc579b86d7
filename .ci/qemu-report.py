#!/usr/bin/env python3
"""The checking and reporting half of .ci/qemu (standard library only).

    qemu-report.py symbol GUEST.elf [KIND]
        prints the entry address of the function the guest is to time (each call's
        instructions and stack depth at entry), or 0 if it is not there; KIND is one of
        FUNCTIONS below (default: verify, rawpost's ECDSA `verify_signature`)
    qemu-report.py report WORKDIR (--check-docs | --write-docs) FILE... [--stacks FILE...]
        checks every case's outcome against EXPECTED below, prints the figures and the tables,
        compares the tables with those in each FILE.md (or writes them there) and the
        firmware's TLS_HANDSHAKE_STACK in each FILE.rs with the measured figure (or writes it);
        for the FILEs after --stacks, the same with the side-by-side table of the two TLS stacks
        (embedded-tls and mbedtls-rs) and the mbedtls-rs firmware's MBEDTLS_HANDSHAKE_STACK;
        and prints the summary JSON object as the last line; exit status 1 (and FAIL lines) on
        any mismatch

WORKDIR holds, per case, the directory .ci/qemu made: `status` (QEMU's exit status, which is
the guest's), `guest.out` (its output: one JSON result line), `server.log` and the
certificates the server wrote (DER); and the guest builds as NAME.elf.
"""

import json
import os
import re
import struct
import sys

# ---------------------------------------------------------------------------------------------
# ELF (32-bit little-endian, as built for riscv32imc)


class Elf:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.data = data = f.read()
        if data[:4] != b"\x7fELF" or data[4] != 1 or data[5] != 1:
            raise ValueError(f"{path}: not a 32-bit little-endian ELF file")
        shoff, = struct.unpack_from("<I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x2E)
        self.sections = []
        for i in range(shnum):
            fields = struct.unpack_from("<IIIIIIIIII", data, shoff + i * shentsize)
            self.sections.append(fields)
        strtab = self.sections[shstrndx]
        self.names = {}
        for i, s in enumerate(self.sections):
            start = strtab[4] + s[0]
            self.names[i] = data[start:data.index(b"\0", start)].decode()

    def section_size(self, name):
        """Size of section `name` and its `name.*` parts."""
        return sum(s[5] for i, s in enumerate(self.sections)
                   if self.names[i] == name or self.names[i].startswith(name + "."))

    def symbols(self):
        """(name, address, size, is_function) of every symbol."""
        for s in self.sections:
            if s[1] != 2:  # SHT_SYMTAB
                continue
            strtab = self.sections[s[6]]
            for off in range(s[4], s[4] + s[5], 16):
                name, value, size, info, _other, _shndx = struct.unpack_from(
                    "<IIIBBH", self.data, off)
                start = strtab[4] + name
                text = self.data[start:self.data.index(b"\0", start)].decode()
                yield text, value, size, (info & 0xF) == 2


# Functions the guest can time, by their v0 symbol names (the guest is built with
# `-C symbol-mangling-version=v0`, whose names carry the generic arguments).
FUNCTIONS = {
    # rawpost's ECDSA check, called by webpki for each certificate signature and by rawpost for
    # the server's CertificateVerify
    "verify": r"7rawpost3tls4algs.*5Ecdsa.*30SignatureVerificationAlgorithm16verify_signature$",
    # embedded-tls's handling of the server's Certificate (and CertificateVerify) message,
    # which calls rawpost's verifier
    "certificate-step": r"^_RNC.*12embedded_tls10connection21process_server_verify",
    # webpki's path building (EndEntityCert::verify_for_usage)
    "webpki": r"6webpki11verify_cert.*11build_chainCs",
    # the scalar multiplications (RustCrypto primeorder)
    "p256-mul": r"10primeorder10projective.*15ProjectivePoint.*8NistP256E3mul",
    "p384-mul": r"10primeorder10projective.*15ProjectivePoint.*8NistP384E3mul",
}


def function_address(elf, kind):
    if kind == "none":  # a guest that times no function (the mbedtls-rs one)
        return 0
    pattern = re.compile(FUNCTIONS[kind])
    found = [value for name, value, size, is_func in elf.symbols()
             if is_func and size > 0 and pattern.search(name)]
    return found[0] if len(found) == 1 else 0


def tbs_length(der):
    """Length of a certificate's tbsCertificate element (what its issuer signed)."""

    def header(pos):
        tag, first = der[pos], der[pos + 1]
        if tag != 0x30:
            raise ValueError("not a DER SEQUENCE")
        if first < 0x80:
            return 2, first
        n = first & 0x7F
        return 2 + n, int.from_bytes(der[pos + 2:pos + 2 + n], "big")

    outer, _ = header(0)
    head, length = header(outer)
    return head + length


# ---------------------------------------------------------------------------------------------
# What each case must give

# CertificateVerify: 64 spaces, "TLS 1.3, server CertificateVerify", 0, SHA-256 transcript hash.
CERT_VERIFY_LEN = 64 + 34 + 32
P256_KEY, P384_KEY = 65, 97  # SEC1 uncompressed points

SESSION_LINES = [
    "session 1: leaf first, handshake done, 2 requests, ended by close_notify",
    "session 2: leaf first, handshake done, 1 requests, ended by close_notify",
    "session 3: leaf renewed, handshake done, 1 requests, ended by close_notify",
]


def verifications(root_key, cache):
    """The signature verifications each session must run, as (key length, signed file or
    None for CertificateVerify). Webpki checks the chain from the top: the root's signature on
    the intermediate first, then the intermediate's on the leaf. With the signature cache, a
    reconnect verifies only the server's CertificateVerify, and after the server renewed its
    leaf, the new leaf's signature too."""
    full = [(root_key, "intermediate.der"), (P256_KEY, "leaf.der"), (P256_KEY, None)]
    if cache:
        return [full, [(P256_KEY, None)], [(P256_KEY, "leaf-renewed.der"), (P256_KEY, None)]]
    renewed = [(root_key, "intermediate.der"), (P256_KEY, "leaf-renewed.der"), (P256_KEY, None)]
    return [full, full, renewed]


EXPECTED = {
    # case: status, and either the session plan's verifications or the refusal
    "p384": dict(status=0, build="p384", sessions=verifications(P384_KEY, cache=True)),
    "p384-nocache": dict(status=0, build="p384", sessions=verifications(P384_KEY, cache=False)),
    "p256": dict(status=0, build="p256", sessions=verifications(P256_KEY, cache=True)),
    "p256-nocache": dict(status=0, build="p256", sessions=verifications(P256_KEY, cache=False)),
    "p384-unrolled": dict(status=0, build="p384-unrolled",
                          sessions=verifications(P384_KEY, cache=True)),
    # The detail's first name: the top certificate the server sent (its issuer, the root the
    # chain leads to, comes next; then the pinned certificate).
    "unrelated-root": dict(status=1, build="p384", error="ChainNotToPin",
                           detail="rawpost QEMU Test Issuing CA"),
    "leaf-pinned": dict(status=1, build="p384", error="PinnedIsLeaf",
                        detail="rawpost QEMU Test Root (P-384)"),
    # Names the P-384 certificate the build cannot verify.
    "p384-on-p256": dict(status=1, build="p256", error="NeedsP384",
                         detail="rawpost QEMU Test Root (P-384)"),
}

# The depth runs (mode 2, no cache): how often each function is entered in the first session.
# ECDHE takes two scalar multiplications (key pair, shared secret), each ECDSA check two.
for chain, root_key in (("p256", P256_KEY), ("p384", P384_KEY)):
    EXPECTED[f"depth-{chain}-certificate-step"] = dict(status=0, build=chain, entries=5)
    EXPECTED[f"depth-{chain}-webpki"] = dict(status=0, build=chain, entries=1)
EXPECTED["depth-p256-p256-mul"] = dict(status=0, build="p256", entries=2 + 3 * 2)
EXPECTED["depth-p384-p384-mul"] = dict(status=0, build="p384", entries=2)

# The mbedtls-rs guest (examples/qemu-riscv32-mbedtls): the same three sessions with the version
# the server chose, or Mbed TLS's refusal. 0x2700 is MBEDTLS_ERR_X509_CERT_VERIFY_FAILED; the
# verify flags 0x08 MBEDTLS_X509_BADCERT_NOT_TRUSTED (no path to the pinned root).
EXPECTED["mbedtls"] = dict(status=0, build="mbedtls", version="1.3")
EXPECTED["mbedtls-tls12"] = dict(status=0, build="mbedtls", version="1.2")
EXPECTED["mbedtls-p384"] = dict(status=0, build="mbedtls", version="1.3")  # a P-384 root
# Mode 3: rawpost's check_closed over the firmware's ReadReady stream in the first session,
# after the handshake (the session tickets arrived: not data, not closed), after the first POST
# (idle: not closed) and after the POST the server answers and follows with close_notify
# (closed). 0 open, 1 closed.
EXPECTED["mbedtls-readiness"] = dict(status=0, build="mbedtls", version="1.3", probes=[0, 0, 1])
EXPECTED["mbedtls-unrelated-root"] = dict(status=1, build="mbedtls",
                                          error="MbedtlsError(-9984 / 0x2700)", verify=0x08,
                                          alert="UnknownCA")
# embedded-tls (TLS 1.3 only) against the TLS 1.2-only server: no common version. The server
# answers the ClientHello with a protocol_version alert, which embedded-tls reports.
EXPECTED["p256-tls12"] = dict(status=2, build="p256",
                              tls_error="TLS HandshakeAborted(Fatal, ProtocolVersion)")

PLAN = [2, 1, 1]


class Mismatch(Exception):
    pass


def expect(cond, case, what):
    if not cond:
        raise Mismatch(f"{case}: {what}")


def load(work, case):
    d = os.path.join(work, case)
    with open(os.path.join(d, "status")) as f:
        status = int(f.read().strip())
    with open(os.path.join(d, "guest.out"), errors="replace") as f:
        out = f.read()
    lines = [line for line in out.splitlines() if line.startswith("{")]
    with open(os.path.join(d, "server.log"), errors="replace") as f:
        server = f.read().splitlines()
    return d, status, out, (json.loads(lines[-1]) if lines else None), server


def check_mbedtls_case(case, spec, status, result, server, context):
    """A run of the mbedtls-rs guest: the sessions as planned, each in the expected version,
    every POST answered with its exact echo, no allocation refused; or the refusal."""
    # First: a full heap explains any other failure, and so does a wrong readiness answer (a
    # close_notify left unread breaks what follows).
    expect(result.get("allocations_refused") == 0, case,
           f"{result.get('allocations_refused')} allocations refused: the heap arena is too small")
    if "probes" in spec:
        probes = result["sessions"][0]["probes"] if result.get("sessions") else None
        expect(probes == spec["probes"], case,
               f"readiness checks {probes}, expected {spec['probes']} (0 open, 1 closed, "
               f"2 failed, 9 not run)")
    expect(status == spec["status"], case, f"exit status {status}, expected {spec['status']} {context}")
    expect(result.get("exit") == spec["status"], case, f"guest exit {result.get('exit')}")
    if "error" in spec:
        expect(result["ok"] is False, case, "ok should be false")
        expect(result.get("failed_session") == 1 and result.get("phase") == "handshake", case,
               f"failed in session {result.get('failed_session')}, phase {result.get('phase')}")
        expect(result.get("error") == spec["error"], case,
               f"error {result.get('error')!r}, expected {spec['error']!r}")
        expect(result.get("verify") == spec["verify"], case,
               f"verify flags {result.get('verify')}, expected {spec['verify']}")
        expect(len(server) == 1 and "handshake not done" in server[0]
               and server[0].endswith(spec["alert"]), case,
               f"the server should have received the alert {spec['alert']}: {server}")
        return result
    expect(result["ok"] is True, case, f"ok is false {context}")
    expect(server == SESSION_LINES, case, f"server saw {server}")
    sessions = result["sessions"]
    expect(len(sessions) == len(PLAN), case, f"{len(sessions)} sessions")
    for i, (session, posts) in enumerate(zip(sessions, PLAN), 1):
        expect(session["version"] == spec["version"], case,
               f"session {i}: TLS {session['version']}, expected {spec['version']}")
        expect(len(session["posts"]) == posts, case, f"session {i}: {len(session['posts'])} POSTs")
        for post in session["posts"]:
            expect(post["status"] == 200 and post["echo"] is True and post["len"] > 0, case,
                   f"session {i}: POST answered {post}")
    return result


def check_case(work, case, spec):
    d, status, out, result, server = load(work, case)
    context = f"(guest output: {out.strip()[-400:]!r}; server: {server!r})"
    expect(result is not None, case, f"no result line {context}")
    if spec["build"] == "mbedtls":
        return check_mbedtls_case(case, spec, status, result, server, context)
    if "tls_error" in spec:
        expect(status == spec["status"] and result.get("exit") == spec["status"], case,
               f"exit status {status}, expected {spec['status']} {context}")
        expect(result["ok"] is False and result.get("phase") == "handshake", case,
               f"should fail in the handshake {context}")
        expect(result.get("error") == spec["tls_error"], case,
               f"error {result.get('error')!r}, expected {spec['tls_error']!r}")
        expect(len(server) == 1 and "handshake not done" in server[0], case,
               f"the server completed a handshake: {server}")
        return result
    expect(result is not None, case, f"no result line {context}")
    expect(status == spec["status"], case, f"exit status {status}, expected {spec['status']} {context}")
    expect(result.get("exit") == spec["status"], case, f"guest exit {result.get('exit')}")
    if "error" in spec:
        expect(result["ok"] is False, case, "ok should be false")
        expect(result.get("failed_session") == 1, case, f"failed_session {result.get('failed_session')}")
        expect(result.get("phase") == "handshake", case, f"phase {result.get('phase')}")
        expect(result.get("error") == spec["error"], case,
               f"error {result.get('error')!r}, expected {spec['error']!r}")
        expect(result.get("detail", "") == spec["detail"], case,
               f"detail {result.get('detail')!r}, expected {spec['detail']!r}")
        expect(not any("handshake done" in line for line in server), case,
               f"the server completed a handshake: {server}")
        return result
    expect(result["ok"] is True, case, f"ok is false {context}")
    expect(server == SESSION_LINES, case, f"server saw {server}")
    sessions = result["sessions"]
    expect(len(sessions) == len(PLAN), case, f"{len(sessions)} sessions")
    if "entries" in spec:
        for i, session in enumerate(sessions, 1):
            count = len(session["calls"])
            expect(count == spec["entries"], case,
                   f"session {i}: {count} calls timed, expected {spec['entries']}")
        return result
    for i, (session, posts, wanted) in enumerate(zip(sessions, PLAN, spec["sessions"]), 1):
        expect(len(session["posts"]) == posts, case, f"session {i}: {len(session['posts'])} POSTs")
        for post in session["posts"]:
            expect(post["status"] == 200 and post["echo"] is True and post["len"] > 0, case,
                   f"session {i}: POST answered {post}")
        calls = [(c[2], c[3]) for c in session["calls"]]
        want = []
        for key, signed in wanted:
            if signed is None:
                want.append((key, CERT_VERIFY_LEN))
            else:
                with open(os.path.join(d, signed), "rb") as f:
                    want.append((key, tbs_length(f.read())))
        expect(calls == want, case,
               f"session {i}: signature verifications (key, message lengths) {calls}, expected {want}")
    return result


# ---------------------------------------------------------------------------------------------
# Figures


def phases(session):
    """The first session's handshake split into phases (instructions)."""
    io = session["io"]
    # The ClientHello (the ECDHE key pair is made before it is written).
    hello = next(e for e in io if e[0] == "w" and e[1] == 22)
    key_pair = hello[3]
    # The ServerHello record (header type 22, then its content): the shared secret and the
    # handshake keys are computed before the next record is read.
    i = next(k for k, e in enumerate(io) if e[0] == "r" and e[1] == 22 and e[2] == 5)
    shared = io[i + 2][3] - io[i + 1][4]
    calls = [c[1] - c[0] for c in session["calls"]]
    total = session["handshake"]["insns"]
    return {
        "key_exchange": key_pair + shared,
        "root_signature": calls[0],
        "leaf_signature": calls[1],
        "cert_verify": calls[2],
        "rest": total - key_pair - shared - sum(calls),
        "total": total,
    }


def v0_name(symbol):
    """The last identifier of a v0-mangled path (`_RNvCs…_20rawpost_qemu_riscv324HTTP` →
    `HTTP`), or the symbol itself."""
    m = re.match(r"_RNvC(?:s[0-9A-Za-z]*_)?", symbol)
    if not m:
        return symbol
    rest, name = symbol[m.end():], symbol
    while rest:
        digits = re.match(r"\d+", rest)
        if not digits:
            break
        length = int(digits.group())
        name, rest = rest[digits.end():digits.end() + length], rest[digits.end() + length:]
    return name


def p384_code(elf):
    """Bytes of code specific to P-384: functions of the p384 crate and generic code
    instantiated for NistP384 (v0 names), and the largest of them."""
    funcs = [(size, v0_function(name)) for name, _value, size, is_func in elf.symbols()
             if is_func and size > 0 and ("4p384" in name or "8NistP384" in name)]
    funcs.sort(reverse=True)
    return sum(size for size, _ in funcs), funcs[:3]


def v0_function(symbol):
    """A short readable name for a v0 symbol: its last identifiers joined with `::` (a plain
    scan for `<length><identifier>`, enough for these names)."""
    names, i = [], 0
    while i < len(symbol):
        crate = re.match(r"Cs[0-9A-Za-z]*_", symbol[i:])  # a crate's disambiguator
        if crate:
            i += crate.end()
            continue
        digits = re.match(r"[0-9]+", symbol[i:])
        if not digits:
            i += 1
            continue
        start = i + digits.end()
        ident = symbol[start:start + int(digits.group())]
        if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", ident) and len(ident) == int(digits.group()):
            if ident not in names and ident not in ("core", "ops", "arith", "arithmetic"):
                names.append(ident)
            i = start + len(ident)
        else:
            i += 1
    return "::".join(names[-3:])


def sizes(elf):
    text, rodata = elf.section_size(".text"), elf.section_size(".rodata")
    data, bss = elf.section_size(".data"), elf.section_size(".bss")
    statics = {}
    for name, value, size, is_func in elf.symbols():
        # The program's RAM region (memory.x); LLVM's merged-globals aliases are left out.
        if not is_func and size > 0 and 0x80400000 <= value < 0x80440000 \
                and not name.startswith((".", "$")):
            statics[v0_name(name)] = size
    return {"text": text, "rodata": rodata, "data": data, "bss": bss,
            "flash": text + rodata + data, "static_ram": data + bss, "statics": statics}


def figures(work, results):
    fig = {}
    for chain in ("p256", "p384"):
        r = results[chain]
        s1, s2, s3 = r["sessions"]
        elf = sizes(Elf(os.path.join(work, f"{chain}.elf")))
        fig[chain] = {
            "phases": phases(s1),
            "reconnect": s2["handshake"]["insns"],
            "reconnect_nocache": results[f"{chain}-nocache"]["sessions"][1]["handshake"]["insns"],
            "first_nocache": results[f"{chain}-nocache"]["sessions"][0]["handshake"]["insns"],
            "renewed": s3["handshake"]["insns"],
            "post_first": s1["posts"][0]["insns"],
            "post_second": s1["posts"][1]["insns"],
            "close": s1["close"]["insns"],
            "stack_handshake": max(s["handshake"]["stack"] for s in (s1, s2, s3)),
            "stack_handshake_nocache": max(
                s["handshake"]["stack"] for s in results[f"{chain}-nocache"]["sessions"]),
            "stack_post": max(p["stack"] for s in (s1, s2, s3) for p in s["posts"]),
            "stack_close": max(s["close"]["stack"] for s in (s1, s2, s3)),
            "stack_peak": r["stack_peak"],
            "task_future": r["task_future"],
            "open_future": r["open_future"],
            **elf,
        }
        fig[chain]["ram_total"] = elf["static_ram"] + r["stack_peak"]

        def entry_depth(function):
            calls = results[f"depth-{chain}-{function}"]["sessions"][0]["calls"]
            return max(c[4] for c in calls)

        # The chain's signature checks are the deepest calls of rawpost's ECDSA check.
        verify = max(c[4] for c in s1["calls"])
        fig[chain]["depths"] = {
            "certificate_step": entry_depth("certificate-step"),
            "webpki": entry_depth("webpki"),
            "verify": verify,
            "mul": entry_depth(f"{chain}-mul"),
        }
        with open(os.path.join(work, chain, "root.der"), "rb") as f:
            fig[chain]["anchor"] = len(f.read())
    statics = fig["p384"]["statics"]
    if sum(statics.values()) != fig["p384"]["static_ram"]:
        raise Mismatch(f"the statics {statics} do not add up to .data + .bss")
    fig["p384"]["p384_code"] = p384_code(Elf(os.path.join(work, "p384.elf")))
    unrolled = sizes(Elf(os.path.join(work, "p384-unrolled.elf")))
    fig["unrolled"] = {
        "flash": unrolled["flash"],
        "handshake": results["p384-unrolled"]["sessions"][0]["handshake"]["insns"],
    }
    return fig


def mbedtls_figures(work, results):
    """The mbedtls-rs guest's figures, per server version (the same ELF for both)."""
    elf = Elf(os.path.join(work, "mbedtls.elf"))
    size = sizes(elf)
    fig = {}
    for version, case in (("tls13", "mbedtls"), ("tls12", "mbedtls-tls12")):
        r = results[case]
        s1, s2, s3 = r["sessions"]
        # The heap arena is a static of the guest (src/heap.rs): counted as heap, not as the
        # program's static RAM. Check it is the .bss symbol the guest says it is.
        arena = [sz for _name, value, sz, is_func in elf.symbols()
                 if not is_func and value == r["heap_arena_start"] and sz == r["heap_arena"]]
        if not arena:
            raise Mismatch(f"{case}: no static of {r['heap_arena']} bytes at the heap arena's address")
        static_ram = size["static_ram"] - r["heap_arena"]
        fig[version] = {
            "handshake": s1["handshake"]["insns"],
            "reconnect": s2["handshake"]["insns"],
            "renewed": s3["handshake"]["insns"],
            "post_first": s1["posts"][0]["insns"],
            "post_second": s1["posts"][1]["insns"],
            "close": s1["close"]["insns"],
            "stack_handshake": max(s["handshake"]["stack"] for s in (s1, s2, s3)),
            "stack_post": max(p["stack"] for s in (s1, s2, s3) for p in s["posts"]),
            "stack_peak": r["stack_peak"],
            "task_future": r["task_future"],
            "heap_peak": r["heap_peak"],
            "heap_session": s1["handshake"]["heap_after"],
            "heap_anchor": r["heap_anchor"],
            "heap_arena": r["heap_arena"],
            "static_ram": static_ram,
            "flash": size["flash"],
            "ram_total": static_ram + r["heap_peak"] + r["stack_peak"],
        }
    s1 = results["mbedtls-p384"]["sessions"][0]
    fig["p384"] = {
        "handshake": s1["handshake"]["insns"],
        "stack_handshake": s1["handshake"]["stack"],
        "heap_peak": results["mbedtls-p384"]["heap_peak"],
    }
    return fig


def n(value):
    return f"{value:,}"


STACKS_START = "<!-- qemu-stacks:start (bash .ci/qemu --write-docs) -->"
STACKS_END = "<!-- qemu-stacks:end -->"


def stacks_table(fig, mb):
    """embedded-tls and mbedtls-rs side by side: the same POSTs, the same P-256 chain, one run."""
    a, t3, t2 = fig["p256"], mb["tls13"], mb["tls12"]
    rows = [
        ("handshake, verified (instructions)", a["phases"]["total"], t3["handshake"], t2["handshake"]),
        ("reconnect: a new full handshake (embedded-tls without rawpost's signature cache)",
         a["reconnect_nocache"], t3["reconnect"], t2["reconnect"]),
        ("reconnect with rawpost's signature cache (embedded-tls only)", a["reconnect"], None, None),
        ("JSON POST on the open session, first (instructions)", a["post_first"], t3["post_first"], t2["post_first"]),
        ("JSON POST on the open session, second (instructions)", a["post_second"], t3["post_second"], t2["post_second"]),
        ("close_notify (instructions)", a["close"], t3["close"], t2["close"]),
        ("stack of the handshake, below the task (bytes)", a["stack_handshake"], t3["stack_handshake"], t2["stack_handshake"]),
        ("stack of a POST (bytes)", a["stack_post"], t3["stack_post"], t2["stack_post"]),
        ("peak stack of the whole run, the task's future included (bytes)", a["stack_peak"], t3["stack_peak"], t2["stack_peak"]),
        ("heap high-water mark (bytes; embedded-tls and rawpost allocate nothing)", 0, t3["heap_peak"], t2["heap_peak"]),
        ("heap held by an open session, pinned root included (bytes)", 0, t3["heap_session"], t2["heap_session"]),
        ("static RAM, .data + .bss (bytes; mbedtls-rs: without its heap arena)", a["static_ram"], t3["static_ram"], t2["static_ram"]),
        ("**RAM total**: static RAM + heap high-water mark + peak stack (bytes)", a["ram_total"], t3["ram_total"], t2["ram_total"]),
        ("flash, .text + .rodata + .data (bytes)", a["flash"], t3["flash"], t2["flash"]),
    ]
    out = ["| RV32IMC under QEMU, P-256 chain, one run | embedded-tls 0.19, TLS 1.3 | mbedtls-rs 0.3, TLS 1.3 | mbedtls-rs 0.3, TLS 1.2 |",
           "|---|---:|---:|---:|"]
    for label, *values in rows:
        cells = ["" if v is None else n(v) for v in values]
        if label.startswith("**"):
            cells = [f"**{c}**" if c else c for c in cells]
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    facts = [
        f"- mbedtls-rs's handshake runs {t3['handshake'] / a['phases']['total']:.2f} times "
        f"embedded-tls's instructions in TLS 1.3 and {t2['handshake'] / a['phases']['total']:.2f} "
        f"times in TLS 1.2; its handshake needs {n(a['stack_handshake'] - t3['stack_handshake'])} "
        f"bytes less stack and {n(t3['heap_peak'])} bytes of heap.",
        f"- With a P-384 root (root P-384 → intermediate P-256 → leaf P-256), mbedtls-rs's TLS "
        f"1.3 handshake runs {n(mb['p384']['handshake'])} instructions "
        f"({mb['p384']['handshake'] / t3['handshake']:.2f} times its P-256 one; same build, "
        f"{n(mb['p384']['stack_handshake'])} bytes of stack, heap high-water mark "
        f"{n(mb['p384']['heap_peak'])}); embedded-tls with rawpost's `p384` feature runs "
        f"{n(fig['p384']['phases']['total'])} (a build {n(fig['p384']['flash'] - a['flash'])} "
        f"bytes larger).",
        f"- The mbedtls-rs guest's heap arena is {n(t3['heap_arena'])} bytes (not counted above: "
        f"the high-water mark is); the pinned root, parsed once, keeps {n(t3['heap_anchor'])} of "
        f"them for the whole run.",
        f"- Flash: the mbedtls-rs guest is {n(t3['flash'] - a['flash'])} bytes larger; its Mbed TLS "
        f"is mbedtls-rs-sys's prebuilt library, the `tls` profile (TLS 1.2 and 1.3 with every "
        f"cipher suite, curve and RSA compiled in), of which the linker keeps what is referred "
        f"to.",
    ]
    return "\n".join(out) + "\n\n" + "\n".join(facts) + "\n"


def tables(fig):
    a, b = fig["p256"], fig["p384"]
    pa, pb = a["phases"], b["phases"]
    rows = [
        "| RV32IMC instructions (QEMU, exact) | P-256 root | P-384 root |",
        "|---|---:|---:|",
        f"| key exchange: ECDHE P-256 key pair and shared secret (with ClientHello, ServerHello, handshake keys) | {n(pa['key_exchange'])} | {n(pb['key_exchange'])} |",
        f"| the root's signature on the intermediate (P-256 / P-384 key) | {n(pa['root_signature'])} | {n(pb['root_signature'])} |",
        f"| the intermediate's signature on the leaf (P-256) | {n(pa['leaf_signature'])} | {n(pb['leaf_signature'])} |",
        f"| the server's CertificateVerify signature (P-256) | {n(pa['cert_verify'])} | {n(pb['cert_verify'])} |",
        f"| the rest: parsing, path validation, hashing, AES-GCM, key schedule | {n(pa['rest'])} | {n(pb['rest'])} |",
        f"| **handshake, verified** | **{n(pa['total'])}** | **{n(pb['total'])}** |",
        f"| reconnect to the same server, signature cache on | {n(a['reconnect'])} | {n(b['reconnect'])} |",
        f"| reconnect, no signature cache | {n(a['reconnect_nocache'])} | {n(b['reconnect_nocache'])} |",
        f"| reconnect after the server renewed its leaf certificate, cache on | {n(a['renewed'])} | {n(b['renewed'])} |",
        f"| JSON POST on the open session (first, with the session tickets; second) | {n(a['post_first'])}; {n(a['post_second'])} | {n(b['post_first'])}; {n(b['post_second'])} |",
        f"| close (close_notify) | {n(a['close'])} | {n(b['close'])} |",
        f"| handshake with sha2's unrolled rounds (not `force-soft-compact`) | | {n(fig['unrolled']['handshake'])} |",
    ]
    names = {"TLS_READ": "TLS read buffer", "TLS_WRITE": "TLS write buffer",
             "HTTP": "rawpost's buffer", "BODY": "response body", "SIGNATURES": "signature cache"}
    statics = ", ".join(f"{names.get(k, k)} {n(v)}"
                        for k, v in sorted(b["statics"].items(), key=lambda kv: -kv[1]))
    mem = [
        "| bytes | P-256 root | P-384 root |",
        "|---|---:|---:|",
        f"| stack of the handshake, below the task | {n(a['stack_handshake'])} | {n(b['stack_handshake'])} |",
        f"| the same without the signature cache | {n(a['stack_handshake_nocache'])} | {n(b['stack_handshake_nocache'])} |",
        f"| stack of a POST | {n(a['stack_post'])} | {n(b['stack_post'])} |",
        f"| stack of close | {n(a['stack_close'])} | {n(b['stack_close'])} |",
        f"| the task's future (on the stack here; `open` alone: {n(b['open_future'])}) | {n(a['task_future'])} | {n(b['task_future'])} |",
        f"| peak stack of the whole run (task future included) | {n(a['stack_peak'])} | {n(b['stack_peak'])} |",
        f"| static RAM (.data + .bss): {statics} | {n(a['static_ram'])} | {n(b['static_ram'])} |",
        f"| **RAM total** (static RAM + peak stack) | **{n(a['ram_total'])}** | **{n(b['ram_total'])}** |",
        f"| flash (.text + .rodata + .data) | {n(a['flash'])} | {n(b['flash'])} |",
        f"| flash with sha2's unrolled rounds instead of `force-soft-compact` | | {n(fig['unrolled']['flash'])} |",
        f"| pinned root certificate (DER; in flash with `include_bytes!`) | {n(a['anchor'])} | {n(b['anchor'])} |",
    ]
    da, db = a["depths"], b["depths"]

    def parts(f, d):
        return [d["certificate_step"], d["webpki"] - d["certificate_step"],
                d["verify"] - d["webpki"], d["mul"] - d["verify"],
                f["stack_handshake"] - d["mul"], f["stack_handshake"]]

    labels = [
        "embedded-tls's handshake, down to its Certificate step (`Connection` open, key schedule, records)",
        "embedded-tls's Certificate step, with rawpost's verifier inlined in it",
        "rustls-webpki's path building",
        "rawpost's ECDSA check, with RustCrypto's `verify_prehash` inlined",
        "the curve's scalar multiplication (RustCrypto `primeorder`)",
        "**peak: the stack of the handshake, below the task**",
    ]
    stack = ["| stack at the deepest point of the handshake, bytes | P-256 root | P-384 root |",
             "|---|---:|---:|"]
    for label, x, y in zip(labels, parts(a, da), parts(b, db)):
        if label.startswith("**"):
            stack.append(f"| {label} | **{n(x)}** | **{n(y)}** |")
        else:
            stack.append(f"| {label} | {n(x)} | {n(y)} |")
    unrolled = fig["unrolled"]
    kib = 1024
    facts = [
        f"- Pinning a P-384 root instead of a P-256 one costs {n(b['flash'] - a['flash'])} bytes "
        f"of flash, {n(pb['total'] - pa['total'])} instructions per full handshake and "
        f"{n(b['stack_handshake'] - a['stack_handshake'])} bytes of stack.",
        f"- With the signature cache, a reconnect to the same server runs "
        f"{100 * b['reconnect'] / pb['total']:.0f} % of a full handshake's instructions with a "
        f"P-384 root ({100 * a['reconnect'] / pa['total']:.0f} % with a P-256 root); the first "
        f"handshake pays {n(pb['total'] - b['first_nocache'])} instructions more for it "
        f"(hashing the signed certificates).",
        f"- P-384's own code in the P-384 build: {n(b['p384_code'][0])} bytes (functions of the "
        f"`p384` crate and generic code instantiated for `NistP384`); the largest: "
        + ", ".join(f"`{name}` {n(size)}" for size, name in b["p384_code"][1]) + ".",
        f"- sha2's `force-soft-compact` rounds save {n(unrolled['flash'] - b['flash'])} bytes of "
        f"flash; with them a handshake runs {n(abs(pb['total'] - unrolled['handshake']))} "
        f"{'fewer' if pb['total'] < unrolled['handshake'] else 'more'} instructions.",
        f"- Goals: stack of the handshake at most 8 KiB: "
        f"{'met' if b['stack_handshake'] <= 8 * kib else 'not met'} ({n(b['stack_handshake'])} "
        f"bytes, P-384 root); RAM total at most 32 KiB: "
        f"{'met' if b['ram_total'] <= 32 * kib else 'not met'} ({n(b['ram_total'])}); reconnect "
        f"at most 45 M instructions: {'met' if b['reconnect'] <= 45_000_000 else 'not met'} "
        f"({n(b['reconnect'])}).",
    ]
    return ("\n".join(rows) + "\n\n" + "\n".join(mem) + "\n\n" + "\n".join(stack) + "\n\n"
            + "\n".join(facts) + "\n")


START, END = "<!-- qemu-figures:start (bash .ci/qemu --write-docs) -->", "<!-- qemu-figures:end -->"


def firmware_figure(path, stack, write, name="TLS_HANDSHAKE_STACK"):
    """A firmware sizes its main stack from a constant: TLS_HANDSHAKE_STACK (embedded-tls, the
    P-384 handshake's) or MBEDTLS_HANDSHAKE_STACK (mbedtls-rs, the larger of TLS 1.3 and 1.2)."""
    with open(path) as f:
        text = f.read()
    pattern = rf"const {name}: usize = ([0-9_]+);"
    m = re.search(pattern, text)
    if not m:
        return [f"{path}: no `const {name}: usize = …;`"]
    if int(m.group(1).replace("_", "")) == stack:
        return []
    if not write:
        return [f"{path}: {name} is {m.group(1)}, measured {stack:_}"]
    with open(path, "w") as f:
        f.write(text[:m.start(1)] + f"{stack:_}" + text[m.end(1):])
    print(f"wrote {name} = {stack:_} into {path}")
    return []


def docs(paths, table, write, start=START, end=END):
    stale = []
    for path in paths:
        with open(path) as f:
            text = f.read()
        i, j = text.find(start), text.find(end)
        if i < 0 or j < i:
            stale.append(f"{path}: no {start} ... {end} block")
            continue
        new = text[:i + len(start)] + "\n" + table + text[j:]
        if new != text:
            if write:
                with open(path, "w") as f:
                    f.write(new)
                print(f"wrote the tables into {path}")
            else:
                stale.append(f"{path}: its tables differ from the figures measured now")
    return stale


def report(work, mode, paths):
    stacks_paths = []
    if "--stacks" in paths:
        i = paths.index("--stacks")
        paths, stacks_paths = paths[:i], paths[i + 1:]
    results, problems = {}, []
    for case, spec in EXPECTED.items():
        try:
            results[case] = check_case(work, case, spec)
            print(f"ok    {case}")
        except Mismatch as e:
            problems.append(str(e))
            print(f"FAIL  {e}")
        except (OSError, ValueError, KeyError, IndexError, StopIteration) as e:
            problems.append(f"{case}: {type(e).__name__}: {e}")
            print(f"FAIL  {case}: {type(e).__name__}: {e}")
    if problems:
        return 1
    try:
        fig = figures(work, results)
        mb = mbedtls_figures(work, results)
    except Mismatch as e:
        print(f"FAIL  {e}")
        return 1
    table = tables(fig)
    stacks = stacks_table(fig, mb)
    print()
    print(table)
    print(stacks)
    for chain in ("p256", "p384"):
        f = fig[chain]
        print(f"{chain}: .text {n(f['text'])}, .rodata {n(f['rodata'])}, .data {n(f['data'])}, "
              f".bss {n(f['bss'])}; P-384 costs {n(fig['p384']['flash'] - fig['p256']['flash'])} "
              f"bytes of flash; compact SHA-2 saves "
              f"{n(fig['unrolled']['flash'] - fig['p384']['flash'])}")
    write = mode == "--write-docs"
    stale = docs([p for p in paths if p.endswith(".md")], table, write)
    for path in (p for p in paths if p.endswith(".rs")):
        stale += firmware_figure(path, fig["p384"]["stack_handshake"], write)
    stale += docs([p for p in stacks_paths if p.endswith(".md")], stacks, write,
                  STACKS_START, STACKS_END)
    mbedtls_stack = max(mb["tls13"]["stack_handshake"], mb["tls12"]["stack_handshake"])
    for path in (p for p in stacks_paths if p.endswith(".rs")):
        stale += firmware_figure(path, mbedtls_stack, write, "MBEDTLS_HANDSHAKE_STACK")
    if stale:
        for s in stale:
            print(f"FAIL  {s} (run: bash .ci/qemu --write-docs)")
        return 1
    b = fig["p384"]
    summary = {
        "ok": True,
        "handshake_insns": b["phases"]["total"],
        "post_insns": b["post_first"],
        "stack_peak_handshake": b["stack_handshake"],
        "static_ram": b["static_ram"],
        "ram_total": b["ram_total"],
        "flash": b["flash"],
        # mbedtls-rs (examples/qemu-riscv32-mbedtls), P-256 chain: the POSTs verified over TLS
        # 1.3 and over TLS 1.2 (cases mbedtls and mbedtls-tls12 passed: a failed case ends the
        # run before this line), then the TLS 1.3 run's figures: the first session's handshake,
        # its first POST, the deepest handshake stack below the task, the heap's high-water
        # mark, static RAM (without the heap arena) + heap high-water mark + peak stack, flash.
        "mbedtls_ok": results["mbedtls"]["ok"] is True,
        "mbedtls_tls12_ok": results["mbedtls-tls12"]["ok"] is True,
        "mbedtls_handshake_insns": mb["tls13"]["handshake"],
        "mbedtls_post_insns": mb["tls13"]["post_first"],
        "mbedtls_stack_peak_handshake": mb["tls13"]["stack_handshake"],
        "mbedtls_heap_peak": mb["tls13"]["heap_peak"],
        "mbedtls_ram_total": mb["tls13"]["ram_total"],
        "mbedtls_flash": mb["tls13"]["flash"],
    }
    # The last line, an interface: exactly these keys, in this order, in this format (the
    # first seven as before issue 19, then the mbedtls_ ones).
    print(json.dumps(summary, separators=(", ", ":")))
    return 0


def main(argv):
    if len(argv) in (3, 4) and argv[1] == "symbol":
        print(hex(function_address(Elf(argv[2]), argv[3] if len(argv) == 4 else "verify")))
        return 0
    if len(argv) >= 4 and argv[1] == "report" and argv[3] in ("--check-docs", "--write-docs"):
        return report(argv[2], argv[3], argv[4:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
