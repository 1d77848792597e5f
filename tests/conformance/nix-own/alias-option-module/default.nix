{ lib, ... }:
{
  imports = [
    (lib.mkAliasOptionModule [ "ssh" "keys" ] [ "users" "keys" ])
    ({ lib, ... }: {
      options.users.keys = lib.mkOption { type = lib.types.listOf lib.types.str; default = [ ]; };
      options.warnings = lib.mkOption { type = lib.types.listOf lib.types.str; default = [ ]; };
    })
    { ssh.keys = [ "a" ]; }
    { users.keys = [ "b" ]; }
  ];
}
