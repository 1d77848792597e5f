{ lib, ... }:
{
  imports = [
    ({ lib, ... }: {
      options.a = lib.mkOption { type = lib.types.int; };
      options.b = lib.mkOption { type = lib.types.int; };
      options.c = lib.mkOption { type = lib.types.int; default = 2; };
      options.name = lib.mkOption { type = lib.types.str; default = "host"; };
      options.fqdn = lib.mkOption { type = lib.types.str; };
    })
    ({ config, ... }: { a = config.b * 10 + builtins.stringLength config.fqdn; })
    ({ config, lib, ... }: { b = config.c + 1; fqdn = lib.toUpper "${config.name}.example"; })
  ];
}
