let s = { a = 1; b.c = 2; b.d = 3; "e f" = 4; ${"dyn" + "amic"} = 5; ${null} = 6; }; in
[ s s.b.c (s ? a) (s ? b.c) (s ? z) (s.z or "default") (s.b.z or 7) ({ a = 1; } // { a = 2; b = 3; }) ]
