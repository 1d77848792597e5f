# expect: is not one of the NixOS modules isoproof carries
{ modulesPath, ... }: { imports = [ "${modulesPath}/profiles/minimal.nix" ]; }
