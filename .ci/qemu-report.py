#!/usr/bin/env python3
"""The checking and reporting half of .ci/qemu (standard library only).

    qemu-report.py symbol GUEST.elf [KIND]
        prints the entry address of the function the guest is to time (each call's
        instructions and stack depth at entry), or 0 if it is not there; KIND is one of
        FUNCTIONS below (default: verify, rawpost's ECDSA `verify_signature`)
    qemu-report.py report WORKDIR (--check-docs | --write-docs) FILE...
        checks every case's outcome against EXPECTED below, prints the figures and the tables,
        compares the tables with those in each FILE.md (or writes them there) and the
        firmware's TLS_HANDSHAKE_STACK in each FILE.rs with the measured figure (or writes it),
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


def check_case(work, case, spec):
    d, status, out, result, server = load(work, case)
    context = f"(guest output: {out.strip()[-400:]!r}; server: {server!r})"
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


def n(value):
    return f"{value:,}"


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


def firmware_figure(path, stack, write):
    """The firmware sizes its main stack from TLS_HANDSHAKE_STACK: the P-384 handshake's."""
    with open(path) as f:
        text = f.read()
    pattern = r"const TLS_HANDSHAKE_STACK: usize = ([0-9_]+);"
    m = re.search(pattern, text)
    if not m:
        return [f"{path}: no `const TLS_HANDSHAKE_STACK: usize = …;`"]
    if int(m.group(1).replace("_", "")) == stack:
        return []
    if not write:
        return [f"{path}: TLS_HANDSHAKE_STACK is {m.group(1)}, measured {stack:_}"]
    with open(path, "w") as f:
        f.write(text[:m.start(1)] + f"{stack:_}" + text[m.end(1):])
    print(f"wrote TLS_HANDSHAKE_STACK = {stack:_} into {path}")
    return []


def docs(paths, table, write):
    stale = []
    for path in paths:
        with open(path) as f:
            text = f.read()
        i, j = text.find(START), text.find(END)
        if i < 0 or j < i:
            stale.append(f"{path}: no {START} ... {END} block")
            continue
        new = text[:i + len(START)] + "\n" + table + text[j:]
        if new != text:
            if write:
                with open(path, "w") as f:
                    f.write(new)
                print(f"wrote the tables into {path}")
            else:
                stale.append(f"{path}: its tables differ from the figures measured now")
    return stale


def report(work, mode, paths):
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
    fig = figures(work, results)
    table = tables(fig)
    print()
    print(table)
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
    }
    # The last line, an interface: exactly these keys, in this order, in this format.
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
