# expect: was not found in the Nix search path
{ imports = [ <nixpkgs/nixos/modules/profiles/minimal.nix> ]; }
