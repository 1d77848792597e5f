let x = "let"; s = { x = "with"; y = "y"; }; in
[ (with s; x) (with s; y) (with s; with { y = "inner"; }; y) (let y = "lexical"; in with s; y) ]
