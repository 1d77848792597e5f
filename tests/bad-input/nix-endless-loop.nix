# expect: steps
{ config.x = builtins.foldl' (a: b: a + b) 0 (builtins.genList (i: builtins.length (builtins.genList (j: j) 1000000)) 1000000); }
