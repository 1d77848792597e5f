# isoproof's `lib`: the parts of nixpkgs' lib that NixOS modules use, written as nixpkgs
# writes them (lib/modules.nix, lib/options.nix, lib/lists.nix, lib/attrsets.nix,
# lib/strings.nix), over isoproof's builtins. Types are isoproof's own primitives.
let
  inherit (builtins) map filter foldl' length head tail elem concatLists attrNames
    attrValues listToAttrs hasAttr getAttr isAttrs isList isString isFunction substring
    stringLength concatStringsSep genList;

  mkOverride = priority: content: { _type = "override"; inherit priority content; };
  mkOrder = priority: content: { _type = "order"; inherit priority content; };

  fix = f: let x = f x; in x;
  id = x: x;
  const = x: _: x;

  optional = cond: elem: if cond then [ elem ] else [ ];
  optionals = cond: elems: if cond then elems else [ ];
  optionalString = cond: string: if cond then string else "";
  optionalAttrs = cond: as: if cond then as else { };

  nameValuePair = name: value: { inherit name value; };
  mapAttrs' = f: set: listToAttrs (map (attr: f attr set.${attr}) (attrNames set));
  mapAttrsToList = f: attrs: map (name: f name attrs.${name}) (attrNames attrs);
  filterAttrs = pred: set:
    listToAttrs (concatLists (map (name: let v = set.${name}; in if pred name v then [ (nameValuePair name v) ] else [ ]) (attrNames set)));
  genAttrs = names: f: listToAttrs (map (n: nameValuePair n (f n)) names);
  attrByPath = attrPath: default: set:
    if attrPath == [ ] then set
    else let n = head attrPath; in
      if set ? ${n} then attrByPath (tail attrPath) default set.${n} else default;
  hasAttrByPath = attrPath: set:
    if attrPath == [ ] then true
    else let n = head attrPath; in set ? ${n} && hasAttrByPath (tail attrPath) set.${n};
  setAttrByPath = attrPath: value:
    if attrPath == [ ] then value
    else { ${head attrPath} = setAttrByPath (tail attrPath) value; };
  getAttrFromPath = attrPath: set: attrByPath attrPath (throw "cannot find attribute `${concatStringsSep "." attrPath}'") set;
  recursiveUpdateUntil = pred: lhs: rhs:
    let f = attrPath:
      builtins.zipAttrsWith (n: values:
        let here = attrPath ++ [ n ]; in
        if length values == 1 || pred here (head (tail values)) (head values)
        then head values
        else f here values);
    in f [ ] [ rhs lhs ];
  recursiveUpdate = lhs: rhs:
    recursiveUpdateUntil (path: lhs: rhs: !(isAttrs lhs && isAttrs rhs)) lhs rhs;
  foldr = op: nul: list:
    let len = length list; fold' = n: if n == len then nul else op (builtins.elemAt list n) (fold' (n + 1));
    in fold' 0;
  foldl = op: nul: list: foldl' op nul list;
  flatten = x: if isList x then concatLists (map flatten x) else [ x ];
  unique = foldl' (acc: e: if elem e acc then acc else acc ++ [ e ]) [ ];
  last = list: builtins.elemAt list (length list - 1);
  init = list: genList (builtins.elemAt list) (length list - 1);
  range = first: last: if first > last then [ ] else genList (n: first + n) (last - first + 1);
  reverseList = xs: let l = length xs; in genList (n: builtins.elemAt xs (l - n - 1)) l;
  count = pred: foldl' (c: x: if pred x then c + 1 else c) 0;
  findFirst = pred: default: list: let found = filter pred list; in if found == [ ] then default else head found;
  imap0 = f: list: genList (n: f n (builtins.elemAt list n)) (length list);
  imap1 = f: list: genList (n: f (n + 1) (builtins.elemAt list n)) (length list);
  subtractLists = e: filter (x: !(elem x e));
  intersectLists = e: filter (x: elem x e);
  toList = x: if isList x then x else [ x ];
  zipListsWith = f: fst: snd: genList (n: f (builtins.elemAt fst n) (builtins.elemAt snd n)) (if length fst < length snd then length fst else length snd);

  concatStrings = builtins.concatStringsSep "";
  concatMapStrings = f: list: concatStrings (map f list);
  concatMapStringsSep = sep: f: list: concatStringsSep sep (map f list);
  concatImapStringsSep = sep: f: list: concatStringsSep sep (imap1 f list);
  hasPrefix = pref: str: substring 0 (stringLength pref) str == pref;
  hasSuffix = suffix: content:
    let lenContent = stringLength content; lenSuffix = stringLength suffix;
    in lenContent >= lenSuffix && substring (lenContent - lenSuffix) lenContent content == suffix;
  hasInfix = infix: content: builtins.match ".*${escapeRegex infix}.*" "${content}" != null;
  escapeRegex = builtins.replaceStrings
    [ "\\" "^" "$" "." "*" "+" "?" "(" ")" "[" "]" "{" "}" "|" ]
    [ "\\\\" "\\^" "\\$" "\\." "\\*" "\\+" "\\?" "\\(" "\\)" "\\[" "\\]" "\\{" "\\}" "\\|" ];
  removePrefix = prefix: str:
    let preLen = stringLength prefix; in
    if substring 0 preLen str == prefix then substring preLen (stringLength str - preLen) str else str;
  removeSuffix = suffix: str:
    let sufLen = stringLength suffix; sLen = stringLength str; in
    if sufLen <= sLen && suffix == substring (sLen - sufLen) sufLen str then substring 0 (sLen - sufLen) str else str;
  splitString = sep: s:
    let splits = filter isString (builtins.split (escapeRegex (toString sep)) (toString s));
    in map (x: x) splits;
  lowerChars = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
  upperChars = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];
  toLower = builtins.replaceStrings upperChars lowerChars;
  toUpper = builtins.replaceStrings lowerChars upperChars;
  versionOlder = v1: v2: builtins.compareVersions v2 v1 == 1;
  versionAtLeast = v1: v2: !versionOlder v1 v2;
  fileContents = file: removeSuffix "\n" (builtins.readFile file);
  mod = base: int: base - (int * (builtins.div base int));
  boolToString = b: if b then "true" else "false";
  trivial = { inherit id const boolToString mod; };

  types = {
    str = builtins.__isoproofType "str";
    string = builtins.__isoproofType "str";
    int = builtins.__isoproofType "int";
    bool = builtins.__isoproofType "bool";
    float = builtins.__isoproofType "float";
    path = builtins.__isoproofType "path";
    lines = builtins.__isoproofType "lines";
    commas = builtins.__isoproofType "commas";
    envVar = builtins.__isoproofType "envVar";
    anything = builtins.__isoproofType "anything";
    attrs = builtins.__isoproofType "attrs";
    raw = builtins.__isoproofType "raw";
    unspecified = builtins.__isoproofType "unspecified";
    boolByOr = builtins.__isoproofType "boolByOr";
    nonEmptyStr = builtins.__isoproofType "nonEmptyStr";
    singleLineStr = builtins.__isoproofType "singleLineStr";
    port = builtins.__isoproofType "port";
    ints = {
      unsigned = builtins.__isoproofType "ints.unsigned";
      positive = builtins.__isoproofType "ints.positive";
      u8 = builtins.__isoproofType "ints.u8";
      u16 = builtins.__isoproofType "ints.u16";
      u32 = builtins.__isoproofType "ints.u32";
      s8 = builtins.__isoproofType "ints.s8";
      s16 = builtins.__isoproofType "ints.s16";
      s32 = builtins.__isoproofType "ints.s32";
      between = lowest: highest: builtins.__isoproofType "ints.between ${toString lowest} ${toString highest}";
    };
    listOf = builtins.__isoproofTypeOf "listOf";
    nonEmptyListOf = builtins.__isoproofTypeOf "nonEmptyListOf";
    attrsOf = builtins.__isoproofTypeOf "attrsOf";
    lazyAttrsOf = builtins.__isoproofTypeOf "lazyAttrsOf";
    nullOr = builtins.__isoproofTypeOf "nullOr";
    uniq = builtins.__isoproofTypeOf "uniq";
    unique = { message }: builtins.__isoproofTypeOf "unique";
    either = a: b: builtins.__isoproofTypeOf "either" [ a b ];
    oneOf = builtins.__isoproofTypeOf "oneOf";
    enum = builtins.__isoproofTypeOf "enum";
    strMatching = builtins.__isoproofTypeOf "strMatching";
    separatedString = builtins.__isoproofTypeOf "separatedString";
    submodule = builtins.__isoproofTypeOf "submodule";
    package = builtins.__isoproofType "raw";
  };

in {
  inherit mkOverride mkOrder fix id const optional optionals optionalString optionalAttrs
    nameValuePair mapAttrs' mapAttrsToList filterAttrs genAttrs attrByPath hasAttrByPath
    setAttrByPath getAttrFromPath recursiveUpdate recursiveUpdateUntil foldr foldl flatten
    unique last init range reverseList count findFirst imap0 imap1 subtractLists
    intersectLists toList zipListsWith concatStrings concatMapStrings concatMapStringsSep
    concatImapStringsSep hasPrefix hasSuffix hasInfix escapeRegex removePrefix removeSuffix
    splitString toLower toUpper versionOlder versionAtLeast fileContents mod boolToString
    trivial types;
  inherit (builtins) map filter foldl' length head tail elem concatLists attrNames
    attrValues listToAttrs hasAttr getAttr isAttrs isList isString isFunction isInt isBool
    substring stringLength concatStringsSep genList mapAttrs elemAt sort concatMap any all
    toJSON fromJSON replaceStrings match split typeOf seq deepSeq throw abort trace
    removeAttrs intersectAttrs catAttrs compareVersions zipAttrsWith partition;
  toString = builtins.toString;
  attrsets = { inherit mapAttrs' mapAttrsToList filterAttrs genAttrs recursiveUpdate attrByPath setAttrByPath nameValuePair; };
  lists = { inherit optional optionals flatten unique foldr foldl last init range reverseList count findFirst imap0 imap1 subtractLists intersectLists toList; };
  strings = { inherit concatStrings concatMapStrings concatMapStringsSep hasPrefix hasSuffix hasInfix removePrefix removeSuffix splitString toLower toUpper optionalString escapeRegex fileContents; };

  mkIf = condition: content: { _type = "if"; inherit condition content; };
  mkMerge = contents: { _type = "merge"; inherit contents; };
  mkDefault = mkOverride 1000;
  mkImageMediaOverride = mkOverride 60;
  mkForce = mkOverride 50;
  mkVMOverride = mkOverride 10;
  mkOptionDefault = mkOverride 1500;
  mkBefore = mkOrder 500;
  mkAfter = mkOrder 1500;
  mkOption = attrs: attrs // { _type = "option"; };
  mkEnableOption = name: {
    _type = "option";
    default = false;
    example = true;
    description = "Whether to enable ${name}.";
    type = types.bool;
  };
  # nixpkgs' lib/options.nix: the option of a package, `pkgs.NAME` by default (a path of names
  # for `pkgs.a.b`).
  mkPackageOption = pkgs: name: { default ? null, example ? null, extraDescription ? "", nullable ? false, pkgsText ? "pkgs" }:
    let
      path = if builtins.isList name then name else [ name ];
      attr = if default == null then path else if builtins.isList default then default else [ default ];
      shown = concatStringsSep "." path;
    in {
      _type = "option";
      type = if nullable then types.nullOr types.package else types.package;
      default = attrByPath attr (throw "${pkgsText}.${concatStringsSep "." attr} does not exist") pkgs;
      description = "The ${shown} package to use." + optionalString (extraDescription != "") " ${extraDescription}";
    };
  # nixpkgs' lib/modules.nix modules that move, alias or remove an option, as the module a
  # scenario writes with `renamedOptions`, `aliasedOptions` and `removedOptions`.
  mkRenamedOptionModule = from: to: { __isoproofAlias = { kind = "renamedOptions"; inherit from to; }; };
  mkRenamedOptionModuleWith = { sinceRelease ? null, from, to }: mkRenamedOptionModule from to;
  mkAliasOptionModule = from: to: { __isoproofAlias = { kind = "aliasedOptions"; inherit from to; }; };
  mkRemovedOptionModule = optionName: replacementInstructions:
    { __isoproofAlias = { kind = "removedOptions"; from = optionName; to = replacementInstructions; }; };
  literalExpression = text: { _type = "literalExpression"; inherit text; };
  literalMD = text: { _type = "literalMD"; inherit text; };
  literalExample = text: { _type = "literalExpression"; inherit text; };
  mdDoc = x: x;
  modules = { inherit mkOverride mkOrder; };
  options = { };
}
