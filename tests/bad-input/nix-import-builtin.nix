# expect: whose modules are imported by listing them in a module's `imports`
{ ... }: { config = import <nixpkgs/nixos/modules/installer/cd-dvd/iso-image.nix>; }
