[ (toString ./.) (toString ./sub/../x.nix) (toString (./. + "/y")) (builtins.pathExists ./paths.nix) (builtins.pathExists ./missing.nix) (baseNameOf ./paths.nix) ]
