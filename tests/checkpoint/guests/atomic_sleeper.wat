;; A single-threaded program that sleeps in memory.atomic.wait32 on its
;; shared memory: it prints "waiting", waits 4 s, then 5 times 100 ms, and
;; prints "tick N: R" after each wait, R the wait's result (nobody notifies
;; it: 2, timed-out). A checkpoint taken during the long wait stops it at
;; the wait (frame kind atomic-wait, the WAIT section holding thread 0 with
;; the time it had left); the program continued or restored waits out the
;; rest of that time and goes on.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1 1 shared)
  (data (i32.const 64) "tick 0: 0\n")
  (data (i32.const 80) "waiting\n")
  (func $write (param $at i32) (param $len i32)
    (i32.store (i32.const 16) (local.get $at))
    (i32.store (i32.const 20) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24))))
  (func $print_tick (param $n i32) (param $result i32)
    (i32.store8 (i32.const 69) (i32.add (i32.const 48) (local.get $n)))
    (i32.store8 (i32.const 72) (i32.add (i32.const 48) (local.get $result)))
    (call $write (i32.const 64) (i32.const 10)))
  (func (export "_start")
    (local $i i32)
    (call $write (i32.const 80) (i32.const 8))
    (loop $ticks
      ;; $i stays on the stack below the wait's operands.
      (call $print_tick
        (local.get $i)
        (memory.atomic.wait32 (i32.const 0) (i32.const 0)
          (select (i64.const 4000000000) (i64.const 100000000) (i32.eqz (local.get $i)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $ticks (i32.lt_u (local.get $i) (i32.const 6))))))
