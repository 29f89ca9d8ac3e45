;; Compare-and-branch fusion (interp/compare_branch.def): a compare followed
;; by br_if or if becomes one handler; _si when the right operand is a
;; constant, mirrored when the constant is on the left, inverted for `if`
;; and for i32.eqz of a compare, the ...Loop twin on a loop's back edge.
(module
  (func (export "count_up") (param $n i32) (result i32)
    (local $i i32)
    (loop $again
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_s (local.get $i) (local.get $n))))
    (local.get $i))
  (func (export "count_to_100") (result i32)
    (local $i i32)
    (loop $again
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 100))))
    (local.get $i))
  (func (export "mirrored") (param $a i32) (result i32)
    (block $out
      (br_if $out (i32.lt_s (i32.const 5) (local.get $a)))
      (return (i32.const 0)))
    (i32.const 1))
  (func (export "if_inverted") (param $a i64) (param $b i64) (result i32)
    (if (result i32) (i64.gt_u (local.get $a) (local.get $b))
      (then (i32.const 1))
      (else (i32.const 2))))
  (func (export "eqz_of_compare") (param $a i64) (param $b i64) (result i32)
    (block $out
      (br_if $out (i32.eqz (i64.eq (local.get $a) (local.get $b))))
      (return (i32.const 0)))
    (i32.const 1))
  (func (export "float_not_fused") (param $x f64) (result i32)
    (block $out
      (br_if $out (f64.lt (local.get $x) (f64.const 0.5)))
      (return (i32.const 0)))
    (i32.const 1))
  (func (export "plain_condition") (param $c i32) (result i32)
    (block $out
      (br_if $out (local.get $c))
      (return (i32.const 0)))
    (i32.const 1))
  (func (export "constant_condition") (result i32)
    (block $out
      (br_if $out (i32.const 1))
      (return (i32.const 0)))
    (i32.const 1)))
