{ lib, ... }:
{
  imports = [
    ({ lib, config, ... }: {
      options.params = lib.mkOption {
        type = lib.types.listOf lib.types.str;
        default = [ ];
        apply = ps: lib.concatStringsSep " " (lib.unique ps);
      };
      options.port = lib.mkOption {
        type = lib.types.int;
        default = 80;
        apply = p: p + config.offset;
      };
      options.offset = lib.mkOption { type = lib.types.int; default = 1000; };
      options.users = lib.mkOption {
        type = lib.types.attrsOf lib.types.str;
        default = { };
        apply = us: lib.mapAttrs (n: shell: "${n}:${shell}") us;
      };
      options.cmdline = lib.mkOption { type = lib.types.str; };
    })
    ({ config, ... }: {
      params = [ "quiet" "console=ttyS0" "quiet" ];
      port = 8080;
      users.alice = "/bin/sh";
      cmdline = "${config.params} ${config.users.alice}";
    })
  ];
}
