;; Where operands live: locals and constants read in place, a result
;; retargeted into the local.set that follows it, two moves in a row fused
;; into Mov2, select, globals.
(module
  (global $g (mut i64) (i64.const 0))
  (func (export "retarget") (param $a i32) (param $b i32) (result i32)
    (local $t i32)
    (local.set $t (i32.mul (local.get $a) (local.get $b)))
    (local.tee $t (i32.sub (local.get $t) (i32.const 7)))
    (i32.add (i32.const 3)))
  (func (export "swap") (param $a i32) (param $b i32) (result i32)
    (local $t i32)
    (local.set $t (local.get $a))
    (local.set $a (local.get $b))
    (local.set $b (local.get $t))
    (i32.sub (local.get $a) (local.get $b)))
  (func (export "choose") (param $a f32) (param $b f32) (param $c i32) (result f32)
    (select (local.get $a) (local.get $b) (local.get $c)))
  (func (export "bump") (param $d i64) (result i64)
    (global.set $g (i64.add (global.get $g) (local.get $d)))
    (global.get $g))
  (func (export "unary") (param $x f64) (result i64)
    (i64.trunc_sat_f64_s (f64.sqrt (local.get $x)))))
