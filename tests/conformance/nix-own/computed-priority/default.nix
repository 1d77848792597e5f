{ lib, ... }:
{
  imports = [
    ({ lib, ... }: {
      options.strict = lib.mkOption { type = lib.types.bool; default = true; };
      options.level = lib.mkOption { type = lib.types.int; };
      options.flags = lib.mkOption { type = lib.types.listOf lib.types.str; default = [ ]; };
    })
    ({ config, lib, ... }: {
      level = if config.strict then lib.mkForce 1 else 5;
      flags = lib.mkMerge [ [ "a" ] (lib.mkIf (config.strict && config.level < 3) [ "strict" ]) ];
    })
    { level = 3; flags = lib.mkBefore [ "first" ]; }
  ];
}
