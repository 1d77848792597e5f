# expect: `pkgs`: isoproof does not provide
{ pkgs, ... }: { config.x = pkgs.hello; }
