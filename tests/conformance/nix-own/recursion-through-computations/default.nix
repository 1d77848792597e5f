{ config, lib, ... }:
{
  options.a = lib.mkOption { type = lib.types.int; };
  options.b = lib.mkOption { type = lib.types.int; };
  config.a = config.b + 1;
  config.b = if config.a > 2 then 1 else 0;
}
