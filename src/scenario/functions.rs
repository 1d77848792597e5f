//! The names of the pure functions a scenario can call (`!call [NAME, ARG...]`, an option's
//! `apply: NAME`), their arities, and parsing them: part of the scenario language. What each
//! does is the resolver's (`resolve::functions`), as NixOS modules name `builtins` and `lib`
//! functions that Nix evaluates.

/// A function `!call` and `apply` know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    /// `toString x`: strings as they are, integers in decimal, `true` as `"1"`, `false` and
    /// `null` as `""`, lists joined with spaces.
    ToString,
    /// `stringLength s`: bytes.
    StringLength,
    /// `length l`.
    Length,
    /// `lessThan a b` (`a < b`): numbers, or strings by their bytes.
    LessThan,
    /// `!b`.
    Not,
    /// `a && b`.
    And,
    /// `a || b`.
    Or,
    /// `a == b`.
    Equal,
    /// `a + b` (integers).
    Add,
    /// `a - b` (integers).
    Sub,
    /// `elem x l`.
    Elem,
    /// `lib.unique l`: the first of each value, in order.
    Unique,
    /// `lib.sort lessThan l` (`builtins.sort builtins.lessThan`), stable.
    Sort,
    /// `concatStringsSep sep l`.
    ConcatStringsSep,
    /// `concatStrings l`.
    ConcatStrings,
    /// `attrNames s`, sorted.
    AttrNames,
}

const ALL: &[(&str, Func, usize)] = &[
    ("toString", Func::ToString, 1),
    ("stringLength", Func::StringLength, 1),
    ("length", Func::Length, 1),
    ("lessThan", Func::LessThan, 2),
    ("not", Func::Not, 1),
    ("and", Func::And, 2),
    ("or", Func::Or, 2),
    ("equal", Func::Equal, 2),
    ("add", Func::Add, 2),
    ("sub", Func::Sub, 2),
    ("elem", Func::Elem, 2),
    ("unique", Func::Unique, 1),
    ("sort", Func::Sort, 1),
    ("concatStringsSep", Func::ConcatStringsSep, 2),
    ("concatStrings", Func::ConcatStrings, 1),
    ("attrNames", Func::AttrNames, 1),
];

impl Func {
    /// The function of a name.
    pub fn parse(name: &str) -> Option<Func> {
        ALL.iter().find(|(n, _, _)| *n == name).map(|(_, f, _)| *f)
    }

    /// Its Nix name.
    pub fn name(self) -> &'static str {
        ALL.iter()
            .find(|(_, f, _)| *f == self)
            .map_or("", |(n, _, _)| n)
    }

    /// How many arguments it takes.
    pub fn arity(self) -> usize {
        ALL.iter()
            .find(|(_, f, _)| *f == self)
            .map_or(0, |(_, _, a)| *a)
    }

    /// Every name, for suggestions and the documentation.
    pub fn names() -> impl Iterator<Item = &'static str> {
        ALL.iter().map(|(n, _, _)| *n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_arities() {
        assert_eq!(Func::parse("stringLength"), Some(Func::StringLength));
        assert_eq!(Func::StringLength.name(), "stringLength");
        assert_eq!(Func::ConcatStringsSep.arity(), 2);
        assert_eq!(Func::parse("strlen"), None);
        assert_eq!(Func::names().count(), ALL.len());
    }
}
