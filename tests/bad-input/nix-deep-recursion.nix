# expect: nests deeper than
let f = n: 1 + f (n + 1); in { config.x = f 0; }
