let
  a = 1;
  b = a + 1;
  r = rec { x = 1; y = x + 1; z = { w = y; }; };
in [ a b r r.z.w ]
