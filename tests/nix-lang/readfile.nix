[ (builtins.readFile ./imported/lib.nix) ]
