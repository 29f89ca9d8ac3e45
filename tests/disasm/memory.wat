;; Memory accesses: a load whose address is an i32.add fused with it
;; (_add_ss, _add_si), constant addresses folded (_abs), plain stores, and
;; the bulk instructions.
(module
  (memory 1)
  (func (export "load_sum") (param $p i32) (param $i i32) (result i32)
    (i32.load offset=8 (i32.add (local.get $p) (local.get $i))))
  (func (export "load_sum_imm") (param $p i32) (result i64)
    (i64.load16_s (i32.add (local.get $p) (i32.const 16))))
  (func (export "absolute") (result f64)
    (f64.store (i32.const 64) (f64.const 2.5))
    (f64.load offset=4 (i32.const 60)))
  (func (export "store") (param $p i32) (param $v i64)
    (i64.store32 offset=12 (local.get $p) (local.get $v)))
  (func (export "bulk") (param $d i32) (param $s i32) (param $n i32) (result i32)
    (memory.copy (local.get $d) (local.get $s) (local.get $n))
    (memory.fill (local.get $d) (i32.const 0) (local.get $n))
    (drop (memory.grow (i32.const 1)))
    (memory.size)))
