# expect: a string longer than
let f = n: s: if n == 0 then s else f (n - 1) (s + s); in { config.x = f 64 "x"; }
