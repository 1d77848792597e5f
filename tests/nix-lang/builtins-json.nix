{
  to = builtins.toJSON { a = [ 1 "two" null true ]; b = { c = 1.5; }; };
  from = builtins.fromJSON ''{"x": [1, 2.5, "s", null, false], "y": {"z": 3}}'';
  type = [ (builtins.isAttrs { }) (builtins.isList [ ]) (builtins.isString "") (builtins.isInt 1) (builtins.isBool false) (builtins.isFunction (x: x)) (builtins.isFloat 1.0) (builtins.isNull null) (builtins.isPath ./.) ];
  seq = builtins.seq 1 "seq";
  deepSeq = builtins.deepSeq [ 1 ] "deep";
  tryOk = builtins.tryEval 1;
  tryFail = builtins.tryEval (throw "x");
  tryAssert = builtins.tryEval (assert false; 1);
  arith = [ (builtins.add 1 2) (builtins.sub 5 7) (builtins.mul 3 4) (builtins.div 7 2) (builtins.lessThan 1 2) ];
  fargs = builtins.functionArgs ({ a, b ? 1 }: a);
}
