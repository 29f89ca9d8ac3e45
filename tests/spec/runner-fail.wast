;; Assertions that must FAIL on a correct runtime, between a few that pass.
;; tests/spec/check-runner.sh expects exactly the lines marked FAIL to be
;; reported, and the totals 4 passed, 8 failed.

(module
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "div") (param i32 i32) (result i32) (i32.div_u (local.get 0) (local.get 1)))
  (func (export "nop")))
(assert_return (invoke "add" (i32.const 1) (i32.const 2)) (i32.const 3))
(assert_return (invoke "add" (i32.const 1) (i32.const 2)) (i32.const 4)) ;; FAIL: wrong value
(assert_trap (invoke "div" (i32.const 1) (i32.const 1)) "integer divide by zero") ;; FAIL: no trap
(assert_trap (invoke "div" (i32.const 1) (i32.const 0)) "integer divide by zero")
(assert_invalid (module (func (result i32) (i32.const 0))) "type mismatch") ;; FAIL: valid
(assert_trap (invoke "div" (i32.const 1) (i32.const 0)) "integer overflow") ;; FAIL: other trap
(assert_malformed (module binary "\00asm\01\00\00\00") "unexpected end") ;; FAIL: well-formed
(assert_unlinkable (module (func)) "unknown import") ;; FAIL: links
(assert_trap (module (func)) "unreachable") ;; FAIL: instantiates
(assert_exhaustion (invoke "nop") "call stack exhausted") ;; FAIL: returns
(assert_return (invoke "nop"))
