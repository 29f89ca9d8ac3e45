;; Calls pass arguments in place (the callee's frame starts at the first
;; argument's slot); stable points at entry, loop headers and call sites;
;; br_table with and without copies; multiple results.
(module
  (type $binop (func (param i32 i32) (result i32)))
  (table 2 funcref)
  (elem (i32.const 0) $add $pair_sum)
  (func $add (type $binop) (i32.add (local.get 0) (local.get 1)))
  (func $pair (param $a i32) (result i32 i32) (local.get $a) (i32.const 1))
  (func $pair_sum (type $binop)
    (i32.add (call $pair (local.get 0))))
  (func (export "direct") (param $x i32) (result i32)
    (i32.mul (local.get $x) (call $add (local.get $x) (i32.const 10))))
  (func (export "indirect") (param $x i32) (param $k i32) (result i32)
    (call_indirect (type $binop) (local.get $x) (local.get $x) (local.get $k)))
  (func (export "dispatch") (param $k i32) (result i32)
    (block $c (result i32)
      (block $b (result i32)
        (block $a (result i32)
          (br_table $a $b $c (i32.const 30) (local.get $k)))
        (i32.add (i32.const 1))))
    (i32.mul (i32.const 2))))
