#!/usr/bin/env python3
"""Prints the flash and RAM sections of ELF files (any architecture, no dependencies).

    python3 .ci/elf-sizes.py FIRMWARE.elf [MORE.elf ...]

For each file: the sizes in bytes of .text, .rodata, .data and .bss, then the code placed in
IRAM (.rwtext and .trap on the ESP32 RISC-V chips), and two sums:

  flash  = .text + .rodata + .data + IRAM code   (what the image stores; .data is copied to RAM)
  RAM    = .data + .bss + IRAM code               (static RAM; the heap is a static in .bss)

A section name also counts its `.name.*` variants (`.rwtext.wifi`, `.data.wifi`, ...). The
`*_dummy` sections of the esp-hal linker scripts only reserve address space and are left out.
Works where GNU `size` does not know the architecture (riscv32 here); `llvm-size -A FILE` prints
the same numbers per section.
"""

import struct
import sys

COLUMNS = [".text", ".rodata", ".data", ".bss"]
IRAM = [".rwtext", ".trap"]


def sections(path):
    """Returns {name: size} for every section of the ELF file at `path`."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF":
        raise ValueError(f"{path}: not an ELF file")
    is64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    if is64:
        shoff, = struct.unpack_from(end + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", data, 0x3A)
    else:
        shoff, = struct.unpack_from(end + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", data, 0x2E)

    def header(i):
        off = shoff + i * shentsize
        if is64:
            name, _type, _flags, _addr, offset, size = struct.unpack_from(end + "IIQQQQ", data, off)
        else:
            name, _type, _flags, _addr, offset, size = struct.unpack_from(end + "IIIIII", data, off)
        return name, offset, size

    _, str_off, str_size = header(shstrndx)
    names = data[str_off:str_off + str_size]
    out = {}
    for i in range(1, shnum):
        name_off, _, size = header(i)
        name = names[name_off:names.index(b"\0", name_off)].decode()
        out[name] = out.get(name, 0) + size
    return out


def total(secs, base):
    return sum(size for name, size in secs.items()
               if (name == base or name.startswith(base + ".")) and not name.endswith("_dummy"))


def main(paths):
    if not paths:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    head = ["file"] + COLUMNS + ["IRAM code", "flash", "RAM"]
    rows = []
    for path in paths:
        secs = sections(path)
        cols = [total(secs, c) for c in COLUMNS]
        iram = sum(total(secs, c) for c in IRAM)
        text, rodata, data, bss = cols
        rows.append([path] + cols + [iram, text + rodata + data + iram, data + bss + iram])
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join(str(v).ljust(widths[0]) if i == 0 else str(v).rjust(widths[i])
                        for i, v in enumerate(r)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
