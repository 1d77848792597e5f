let s = { b = 2; a = 1; c = 3; }; in {
  names = builtins.attrNames s;
  values = builtins.attrValues s;
  has = builtins.hasAttr "a" s;
  get = builtins.getAttr "c" s;
  removed = builtins.removeAttrs s [ "a" "zz" ];
  fromList = builtins.listToAttrs [ { name = "x"; value = 1; } { name = "x"; value = 2; } { name = "y"; value = 3; } ];
  mapped = builtins.mapAttrs (n: v: "${n}=${toString v}") s;
  intersect = builtins.intersectAttrs { a = null; c = null; } s;
  cat = builtins.catAttrs "a" [ { a = 1; } { b = 2; } { a = 3; } ];
  zipped = builtins.zipAttrsWith (n: vs: vs) [ { a = 1; } { a = 2; b = 3; } ];
}
