# expect: file 'nixos-hardware/lenovo' was not found in the Nix search path
{ imports = [ <nixos-hardware/lenovo> ]; }
