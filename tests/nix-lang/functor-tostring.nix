let f = { __functor = self: x: self.base + x; base = 10; }; s = { __toString = self: "S(${self.v})"; v = "v"; }; d = { outPath = "/some/path"; }; in
[ (f 5) "${s}" (toString s) "${d}/bin" ]
