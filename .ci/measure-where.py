#!/usr/bin/env python3
"""Where the instructions of an exchange and the bytes of a binary go, by source function.

    python3 .ci/measure-where.py instructions BINARY CALLGRIND_OUT N [TOP]
    python3 .ci/measure-where.py flash ELF BASELINE_ELF [TOP]

`instructions`: a callgrind profile (`--dump-instr=yes`) of N exchanges. Every instruction of
BINARY that callgrind counted is attributed to the innermost inlined frame whose source is
outside the Rust standard library (rawpost's `src/`, the harness in `benches/`, or a dependency
such as httparse), named by the enclosing `fn` in that source file. A call from BINARY to the C
library's memory functions (memcpy, memmove, memset) counts, inclusively, at its call site.
Figures are per exchange (the profile's counts divided by N).

`flash`: the `.text` of ELF (built with debug info) attributed the same way, two bytes at a time,
and its `.text`/`.rodata` symbols (`llvm-nm --size-sort`) that BASELINE_ELF, the same program
without the HTTP crate, does not have (or has smaller).

Needs llvm-symbolizer, llvm-nm and llvm-size.
"""
import collections
import os
import re
import subprocess
import sys


def parse_callgrind(path, main_obj):
    """{address in main_obj: [Ir, ...]} of self cost, plus the inclusive cost of calls from
    main_obj to the C library's memory and string functions (memcpy, memmove, memset, bcmp,
    ...), charged to the call site. Also the event names."""
    names = {"ob": {}, "fn": {}}
    cost = collections.defaultdict(lambda: None)
    events = []
    ob = None
    cob = None
    cfn = None
    pending_call = False
    last = [0, 0]

    def name(kind, rest):
        m = re.match(r"\((\d+)\)(?: (.*))?$", rest)
        if not m:
            return rest
        if m.group(2) is not None:
            names[kind][m.group(1)] = m.group(2)
        return names[kind].get(m.group(1), rest)

    def position(tok, i):
        if tok == "*":
            return last[i]
        if tok[0] in "+-":
            v = last[i] + int(tok, 0)
        else:
            v = int(tok, 0)
        last[i] = v
        return v

    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            if line.startswith("events:"):
                events = line.split()[1:]
                continue
            if line.startswith("ob="):
                ob = name("ob", line[3:])
                continue
            if line.startswith("cob="):
                cob = name("ob", line[4:])
                continue
            if line.startswith("cfn="):
                cfn = name("fn", line[4:])
                continue
            if line.startswith("fn="):
                name("fn", line[3:])
                continue
            if line.startswith("calls="):
                pending_call = True
                continue
            if not (line[0].isdigit() or line[0] in "+-*"):
                continue  # fl=, fi=, fe=, summary, totals, ...
            toks = line.split()
            addr = position(toks[0], 0)
            position(toks[1], 1)
            vals = [int(t) for t in toks[2:]]
            if pending_call:
                callee = cob if cob is not None else ob
                pending_call = False
                cob = None
                if ob != main_obj or callee == main_obj or not LIBC_MEM.match(cfn or ""):
                    continue
            elif ob != main_obj:
                continue
            cur = cost[addr]
            if cur is None:
                cost[addr] = vals + [0] * (len(events) - len(vals))
            else:
                for i, v in enumerate(vals):
                    cur[i] += v
    return {a: c for a, c in cost.items() if c is not None}, events


LIBC_MEM = re.compile(r"^_*(mem|str|bcmp|wmem)")
FN = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+(\w+)")
IMPL = re.compile(r"^(?:\s*)impl\b(?:<[^{]*?>)?\s+(?:.*?\bfor\s+)?([A-Za-z_][\w:]*)")
_sources = {}


def enclosing(path, line):
    """`Type::fn` (or `fn`) of the nearest `fn` at or above `line` in the source file."""
    if path not in _sources:
        try:
            with open(path) as f:
                _sources[path] = f.read().splitlines()
        except OSError:
            _sources[path] = None
    lines = _sources[path]
    if not lines or line <= 0:
        return None
    fn_name, fn_indent = None, None
    for i in range(min(line, len(lines)) - 1, -1, -1):
        text = lines[i]
        if fn_name is None:
            m = FN.match(text)
            if m:
                fn_name = m.group(1)
                fn_indent = len(text) - len(text.lstrip())
                if fn_indent == 0:
                    return fn_name
            continue
        m = IMPL.match(text)
        if m and len(text) - len(text.lstrip()) < fn_indent:
            return f"{m.group(1).split('::')[-1]}::{fn_name}"
    return fn_name


def defined_at(path, func):
    """The line after `fn func` in the source file (for a frame without a line), or 0."""
    enclosing(path, 1)
    lines = _sources.get(path) or []
    name = demangle(func).split("::")[-1]
    for i, text in enumerate(lines):
        m = FN.match(text)
        if m and m.group(1) == name:
            return i + 2
    return 0


def short(path):
    for marker in ("/registry/src/", "/benches/", "/src/"):
        if marker in path:
            tail = path.split(marker, 1)[1]
            if marker == "/registry/src/":
                return tail.split("/", 1)[1]
            if marker == "/benches/":
                return "benches/" + tail
            return "src/" + tail
    return os.path.basename(path)


def function_symbols(binary):
    """Sorted [(address, size, name)] of the binary's function symbols."""
    out = subprocess.run(["llvm-nm", "-S", "-C", "--defined-only", binary], check=True,
                         capture_output=True, text=True).stdout
    result = []
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4 and parts[2] in "tTwW" and not parts[3].startswith(".L"):
            result.append((int(parts[0], 16), int(parts[1], 16), unescape(parts[3])))
    return sorted(result)


def containing(syms, addr):
    """The name of the function symbol that contains addr, or None."""
    import bisect
    i = bisect.bisect_right(syms, (addr, float("inf"), "")) - 1
    if i >= 0 and syms[i][0] <= addr < syms[i][0] + max(syms[i][1], 1):
        return syms[i][2]
    return None


def symbolize(binary, addrs):
    """{address: [(function, file, line), innermost first]}. A frame whose function the debug
    info does not name (a local label such as `.L0`) is named by the symbol that contains it."""
    syms = function_symbols(binary)
    out = subprocess.run(
        ["llvm-symbolizer", f"--obj={binary}", "--inlining", "--functions=linkage"],
        input="".join(f"0x{a:x}\n" for a in addrs),
        check=True, capture_output=True, text=True,
    ).stdout
    result = {}
    for addr, block in zip(addrs, out.split("\n\n")):
        lines = block.strip("\n").splitlines()
        frames = []
        for i in range(0, len(lines) - 1, 2):
            m = re.match(r"^(.*):(\d+):(\d+)$", lines[i + 1])
            path, line = (m.group(1), int(m.group(2))) if m else (lines[i + 1], 0)
            func = lines[i]
            if func.startswith(".L") or func == "??":
                func = containing(syms, addr) or func
            frames.append((func, path, line))
        result[addr] = frames
    return result


def unescape(sym):
    """A legacy-mangled Rust symbol that the tools left half demangled, readable."""
    for a, b in (("$LT$", "<"), ("$GT$", ">"), ("$C$", ","), ("$u7b$", "{"), ("$u7d$", "}"),
                 ("$u20$", " "), ("$RF$", "&"), ("$BP$", "*"), ("$u27$", "'"), ("$LP$", "("),
                 ("$RP$", ")"), ("..", "::")):
        sym = sym.replace(a, b)
    sym = re.sub(r"\$u([0-9a-f]{2})\$", lambda m: chr(int(m.group(1), 16)), sym)
    return re.sub(r"^_ZN|17h[0-9a-f]{16}E$", "", sym)


def demangle(sym):
    """The last two path segments of a (legacy-mangled, half-demangled) Rust symbol."""
    sym = unescape(sym)
    sym = re.sub(r"::h[0-9a-f]{16}$", "", sym)
    sym = re.sub(r"<[^<>]*>", "", re.sub(r"<[^<>]*>", "", sym))
    parts = [p for p in sym.split("::") if p and not p.startswith("{")]
    return "::".join(parts[-2:]) or sym


def attribute(frames):
    """(origin, source function) of the innermost frame outside the standard library."""
    for func, path, line in frames:
        if "/rustc/" in path or path.startswith("??"):
            continue
        where = short(path)
        if not line:
            line = defined_at(path, func)
        fn = (enclosing(path, line) if line else None) or demangle(func)
        if "/registry/src/" in path:
            crate = re.sub(r"-\d+(\.\d+)*$", "", where.split("/", 1)[0])
            return crate, f"{where.split('/')[-1]}: {fn}"
        if "/benches/" in path:
            return "harness", f"{where}: {fn}"
        return "rawpost", f"{where}: {fn}"
    if frames and "/rustc/" in frames[-1][1]:
        # Standard library code whose inlining chain was not recorded: the function it was
        # compiled into.
        sym = frames[-1][0]
        crate = sym.split("::", 1)[0]
        origin = "rawpost" if crate == "rawpost" else crate if crate.isidentifier() else "core"
        return origin, demangle(sym) + " (standard library code)"
    return "other", demangle(frames[0][0]) if frames else "?"


def attribute_profile(binary, profile):
    """The profile's first event (Ir) by (origin, source function), and the event names."""
    costs, events = parse_callgrind(profile, os.path.realpath(binary))
    addrs = sorted(costs)
    frames = symbolize(binary, addrs)
    by_fn = collections.Counter()
    for a in addrs:
        by_fn[attribute(frames.get(a, []))] += costs[a][0]
    return by_fn, events


def instructions(binary, profile, n, top):
    by_fn, events = attribute_profile(binary, profile)
    by_origin = collections.Counter()
    for (origin, _), v in by_fn.items():
        by_origin[origin] += v
    total = sum(by_origin.values())
    print(f"{events[0]} per exchange, by origin (total {total / n:,.0f}):")
    for origin, v in by_origin.most_common():
        if v / n >= 0.5:
            print(f"  {v / n:9,.1f}  {origin}")
    print(f"\n{events[0]} per exchange, top {top} source functions (inlined code included):")
    for (origin, fn), v in by_fn.most_common(top):
        print(f"  {v / n:9,.1f}  {100 * v / total:5.1f} %  {origin:8} {fn}")


def sections(elf):
    """{name: (address, size)} of the ELF's sections."""
    out = subprocess.run(["llvm-size", "-A", "-d", elf], check=True, capture_output=True,
                         text=True).stdout
    result = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith("."):
            result[parts[0]] = (int(parts[2]), int(parts[1]))
    return result


def symbols(elf):
    """{name without hash: (size, section type letter)} of sized symbols."""
    out = subprocess.run(["llvm-nm", "--size-sort", "-S", "-C", elf], check=True,
                         capture_output=True, text=True).stdout
    result = {}
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) < 4:
            continue
        name = unescape(re.sub(r"::h[0-9a-f]{16}$", "", parts[3]))
        name = re.sub(r"^\.Lanon\.[0-9a-f]+\.", ".Lanon.", name)
        size, kind = int(parts[1], 16), parts[2]
        old = result.get(name, (0, kind))
        result[name] = (old[0] + size, kind)
    return result


def flash(elf, baseline, top):
    secs, base = sections(elf), sections(baseline)
    flash_of = lambda s: s.get(".text", (0, 0))[1] + s.get(".rodata", (0, 0))[1]
    print(f"{elf}: .text {secs['.text'][1]:,} B, .rodata {secs['.rodata'][1]:,} B; "
          f"minus {baseline}: {flash_of(secs) - flash_of(base):,} B")
    start, size = secs[".text"]
    addrs = list(range(start, start + size, 2))
    frames = symbolize(elf, addrs)
    by_fn = collections.Counter()
    by_origin = collections.Counter()
    for a in addrs:
        origin, fn = attribute(frames.get(a, []))
        width = min(2, start + size - a)
        by_fn[(origin, fn)] += width
        by_origin[origin] += width
    print("\n.text bytes by origin:")
    for origin, v in by_origin.most_common():
        print(f"  {v:7,}  {origin}")
    print(f"\n.text bytes, top {top} source functions (inlined code included):")
    for (origin, fn), v in by_fn.most_common(top):
        print(f"  {v:7,}  {origin:8} {fn}")
    mine, theirs = symbols(elf), symbols(baseline)
    extra = []
    for name, (sz, kind) in mine.items():
        delta = sz - theirs.get(name, (0, kind))[0]
        if delta > 0:
            extra.append((delta, kind, name))
    extra.sort(reverse=True)
    print(f"\nsymbols (llvm-nm --size-sort) not in the baseline or larger, top {top} "
          f"(t: .text, r: .rodata):")
    for delta, kind, name in extra[:top]:
        print(f"  {delta:7,}  {kind}  {name}")
    print(f"  {sum(d for d, _, _ in extra):7,}  in all")


def main():
    args = sys.argv[1:]
    if len(args) >= 4 and args[0] == "instructions":
        instructions(args[1], args[2], int(args[3]), int(args[4]) if len(args) > 4 else 25)
    elif len(args) >= 3 and args[0] == "flash":
        flash(args[1], args[2], int(args[3]) if len(args) > 3 else 25)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
