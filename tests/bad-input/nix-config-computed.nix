# expect: config.y is used
{ config, ... }: { config.x = if config.y then 1 else 2; }
