# expect: `modulesPath`: isoproof does not provide
{ modulesPath, ... }: { imports = [ "${modulesPath}/installer/cd-dvd/installation-cd-minimal.nix" ]; }
