{ config, lib, ... }:
{
  options.memory = lib.mkOption { type = lib.types.int; default = 512; };
  options.workers = lib.mkOption { type = lib.types.int; };
  config.workers = assert config.memory >= 1024; config.memory / 256;
}
