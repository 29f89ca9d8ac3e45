;; Inlining in code with stable points (aot/llvm/inline_cost.h): a small
;; wrapper is inlined into its callers although its slow paths (entry poll,
;; unwind, rewind dispatch) would have made it too costly, and a call that
;; only a trap follows (a failure path's `call $report` then `unreachable`)
;; is not, as without stable points. Run in every mode by ctest
;; (aot.inlining.MODE); tests/aot/passes.py checks the inlining in the
;; optimized IR.

(module
  (memory 1)
  ;; Recursive, so never inlined: what the wrapper forwards to.
  (func $count (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (i32.add (call $count (i32.sub (local.get $n) (i32.const 1))) (i32.const 1)))))
  ;; As wasi-libc's malloc around dlmalloc.
  (func $wrap (param $n i32) (result i32)
    (call $count (local.get $n)))
  (func (export "twice") (param $n i32) (result i32)
    (i32.add (call $wrap (local.get $n))
             (call $wrap (i32.add (local.get $n) (i32.const 1)))))
  ;; As a failed allocation's message before abort.
  (func $report (param $n i32)
    (i32.store (i32.const 0) (local.get $n))
    (drop (call $count (local.get $n))))
  (func (export "checked") (param $n i32) (result i32)
    (if (i32.eqz (local.get $n))
      (then (call $report (local.get $n)) (unreachable)))
    (call $count (local.get $n)))
)

(assert_return (invoke "twice" (i32.const 3)) (i32.const 7))
(assert_return (invoke "twice" (i32.const 0)) (i32.const 1))
(assert_return (invoke "checked" (i32.const 5)) (i32.const 5))
(assert_trap (invoke "checked" (i32.const 0)) "unreachable")
