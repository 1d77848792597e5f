//! The built-in functions by name and arity: what `builtins` holds (and the primitives
//! `lib.types` is built on). What they do is `builtins.rs`.

macro_rules! builtins {
    ($($variant:ident $name:literal $arity:literal,)*) => {
        /// A built-in function.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum Builtin { $($variant,)* }

        impl Builtin {
            pub(crate) const ALL: &'static [Builtin] = &[$(Builtin::$variant,)*];

            /// Its name under `builtins`.
            pub(crate) fn name(self) -> &'static str {
                match self { $(Builtin::$variant => $name,)* }
            }

            /// How many arguments it takes.
            pub(crate) fn arity(self) -> usize {
                match self { $(Builtin::$variant => $arity,)* }
            }
        }
    };
}

builtins! {
    Abort "abort" 1,
    Add "add" 2,
    All "all" 2,
    Any "any" 2,
    AttrNames "attrNames" 1,
    AttrValues "attrValues" 1,
    BaseNameOf "baseNameOf" 1,
    CatAttrs "catAttrs" 2,
    CompareVersions "compareVersions" 2,
    ConcatLists "concatLists" 1,
    ConcatMap "concatMap" 2,
    ConcatStringsSep "concatStringsSep" 2,
    DeepSeq "deepSeq" 2,
    DirOf "dirOf" 1,
    Div "div" 2,
    Elem "elem" 2,
    ElemAt "elemAt" 2,
    Filter "filter" 2,
    FoldlStrict "foldl'" 3,
    FromJson "fromJSON" 1,
    FunctionArgs "functionArgs" 1,
    GenList "genList" 2,
    GetAttr "getAttr" 2,
    HasAttr "hasAttr" 2,
    HashString "hashString" 2,
    Head "head" 1,
    Import "import" 1,
    IntersectAttrs "intersectAttrs" 2,
    IsAttrs "isAttrs" 1,
    IsBool "isBool" 1,
    IsFloat "isFloat" 1,
    IsFunction "isFunction" 1,
    IsInt "isInt" 1,
    IsList "isList" 1,
    IsNull "isNull" 1,
    IsPath "isPath" 1,
    IsString "isString" 1,
    Length "length" 1,
    LessThan "lessThan" 2,
    ListToAttrs "listToAttrs" 1,
    Map "map" 2,
    MapAttrs "mapAttrs" 2,
    Match "match" 2,
    Mul "mul" 2,
    Partition "partition" 2,
    PathExists "pathExists" 1,
    ReadFile "readFile" 1,
    RemoveAttrs "removeAttrs" 2,
    ReplaceStrings "replaceStrings" 3,
    Seq "seq" 2,
    Sort "sort" 2,
    Split "split" 2,
    StringLength "stringLength" 1,
    Sub "sub" 2,
    Substring "substring" 3,
    Tail "tail" 1,
    Throw "throw" 1,
    ToJson "toJSON" 1,
    ToString "toString" 1,
    Trace "trace" 2,
    TryEval "tryEval" 1,
    TypeOf "typeOf" 1,
    ZipAttrsWith "zipAttrsWith" 2,
    // The primitives `lib.types` is made of (not in Nix's builtins).
    TypeLeaf "__isoproofType" 1,
    TypeApply "__isoproofTypeOf" 2,
    // `pkgs.writeText` and its kin: packages whose content is known.
    WriteText "__isoproofWriteText" 2,
    WriteShellScript "__isoproofWriteShellScript" 2,
}
