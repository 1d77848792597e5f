let
  f = x: y: x + y;
  g = { a, b ? 10, ... }: a + b;
  h = args@{ a, ... }: args.c or 0 + a;
  k = { a }@all: builtins.attrNames all;
in [ (f 1 2) (g { a = 1; }) (g { a = 1; b = 2; extra = 3; }) (h { a = 1; c = 5; }) (k { a = 0; }) ]
