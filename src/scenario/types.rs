//! Option type expressions, in their two spellings: a string in Nix syntax
//! (`listOf (attrsOf str)`, `ints.between 1 10`, `enum [a, b, 3]`) or a one-key mapping
//! (`{attrsOf: {submodule: {options: {...}}}}`). Both give the same [`TypeExpr`]; what a type
//! *means* (check, merge, description) lives in `resolve::types`.

use super::node::{Kind, Node, Span};
use super::Declaration;
use crate::diag::Diagnostic;

/// An option type, as declared.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum TypeExpr {
    /// `str`
    Str,
    /// `int`
    Int,
    /// `bool`
    Bool,
    /// `float`
    Float,
    /// `path`: an absolute path (a string starting with `/`).
    Path,
    /// `lines`, `commas`, `envVar`, `separatedString "s"`.
    Separated(String),
    /// `anything`
    Anything,
    /// `attrs`
    Attrs,
    /// `raw`
    Raw,
    /// `unspecified` (also what an option without a type gets in Nix).
    Unspecified,
    /// `boolByOr`
    BoolByOr,
    /// `nonEmptyStr`
    NonEmptyStr,
    /// `singleLineStr`
    SingleLineStr,
    /// `strMatching "re"`
    StrMatching(String),
    /// `ints.*` and `port`: an int with a range check.
    IntRange(IntRange),
    /// `enum [...]`
    Enum(Vec<EnumValue>),
    /// `listOf T`
    ListOf(Box<TypeExpr>),
    /// `nonEmptyListOf T`
    NonEmptyListOf(Box<TypeExpr>),
    /// `attrsOf T`
    AttrsOf(Box<TypeExpr>),
    /// `lazyAttrsOf T`
    LazyAttrsOf(Box<TypeExpr>),
    /// `nullOr T`
    NullOr(Box<TypeExpr>),
    /// `uniq T` (message empty) or `unique T`.
    Unique(Box<TypeExpr>),
    /// `either A B`; `oneOf [A, B, C]` is `either (either A B) C`, as in Nix.
    Either(Box<TypeExpr>, Box<TypeExpr>),
    /// `{submodule: {options: {...}, freeformType: T}}`
    Submodule(Vec<Declaration>, Option<Box<TypeExpr>>),
}

/// The named integer ranges of `lib.types.ints`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IntRange {
    /// `ints.unsigned`: >= 0.
    Unsigned,
    /// `ints.positive`: > 0.
    Positive,
    /// `ints.u8` .. `ints.u32`, `port` (= u16): n-bit unsigned.
    U(u8),
    /// `ints.s8` .. `ints.s32`: n-bit signed.
    S(u8),
    /// `ints.between lo hi`.
    Between(i64, i64),
}

/// A value an `enum` accepts.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum EnumValue {
    /// A string member.
    Str(String),
    /// An integer member.
    Int(i64),
    /// A boolean member.
    Bool(bool),
}

/// Reads a type from its node (string or one-key mapping).
pub(crate) fn parse_type(
    node: &Node,
    parse_decls: &dyn Fn(&Node) -> Result<Vec<Declaration>, Diagnostic>,
) -> Result<TypeExpr, Diagnostic> {
    match &node.kind {
        Kind::Str(s) => parse_type_str(s, node.span),
        Kind::Map(entries) if entries.len() == 1 => {
            let (k, v) = &entries[0];
            let sub = |v: &Node| parse_type(v, parse_decls);
            let two = |v: &Node| -> Result<Vec<TypeExpr>, Diagnostic> {
                match &v.kind {
                    Kind::List(items) if !items.is_empty() => items.iter().map(sub).collect(),
                    _ => Err(Diagnostic::parse(v.span, format!("`{}` takes a sequence of types", k.name))),
                }
            };
            Ok(match &*k.name {
                "listOf" => TypeExpr::ListOf(Box::new(sub(v)?)),
                "nonEmptyListOf" => TypeExpr::NonEmptyListOf(Box::new(sub(v)?)),
                "attrsOf" => TypeExpr::AttrsOf(Box::new(sub(v)?)),
                "lazyAttrsOf" => TypeExpr::LazyAttrsOf(Box::new(sub(v)?)),
                "nullOr" => TypeExpr::NullOr(Box::new(sub(v)?)),
                "uniq" | "unique" => TypeExpr::Unique(Box::new(sub(v)?)),
                "either" => {
                    let ts = two(v)?;
                    if ts.len() != 2 {
                        return Err(Diagnostic::parse(v.span, "`either` takes exactly two types"));
                    }
                    let mut it = ts.into_iter();
                    TypeExpr::Either(Box::new(it.next().unwrap()), Box::new(it.next().unwrap()))
                }
                "oneOf" => one_of(two(v)?),
                "enum" => match &v.kind {
                    Kind::List(items) => TypeExpr::Enum(
                        items
                            .iter()
                            .map(|i| match &i.kind {
                                Kind::Str(s) => Ok(EnumValue::Str(s.to_string())),
                                Kind::Int(n) => Ok(EnumValue::Int(*n)),
                                Kind::Bool(b) => Ok(EnumValue::Bool(*b)),
                                _ => Err(Diagnostic::parse(i.span, "enum members are strings, integers or booleans")),
                            })
                            .collect::<Result<_, _>>()?,
                    ),
                    _ => return Err(Diagnostic::parse(v.span, "`enum` takes a sequence of values")),
                },
                "strMatching" => match &v.kind {
                    Kind::Str(s) => str_matching(s, v.span)?,
                    _ => return Err(Diagnostic::parse(v.span, "`strMatching` takes a regular expression string")),
                },
                "separatedString" => match &v.kind {
                    Kind::Str(s) => TypeExpr::Separated(s.to_string()),
                    _ => return Err(Diagnostic::parse(v.span, "`separatedString` takes a separator string")),
                },
                "submodule" => {
                    let (opts, freeform) = match &v.kind {
                        Kind::Map(es) => {
                            for (k2, _) in es {
                                if !matches!(&*k2.name, "options" | "freeformType") {
                                    return Err(Diagnostic::parse(k2.span, format!("a submodule has `options` and `freeformType`, found `{}`", k2.name)));
                                }
                            }
                            let opts = match v.get("options") {
                                Some(o) => parse_decls(o)?,
                                None => Vec::new(),
                            };
                            let freeform = match v.get("freeformType") {
                                Some(t) => Some(Box::new(parse_type(t, parse_decls)?)),
                                None => None,
                            };
                            (opts, freeform)
                        }
                        Kind::Null => (Vec::new(), None),
                        _ => return Err(Diagnostic::parse(v.span, "`submodule` takes a mapping `{options: {...}}`")),
                    };
                    TypeExpr::Submodule(opts, freeform)
                }
                other => return Err(Diagnostic::parse(k.span, format!("unknown type constructor `{other}` in mapping form"))),
            })
        }
        _ => Err(Diagnostic::parse(node.span, format!("a type is a string like `listOf str` or a one-key mapping like `{{attrsOf: str}}`, found {}", node.shape()))),
    }
}

fn one_of(ts: Vec<TypeExpr>) -> TypeExpr {
    let mut it = ts.into_iter();
    let first = it.next().expect("oneOf takes at least one type");
    it.fold(first, |acc, t| TypeExpr::Either(Box::new(acc), Box::new(t)))
}

/// A `strMatching` pattern must be one Nix's `builtins.match` accepts (POSIX extended).
fn str_matching(re: &str, span: Span) -> Result<TypeExpr, Diagnostic> {
    let translated = crate::ere::translate(re).map_err(|e| {
        Diagnostic::parse(
            span,
            format!("bad regular expression in strMatching {re:?}: {e}"),
        )
    })?;
    regex::bytes::RegexBuilder::new(&translated)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            Diagnostic::parse(
                span,
                format!("bad regular expression in strMatching {re:?}: {e}"),
            )
        })?;
    Ok(TypeExpr::StrMatching(re.to_string()))
}

/// Parses the string form.
pub(crate) fn parse_type_str(s: &str, span: Span) -> Result<TypeExpr, Diagnostic> {
    let toks = lex(s).map_err(|e| Diagnostic::parse(span, format!("bad type `{s}`: {e}")))?;
    let mut p = TypeParser {
        toks,
        pos: 0,
        src: s,
        span,
        depth: 0,
    };
    let t = p.app()?;
    if p.pos != p.toks.len() {
        return Err(p.err("unexpected text after the type"));
    }
    Ok(t)
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Int(i64),
    LParen,
    RParen,
    LBrack,
    RBrack,
    Comma,
}

/// Why a type expression does not lex.
#[derive(Debug, thiserror::Error)]
enum LexError {
    /// A string without its closing quote.
    #[error("unterminated string")]
    Unterminated,
    /// An integer that does not fit.
    #[error("number `{0}` out of range")]
    OutOfRange(String),
}

fn lex(s: &str) -> Result<Vec<Tok>, LexError> {
    let mut out = Vec::new();
    let mut cs = s.chars().peekable();
    while let Some(&c) = cs.peek() {
        match c {
            ' ' | '\t' | '\n' => {
                cs.next();
            }
            '(' => {
                cs.next();
                out.push(Tok::LParen)
            }
            ')' => {
                cs.next();
                out.push(Tok::RParen)
            }
            '[' => {
                cs.next();
                out.push(Tok::LBrack)
            }
            ']' => {
                cs.next();
                out.push(Tok::RBrack)
            }
            ',' => {
                cs.next();
                out.push(Tok::Comma)
            }
            '"' => {
                cs.next();
                let mut v = String::new();
                loop {
                    match cs.next() {
                        None => return Err(LexError::Unterminated),
                        Some('"') => break,
                        Some('\\') => match cs.next() {
                            Some('n') => v.push('\n'),
                            Some('t') => v.push('\t'),
                            Some(e) => v.push(e),
                            None => return Err(LexError::Unterminated),
                        },
                        Some(o) => v.push(o),
                    }
                }
                out.push(Tok::Str(v));
            }
            _ => {
                let mut w = String::new();
                while let Some(&c) = cs.peek() {
                    if matches!(c, ' ' | '\t' | '\n' | '(' | ')' | '[' | ']' | ',' | '"') {
                        break;
                    }
                    w.push(c);
                    cs.next();
                }
                let is_num = w
                    .strip_prefix('-')
                    .unwrap_or(&w)
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                    && !w.trim_start_matches('-').is_empty();
                if is_num {
                    out.push(Tok::Int(
                        w.parse().map_err(|_| LexError::OutOfRange(w.clone()))?,
                    ));
                } else {
                    out.push(Tok::Word(w));
                }
            }
        }
    }
    Ok(out)
}

/// How deep types may nest in a type written as a string. Real types nest a few levels;
/// the bound keeps the recursive parser's stack small whatever the input.
const MAX_TYPE_DEPTH: usize = 32;

struct TypeParser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    src: &'a str,
    span: Span,
    /// Types being parsed at this point, each inside the one before.
    depth: usize,
}

impl TypeParser<'_> {
    fn err(&self, what: &str) -> Diagnostic {
        // A hostile type can be megabytes long; the message quotes its start.
        let shown = match self.src.char_indices().nth(80) {
            Some((i, _)) => format!("{}…", &self.src[..i]),
            None => self.src.to_string(),
        };
        Diagnostic::parse(self.span, format!("bad type `{shown}`: {what}"))
    }

    /// A parenthesised type, after its `(`.
    fn parenthesised(&mut self) -> Result<TypeExpr, Diagnostic> {
        let t = self.app()?;
        self.expect(Tok::RParen)?;
        Ok(t)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    /// A type constructor applied to its arguments: `listOf T`, `ints.between 1 10`.
    fn app(&mut self) -> Result<TypeExpr, Diagnostic> {
        if self.depth >= MAX_TYPE_DEPTH {
            return Err(self.err(&format!(
                "types nest more than {MAX_TYPE_DEPTH} levels deep"
            )));
        }
        self.depth += 1;
        let t = self.app_here();
        self.depth -= 1;
        t
    }

    fn app_here(&mut self) -> Result<TypeExpr, Diagnostic> {
        match self.next() {
            Some(Tok::LParen) => self.parenthesised(),
            Some(Tok::Word(w)) => self.constructor(&w),
            Some(t) => Err(self.err(&format!("expected a type name, found {t:?}"))),
            None => Err(self.err("expected a type")),
        }
    }

    /// An argument position: a bare name or a parenthesised type.
    fn arg(&mut self) -> Result<TypeExpr, Diagnostic> {
        match self.next() {
            Some(Tok::LParen) => self.parenthesised(),
            Some(Tok::Word(w)) => {
                let t = self.constructor_noargs(&w)?;
                t.ok_or_else(|| self.err(&format!("`{w}` takes arguments: put it in parentheses")))
            }
            _ => Err(self.err("expected a type argument")),
        }
    }

    fn expect(&mut self, t: Tok) -> Result<(), Diagnostic> {
        match self.next() {
            Some(x) if x == t => Ok(()),
            other => Err(self.err(&format!("expected {t:?}, found {other:?}"))),
        }
    }

    fn int(&mut self) -> Result<i64, Diagnostic> {
        match self.next() {
            Some(Tok::Int(i)) => Ok(i),
            _ => Err(self.err("expected an integer")),
        }
    }

    fn string(&mut self) -> Result<String, Diagnostic> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(s),
            _ => Err(self.err("expected a quoted string")),
        }
    }

    fn constructor_noargs(&mut self, w: &str) -> Result<Option<TypeExpr>, Diagnostic> {
        use TypeExpr as T;
        Ok(Some(match w {
            "str" | "string" => T::Str,
            "int" => T::Int,
            "bool" => T::Bool,
            "float" => T::Float,
            "path" => T::Path,
            "lines" => T::Separated("\n".into()),
            "commas" => T::Separated(",".into()),
            "envVar" => T::Separated(":".into()),
            "anything" => T::Anything,
            "attrs" => T::Attrs,
            "raw" => T::Raw,
            "unspecified" => T::Unspecified,
            "boolByOr" => T::BoolByOr,
            "nonEmptyStr" => T::NonEmptyStr,
            "singleLineStr" => T::SingleLineStr,
            "port" | "ints.u16" => T::IntRange(IntRange::U(16)),
            "ints.unsigned" => T::IntRange(IntRange::Unsigned),
            "ints.positive" => T::IntRange(IntRange::Positive),
            "ints.u8" => T::IntRange(IntRange::U(8)),
            "ints.u32" => T::IntRange(IntRange::U(32)),
            "ints.s8" => T::IntRange(IntRange::S(8)),
            "ints.s16" => T::IntRange(IntRange::S(16)),
            "ints.s32" => T::IntRange(IntRange::S(32)),
            "listOf" | "nonEmptyListOf" | "attrsOf" | "lazyAttrsOf" | "nullOr" | "uniq"
            | "unique" | "either" | "oneOf" | "enum" | "strMatching" | "separatedString"
            | "ints.between" => return Ok(None),
            "submodule" => {
                return Err(
                    self.err("a submodule needs the mapping form `{submodule: {options: {...}}}`")
                )
            }
            other => return Err(self.err(&format!("unknown type `{other}`"))),
        }))
    }

    fn constructor(&mut self, w: &str) -> Result<TypeExpr, Diagnostic> {
        use TypeExpr as T;
        if let Some(t) = self.constructor_noargs(w)? {
            return Ok(t);
        }
        Ok(match w {
            "listOf" => T::ListOf(Box::new(self.arg()?)),
            "nonEmptyListOf" => T::NonEmptyListOf(Box::new(self.arg()?)),
            "attrsOf" => T::AttrsOf(Box::new(self.arg()?)),
            "lazyAttrsOf" => T::LazyAttrsOf(Box::new(self.arg()?)),
            "nullOr" => T::NullOr(Box::new(self.arg()?)),
            "uniq" | "unique" => T::Unique(Box::new(self.arg()?)),
            "either" => {
                let a = self.arg()?;
                let b = self.arg()?;
                T::Either(Box::new(a), Box::new(b))
            }
            "oneOf" => {
                self.expect(Tok::LBrack)?;
                let mut ts = Vec::new();
                loop {
                    if self.peek() == Some(&Tok::RBrack) {
                        self.next();
                        break;
                    }
                    ts.push(self.app()?);
                    match self.next() {
                        Some(Tok::Comma) => {}
                        Some(Tok::RBrack) => break,
                        _ => return Err(self.err("expected `,` or `]` in oneOf")),
                    }
                }
                if ts.is_empty() {
                    return Err(self.err("oneOf needs at least one type"));
                }
                one_of(ts)
            }
            "enum" => {
                self.expect(Tok::LBrack)?;
                let mut vs = Vec::new();
                loop {
                    match self.next() {
                        Some(Tok::RBrack) => break,
                        Some(Tok::Word(w)) if w == "true" || w == "false" => {
                            vs.push(EnumValue::Bool(w == "true"))
                        }
                        Some(Tok::Word(w)) | Some(Tok::Str(w)) => vs.push(EnumValue::Str(w)),
                        Some(Tok::Int(i)) => vs.push(EnumValue::Int(i)),
                        _ => return Err(self.err("expected an enum member")),
                    }
                    match self.next() {
                        Some(Tok::Comma) => {}
                        Some(Tok::RBrack) => break,
                        _ => return Err(self.err("expected `,` or `]` in enum")),
                    }
                }
                T::Enum(vs)
            }
            "strMatching" => {
                let re = self.string()?;
                str_matching(&re, self.span)?
            }
            "separatedString" => T::Separated(self.string()?),
            "ints.between" => {
                let lo = self.int()?;
                let hi = self.int()?;
                if lo > hi {
                    return Err(self.err("ints.between needs lowest <= highest"));
                }
                T::IntRange(IntRange::Between(lo, hi))
            }
            _ => unreachable!("constructor_noargs lists every name"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TypeExpr as T;

    fn p(s: &str) -> TypeExpr {
        parse_type_str(s, Span::default()).unwrap()
    }

    #[test]
    fn string_forms() {
        assert_eq!(
            p("listOf (attrsOf str)"),
            T::ListOf(Box::new(T::AttrsOf(Box::new(T::Str))))
        );
        assert_eq!(
            p("ints.between 1 10"),
            T::IntRange(IntRange::Between(1, 10))
        );
        assert_eq!(
            p("enum [a, b, 3]"),
            T::Enum(vec![
                EnumValue::Str("a".into()),
                EnumValue::Str("b".into()),
                EnumValue::Int(3)
            ])
        );
        assert_eq!(
            p("either int str"),
            T::Either(Box::new(T::Int), Box::new(T::Str))
        );
        assert_eq!(
            p("oneOf [int, str, bool]"),
            T::Either(
                Box::new(T::Either(Box::new(T::Int), Box::new(T::Str))),
                Box::new(T::Bool)
            )
        );
        assert_eq!(p(r#"separatedString ":""#), T::Separated(":".into()));
        assert_eq!(
            p(r#"strMatching "[a-z]+""#),
            T::StrMatching("[a-z]+".into())
        );
        assert_eq!(
            p("nullOr (listOf port)"),
            T::NullOr(Box::new(T::ListOf(Box::new(T::IntRange(IntRange::U(16))))))
        );
    }

    #[test]
    fn bad_types_are_errors() {
        for bad in [
            "listOf",
            "listOf listOf str",
            "nope",
            "listOf (str",
            "ints.between 10 1",
            "enum [a",
            "strMatching \"(\"",
            "str str",
        ] {
            assert!(parse_type_str(bad, Span::default()).is_err(), "{bad}");
        }
    }

    /// Nesting is bounded, not by the stack: 10,000 levels overflowed it before.
    #[test]
    fn deep_types_are_errors_not_overflows() {
        let nested =
            |n: usize, open: &str, close: &str| format!("{}str{}", open.repeat(n), close.repeat(n));
        let ok = nested(MAX_TYPE_DEPTH - 1, "listOf (", ")");
        assert!(parse_type_str(&ok, Span::default()).is_ok());
        for deep in [
            nested(10_000, "listOf (", ")"),
            nested(10_000, "(", ")"),
            nested(10_000, "oneOf [", "]"),
        ] {
            let e = parse_type_str(&deep, Span::default()).unwrap_err();
            assert!(
                e.message.contains("nest more than 32 levels"),
                "{}",
                e.message
            );
            assert!(
                e.message.len() < 300,
                "the message quotes the type's start only"
            );
        }
    }
}
