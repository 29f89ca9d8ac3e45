;; memory.atomic.wait32 needs its address aligned to 4, not 8 (the
;; interpreter once ran every wait32 as a wait64, which trapped on an
;; address that is a multiple of 4 but not of 8).
(module
  (memory 1 1 shared)
  (func (export "init") (i32.store (i32.const 4) (i32.const 5)))
  (func (export "wait32") (param $addr i32) (param $expected i32) (result i32)
    (memory.atomic.wait32 (local.get $addr) (local.get $expected) (i64.const 0)))
  (func (export "wait64") (param $addr i32) (param $expected i64) (result i32)
    (memory.atomic.wait64 (local.get $addr) (local.get $expected) (i64.const 0))))
(invoke "init")
(assert_return (invoke "wait32" (i32.const 4) (i32.const 0)) (i32.const 1))
(assert_return (invoke "wait32" (i32.const 4) (i32.const 5)) (i32.const 2))
(assert_return (invoke "wait32" (i32.const 12) (i32.const 0)) (i32.const 2))
(assert_trap (invoke "wait32" (i32.const 6) (i32.const 0)) "unaligned atomic")
(assert_return (invoke "wait64" (i32.const 0) (i64.const 0)) (i32.const 1))
(assert_return (invoke "wait64" (i32.const 8) (i64.const 0)) (i32.const 2))
(assert_trap (invoke "wait64" (i32.const 4) (i64.const 0)) "unaligned atomic")
