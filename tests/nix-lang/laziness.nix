let s = { used = 1; unused = throw "never forced"; }; l = [ 1 (throw "not this") ]; in
[ s.used (builtins.length l) (builtins.head l) (builtins.attrNames s) ((x: 5) (abort "unused argument")) ]
