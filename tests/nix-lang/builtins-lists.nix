{
  map = map (x: x * 2) [ 1 2 3 ];
  filter = builtins.filter (x: x > 1) [ 1 2 3 ];
  elem = [ (builtins.elem 2 [ 1 2 ]) (builtins.elem 5 [ 1 2 ]) ];
  concat = builtins.concatLists [ [ 1 ] [ ] [ 2 3 ] ];
  concatMap = builtins.concatMap (x: [ x x ]) [ 1 2 ];
  foldl = builtins.foldl' (a: b: a + b) 0 [ 1 2 3 4 ];
  genList = builtins.genList (i: i * i) 5;
  sort = builtins.sort builtins.lessThan [ 3 1 2 ];
  sortStable = builtins.sort (a: b: a.k < b.k) [ { k = 1; v = "a"; } { k = 0; v = "b"; } { k = 1; v = "c"; } ];
  all = builtins.all (x: x > 0) [ 1 2 ];
  any = builtins.any (x: x > 1) [ 1 2 ];
  partition = builtins.partition (x: x > 1) [ 1 2 3 ];
}
