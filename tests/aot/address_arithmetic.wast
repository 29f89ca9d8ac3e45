;; Address arithmetic that compiled code may rewrite (aot/llvm/access_nowrap.h):
;; addresses `iv + inv` in loops, which wrap around 2^32 to valid addresses,
;; pairs `x` and `x + 4` where only an access proves that the add does not
;; wrap, accesses running off the end of memory, and stores into a range the
;; loop reads from (a carried dependence a vectorized loop must keep). Run in
;; every mode by ctest (aot.address_arithmetic.MODE): the results are the
;; interpreter's, computed by hand. tests/aot/passes.py checks that the
;; passes rewrite these functions.

(module
  (memory 1)
  (data (i32.const 0) "\01\00\00\00\02\00\00\00\03\00\00\00\04\00\00\00"
                      "\05\00\00\00\06\00\00\00\07\00\00\00\08\00\00\00")
  ;; Sum of the i32s at i + inv for i = from, from + 4, ... below to.
  (func (export "sum") (param $inv i32) (param $from i32) (param $to i32) (result i32)
    (local $i i32) (local $acc i32)
    (local.set $i (local.get $from))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $to)))
        (local.set $acc
          (i32.add (local.get $acc) (i32.load (i32.add (local.get $i) (local.get $inv)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $l)))
    (local.get $acc))
  ;; The same two at a time: x = i + inv, then x + 4 (as clang unrolls).
  (func (export "pairs") (param $inv i32) (param $from i32) (param $to i32) (result i32)
    (local $i i32) (local $x i32) (local $acc i32)
    (local.set $i (local.get $from))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $to)))
        (local.set $x (i32.add (local.get $i) (local.get $inv)))
        (local.set $acc (i32.add (local.get $acc) (i32.load (local.get $x))))
        (local.set $acc (i32.add (local.get $acc) (i32.load (i32.add (local.get $x) (i32.const 4)))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $l)))
    (local.get $acc))
  ;; x, then x + 4: the first access proves that x + 4 does not wrap.
  (func (export "adjacent") (param $x i32) (result i32)
    (i32.add (i32.load (local.get $x)) (i32.load (i32.add (local.get $x) (i32.const 4)))))
  ;; x + 4 first, then x: nothing proves x + 4 does not wrap.
  (func (export "pairs_reversed") (param $x i32) (result i32)
    (i32.add (i32.load (i32.add (local.get $x) (i32.const 4))) (i32.load (local.get $x))))
  ;; Adds 100 to each i32 in [dst, dst + 4n) from the one at the same index
  ;; from src, front to back, with both addresses i + inv.
  (func (export "shift") (param $dst i32) (param $src i32) (param $from i32) (param $to i32)
    (local $i i32)
    (local.set $i (local.get $from))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $to)))
        (i32.store (i32.add (local.get $i) (local.get $dst))
          (i32.add (i32.load (i32.add (local.get $i) (local.get $src))) (i32.const 100)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $l))))
  (func (export "get") (param $a i32) (result i32) (i32.load (local.get $a)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  ;; c[j] += 3 * b[j] for j < 64, two elements per iteration as clang
  ;; unrolls a gemm row (matmul.c): the shape the loop vectorizer must see as
  ;; adjacent accesses and check for overlap of b and c at run time.
  (func (export "axpy2") (param $c i32) (param $b i32)
    (local $i i32) (local $x i32) (local $y i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (i32.const 256)))
        (local.set $x (i32.add (local.get $i) (local.get $c)))
        (local.set $y (i32.add (local.get $i) (local.get $b)))
        (i32.store (local.get $x)
          (i32.add (i32.load (local.get $x)) (i32.mul (i32.load (local.get $y)) (i32.const 3))))
        (i32.store (i32.add (local.get $x) (i32.const 4))
          (i32.add (i32.load (i32.add (local.get $x) (i32.const 4)))
                   (i32.mul (i32.load (i32.add (local.get $y) (i32.const 4))) (i32.const 3))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $l))))
  ;; The same with the second element at offset=4 of the first's address,
  ;; as clang writes struct fields and unrolled array pairs.
  (func (export "axpy2_offset") (param $c i32) (param $b i32)
    (local $i i32) (local $x i32) (local $y i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (i32.const 256)))
        (local.set $x (i32.add (local.get $i) (local.get $c)))
        (local.set $y (i32.add (local.get $i) (local.get $b)))
        (i32.store (local.get $x)
          (i32.add (i32.load (local.get $x)) (i32.mul (i32.load (local.get $y)) (i32.const 3))))
        (i32.store offset=4 (local.get $x)
          (i32.add (i32.load offset=4 (local.get $x))
                   (i32.mul (i32.load offset=4 (local.get $y)) (i32.const 3))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $l))))
  ;; m[base + 4k] = start + k for k < n.
  (func (export "fill") (param $base i32) (param $n i32) (param $start i32)
    (local $k i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $k) (local.get $n)))
        (i32.store (i32.add (local.get $base) (i32.shl (local.get $k) (i32.const 2)))
          (i32.add (local.get $start) (local.get $k)))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $l))))
  ;; The sum of (k + 1) * m[base + 4k] for k < n: order-sensitive.
  (func (export "checksum") (param $base i32) (param $n i32) (result i32)
    (local $k i32) (local $s i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $k) (local.get $n)))
        (local.set $s (i32.add (local.get $s)
          (i32.mul (i32.add (local.get $k) (i32.const 1))
                   (i32.load (i32.add (local.get $base) (i32.shl (local.get $k) (i32.const 2)))))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $l)))
    (local.get $s))
  ;; Polls (not address arithmetic, but the same passes' file): rows sums
  ;; 256-element rows until it reaches a zero row's first element; its inner
  ;; loop is bounded, so it polls before it starts, right after the outer
  ;; header's poll: ElidePolls drops that one. grown_sum's call before its
  ;; loop keeps the poll before the loop.
  (func (export "rows") (param $p i32) (result i32)
    (local $s i32) (local $i i32)
    (block $done
      (loop $outer
        (br_if $done (i32.eqz (i32.load (local.get $p))))
        (local.set $i (i32.const 0))
        (loop $inner
          (local.set $s (i32.add (local.get $s)
            (i32.load (i32.add (local.get $p) (local.get $i)))))
          (local.set $i (i32.add (local.get $i) (i32.const 4)))
          (br_if $inner (i32.lt_u (local.get $i) (i32.const 1024))))
        (local.set $p (i32.add (local.get $p) (i32.const 1024)))
        (br $outer)))
    (local.get $s))
  (func (export "grown_sum") (param $p i32) (result i32)
    (local $s i32) (local $i i32)
    (drop (memory.grow (i32.const 0)))
    (loop $inner
      (local.set $s (i32.add (local.get $s)
        (i32.load (i32.add (local.get $p) (local.get $i)))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br_if $inner (i32.lt_u (local.get $i) (i32.const 1024))))
    (local.get $s)))

(assert_return (invoke "sum" (i32.const 0) (i32.const 0) (i32.const 32)) (i32.const 36))
;; i + inv wraps: i = 16 .. 44 with inv = -16 reads addresses 0 .. 28.
(assert_return (invoke "sum" (i32.const -16) (i32.const 16) (i32.const 48)) (i32.const 36))
(assert_return (invoke "sum" (i32.const -4) (i32.const 4) (i32.const 36)) (i32.const 36))
(assert_return (invoke "sum" (i32.const 65520) (i32.const 0) (i32.const 16)) (i32.const 0))
(assert_trap (invoke "sum" (i32.const 65528) (i32.const 0) (i32.const 16))
  "out of bounds memory access")
(assert_return (invoke "pairs" (i32.const -16) (i32.const 16) (i32.const 48)) (i32.const 36))
(assert_return (invoke "pairs" (i32.const 0) (i32.const 0) (i32.const 32)) (i32.const 36))
(assert_trap (invoke "pairs" (i32.const 65528) (i32.const 0) (i32.const 16))
  "out of bounds memory access")
(assert_trap (invoke "pairs" (i32.const 65532) (i32.const 0) (i32.const 8))
  "out of bounds memory access")
;; x = -4: x + 4 wraps to 0 (valid), then x itself is out of bounds.
(assert_trap (invoke "pairs_reversed" (i32.const -4)) "out of bounds memory access")
(assert_return (invoke "pairs_reversed" (i32.const 0)) (i32.const 3))
(assert_return (invoke "adjacent" (i32.const 8)) (i32.const 7))
(assert_trap (invoke "adjacent" (i32.const 65532)) "out of bounds memory access")
;; Each store feeds the next load: m[k] = m[k-1] + 100 for k = 1 .. 7, with
;; wrapping addresses dst = i - 12, src = i - 16 for i = 16 .. 40.
(assert_return (invoke "shift" (i32.const -12) (i32.const -16) (i32.const 16) (i32.const 44)))
(assert_return (invoke "get" (i32.const 4)) (i32.const 101))
(assert_return (invoke "get" (i32.const 28)) (i32.const 701))
;; Then m[k] = m[k-2] + 100 for k = 2 .. 7, without wrapping: m is 1 101 101
;; 201 201 301 301 401 (a loop that read ahead of its stores would see 601).
(assert_return (invoke "shift" (i32.const 8) (i32.const 0) (i32.const 0) (i32.const 24)))
(assert_return (invoke "get" (i32.const 8)) (i32.const 101))
(assert_return (invoke "get" (i32.const 16)) (i32.const 201))
(assert_return (invoke "get" (i32.const 28)) (i32.const 401))
;; tern's memories stop one page short of 4 GiB (wasm::kMaxRuntimePages).
(assert_return (invoke "grow" (i32.const 65535)) (i32.const -1))
(assert_return (invoke "grow" (i32.const 0)) (i32.const 1))
;; axpy2: b at 1024 (1, 2, ...), c elsewhere or on b.
;; Expected sums from the sequential definition (one element after another).
;; Disjoint: c at 2048 (100, 101, ...).
(assert_return (invoke "fill" (i32.const 1024) (i32.const 64) (i32.const 1)))
(assert_return (invoke "fill" (i32.const 2048) (i32.const 64) (i32.const 100)))
(assert_return (invoke "axpy2" (i32.const 2048) (i32.const 1024)))
(assert_return (invoke "checksum" (i32.const 2048) (i32.const 64)) (i32.const 563680))
;; c two elements ahead of b: each iteration reads what the one before wrote,
;; which a vector loop without its overlap check would read too early.
(assert_return (invoke "fill" (i32.const 1024) (i32.const 80) (i32.const 1)))
(assert_return (invoke "axpy2" (i32.const 1032) (i32.const 1024)))
(assert_return (invoke "checksum" (i32.const 1024) (i32.const 80)) (i32.const 727469224))
;; c two elements behind b, and c on b.
(assert_return (invoke "fill" (i32.const 1024) (i32.const 80) (i32.const 1)))
(assert_return (invoke "axpy2" (i32.const 1024) (i32.const 1032)))
(assert_return (invoke "checksum" (i32.const 1024) (i32.const 80)) (i32.const 454680))
(assert_return (invoke "fill" (i32.const 1024) (i32.const 64) (i32.const 1)))
(assert_return (invoke "axpy2" (i32.const 1024) (i32.const 1024)))
(assert_return (invoke "checksum" (i32.const 1024) (i32.const 64)) (i32.const 357760))
;; axpy2_offset gives axpy2's sums.
(assert_return (invoke "fill" (i32.const 1024) (i32.const 64) (i32.const 1)))
(assert_return (invoke "fill" (i32.const 2048) (i32.const 64) (i32.const 100)))
(assert_return (invoke "axpy2_offset" (i32.const 2048) (i32.const 1024)))
(assert_return (invoke "checksum" (i32.const 2048) (i32.const 64)) (i32.const 563680))
(assert_return (invoke "fill" (i32.const 1024) (i32.const 80) (i32.const 1)))
(assert_return (invoke "axpy2_offset" (i32.const 1032) (i32.const 1024)))
(assert_return (invoke "checksum" (i32.const 1024) (i32.const 80)) (i32.const 727469224))
(assert_return (invoke "fill" (i32.const 1024) (i32.const 80) (i32.const 1)))
(assert_return (invoke "axpy2_offset" (i32.const 1024) (i32.const 1032)))
(assert_return (invoke "checksum" (i32.const 1024) (i32.const 80)) (i32.const 454680))
;; rows: 1 .. 256 | 257 .. 512 | then a zero row (memory at 6144 is zero).
(assert_return (invoke "rows" (i32.const 16384)) (i32.const 0))
(assert_return (invoke "fill" (i32.const 4096) (i32.const 512) (i32.const 1)))
(assert_return (invoke "rows" (i32.const 4096)) (i32.const 131328))
(assert_return (invoke "grown_sum" (i32.const 4096)) (i32.const 32896))
