#!/usr/bin/env python3
"""Lists every call to a panic function left in a riscv32 ELF after optimization, and where
each one comes from, through inlining (the ELF needs debug info).

    python3 .ci/panic-sites.py ELF [--allow-coroutine-guards]

A site is attributed to the innermost source location that has a line number: rawpost's own
code (`src/`), the size harness (`benches/size/`), a dependency (its crate name), or — at line
0 of an `async fn` — the guard the compiler puts in every coroutine against being polled
after it completed (`async fn resumed after completion`), which no source code can remove.

Exit status 1 if any site is rawpost's or the harness's (or a coroutine guard, unless
`--allow-coroutine-guards`). Needs llvm-objdump and llvm-addr2line.
"""
import collections
import re
import subprocess
import sys

PANICS = re.compile(
    r"core::panicking::panic(_fmt|_bounds_check|_const)?$|slice_index_fail|slice_.*_index_len_fail"
    r"|len_mismatch_fail|unwrap_failed|expect_failed|panic_nounwind"
)


def disassemble(elf):
    out = subprocess.run(
        ["llvm-objdump", "-d", "--demangle", "--no-show-raw-insn", elf],
        check=True, capture_output=True, text=True,
    ).stdout
    return out.splitlines()


def panic_calls(lines):
    """(call address, calling function, panic function) for every call to a panic function."""
    syms = {}
    for line in lines:
        m = re.match(r"^([0-9a-f]+) <(.*)>:$", line)
        if m:
            syms[int(m.group(1), 16)] = m.group(2)
    panics = {a: n for a, n in syms.items() if PANICS.search(n)}
    sites, fn, pending = [], None, None
    for line in lines:
        m = re.match(r"^([0-9a-f]+) <(.*)>:$", line)
        if m:
            if not m.group(2).startswith(".L"):
                fn = m.group(2)
            pending = None
            continue
        m = re.match(r"^\s+([0-9a-f]+):\s+(\S+)\s*(.*)$", line)
        if not m:
            continue
        addr, op, args = int(m.group(1), 16), m.group(2), m.group(3)
        target = None
        if op == "auipc":
            reg, imm = (x.strip() for x in args.split(","))
            pending = (addr, reg, int(imm, 0))
            continue
        if op == "jalr" and pending:
            mm = re.search(r"(-?\d+)\((\w+)\)", args)
            if mm and mm.group(2) == pending[1]:
                target = pending[0] + (pending[2] << 12) + int(mm.group(1))
                addr = pending[0]
        elif re.match(r"^(c\.)?(j|jal|beqz|bnez|beq|bne|blt|bge|bltu|bgeu)$", op):
            mm = re.search(r"0x([0-9a-f]+)", args)
            if mm:
                target = int(mm.group(1), 16)
        pending = None
        if target in panics and fn not in panics.values():
            sites.append((addr, fn, panics[target]))
    return sites


def origin(elf, addr):
    """Who made the call: the innermost inlined frame outside the standard library (whose
    frames are the panicking operation itself, e.g. slicing), as (kind, "file:line").

    A frame at line 0 inside an `async fn` body (a `{{closure}}`) is the compiler's guard
    against polling a completed coroutine."""
    out = subprocess.run(
        ["llvm-addr2line", "-e", elf, "-f", "-C", "-i", hex(addr)],
        check=True, capture_output=True, text=True,
    ).stdout.splitlines()
    frames = []
    for i in range(0, len(out) - 1, 2):
        path, _, line = out[i + 1].rpartition(":")
        line = line.split()[0] if line else "0"
        frames.append((out[i], path, int(line) if line.isdigit() else 0))
    for n, (func, path, line) in enumerate(frames):
        if "/rustc/" in path:
            continue
        closure = "{{closure}}" in func or "$u7b$$u7b$closure$u7d$$u7d$" in func
        if line == 0 and n == 0 and (closure or func.startswith(".L")):
            return "coroutine guard", path.split("/work/main/")[-1]
        if line == 0:
            continue
        where = f"{path.split('/work/main/')[-1]}:{line}"
        if "/benches/size/" in path:
            return "harness", where
        if "/registry/src/" in path:
            return re.search(r"/registry/src/[^/]+/([^/]+)/", path).group(1), where
        return "rawpost", where
    return "core (not inlined)", frames[0][1].rpartition("/")[2] if frames else "?"


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    allow_guards = "--allow-coroutine-guards" in sys.argv
    failed = False
    for elf in args:
        sites = panic_calls(disassemble(elf))
        counts = collections.Counter()
        print(f"{elf}: {len(sites)} panic call site(s)")
        for addr, fn, target in sites:
            kind, where = origin(elf, addr)
            counts[kind] += 1
            bad = kind in ("rawpost", "harness") or (kind == "coroutine guard" and not allow_guards)
            failed |= bad
            print(f"  {'FAIL' if bad else 'ok  '} {kind:18} {where}  ({target.split('::')[-1]})")
        print("  by origin: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
