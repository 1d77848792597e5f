# expect: undefined variable 'lib'
{ config.x = lib.mkForce 1; }
