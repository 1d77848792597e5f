{ config, lib, ... }:
{
  options.mode = lib.mkOption { type = lib.types.str; default = "live"; };
  options.size = lib.mkOption { type = lib.types.int; };
  imports = [
    ({ config, lib, ... }: { size = lib.mkForce 4; })
    ({ config, lib, ... }: { size = if config.mode == "live" then throw "never forced" else 2; })
  ];
}
