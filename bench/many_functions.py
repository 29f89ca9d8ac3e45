#!/usr/bin/env python3
"""A module of N tiny functions (issue 18: compile time must grow linearly
with module size, many small functions included).

    bench/many_functions.py N OUT.wasm

Each function adds a constant to its argument and calls the next one, one
in eight through the table, one in four runs a small loop: the shapes of
code a C compiler leaves after inlining (getters, wrappers, short loops).
`_start` calls the first with 0 and exits with the result's low byte, so
the module is a WASI command that every mode can run. Needs wat2wasm.
"""
import subprocess
import sys
import tempfile


def module(n):
    out = ['(module',
           '  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))',
           '  (type $t (func (param i32) (result i32)))',
           f'  (table {n} funcref)',
           '  (memory (export "memory") 1)']
    for i in range(n):
        nxt = f"(call $f{i + 1} (local.get 0))" if i + 1 < n else "(local.get 0)"
        if i % 8 == 7 and i + 1 < n:
            nxt = f"(call_indirect (type $t) (local.get 0) (i32.const {i + 1}))"
        body = f"(i32.add {nxt} (i32.const {i % 1000}))"
        if i % 4 == 3:
            out.append(f"  (func $f{i} (type $t) (local $k i32)"
                       f" (loop $l (local.set 0 (i32.add (local.get 0) (local.get $k)))"
                       f" (br_if $l (i32.lt_u (local.tee $k (i32.add (local.get $k) (i32.const 1)))"
                       f" (i32.const 3)))) {body})")
        else:
            out.append(f"  (func $f{i} (type $t) {body})")
    out.append("  (elem (i32.const 0) " + " ".join(f"$f{i}" for i in range(n)) + ")")
    out.append('  (func (export "_start") (call $exit (i32.and (call $f0 (i32.const 0))'
               ' (i32.const 255)))))')
    return "\n".join(out)


def main():
    n, path = int(sys.argv[1]), sys.argv[2]
    with tempfile.NamedTemporaryFile("w", suffix=".wat") as wat:
        wat.write(module(n))
        wat.flush()
        subprocess.run(["wat2wasm", wat.name, "-o", path], check=True)


if __name__ == "__main__":
    main()
