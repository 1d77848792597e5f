let x = 1; s = { y = 2; z = 3; }; in { inherit x; inherit (s) y z; w = let inherit (s) y; in y * 10; }
