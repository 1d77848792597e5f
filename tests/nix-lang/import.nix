let lib = import ./imported/lib.nix; in [ (lib.double 21) lib.name (import ./imported { x = 2; }) ]
