# expect: config.y is used as an `if` condition where the module system cannot know it yet
{ config, ... }: { config = if config.y then { x = 1; } else { }; }
