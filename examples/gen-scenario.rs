//! Writes a large, error-free scenario for timing the resolver: `NOPTS` options declared in
//! one module and defined by `NMODS` more, each defining about a third of them. Scalars get a
//! distinct `mkOverride` priority per module so no two definitions conflict; lists get
//! `mkBefore`/`mkAfter` now and then; submodule options get partial definitions.
//!
//! usage: cargo run --release --example gen-scenario -- [--nix] OUT NOPTS NMODS SEED
//! The same arguments always give the same file. With `--nix`, OUT is a folder that gets the
//! same modules as `.nix` files (`options.nix`, `m0.nix`, ...) and a `default.nix` that
//! imports them, for timing `.nix` input against `nix-instantiate` with nixpkgs' lib.

use std::fmt::Write as _;

/// splitmix64: a small, well-mixed, reproducible generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// 0..n
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// A probability in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone, Copy)]
enum Ty {
    Str,
    Int,
    Bool,
    ListOfStr,
    AttrsOfInt,
    Sub,
}

const TYPES: [Ty; 6] = [
    Ty::Str,
    Ty::Int,
    Ty::Bool,
    Ty::ListOfStr,
    Ty::AttrsOfInt,
    Ty::Sub,
];

fn declaration(t: Ty) -> &'static str {
    match t {
        Ty::Str => "{type: str, default: \"d\"}",
        Ty::Int => "{type: int, default: 0}",
        Ty::Bool => "{type: bool, default: false}",
        Ty::ListOfStr => "{type: listOf str, default: []}",
        Ty::AttrsOfInt => "{type: attrsOf int, default: {}}",
        Ty::Sub => "{type: {submodule: {options: {enable: {type: bool, default: false}, name: {type: str, default: x}, items: {type: listOf int, default: []}}}}, default: {}}",
    }
}

fn definition(t: Ty, m: u64, r: &mut Rng) -> String {
    let prio = 100 + m;
    match t {
        Ty::Str => format!("!mkOverride [{prio}, \"v{}\"]", r.below(10)),
        Ty::Int => format!("!mkOverride [{prio}, {}]", r.below(1001)),
        Ty::Bool => format!("!mkOverride [{prio}, {}]", r.below(2) == 1),
        Ty::ListOfStr => {
            let items: Vec<String> = (0..1 + r.below(3))
                .map(|k| format!("\"e{m}_{k}\""))
                .collect();
            let list = format!("[{}]", items.join(", "));
            match r.unit() {
                x if x < 0.2 => format!("!mkBefore {list}"),
                x if x < 0.4 => format!("!mkAfter {list}"),
                _ => list,
            }
        }
        Ty::AttrsOfInt => {
            let items: Vec<String> = (0..1 + r.below(3))
                .map(|k| format!("k{m}_{k}: {}", r.below(10)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Ty::Sub => format!(
            "{{enable: !mkOverride [{prio}, {}], items: [{m}, {}]}}",
            r.below(2) == 1,
            r.below(100)
        ),
    }
}

/// A declaration as a `.nix` `mkOption`.
fn nix_declaration(t: Ty) -> &'static str {
    match t {
        Ty::Str => "lib.mkOption { type = lib.types.str; default = \"d\"; }",
        Ty::Int => "lib.mkOption { type = lib.types.int; default = 0; }",
        Ty::Bool => "lib.mkOption { type = lib.types.bool; default = false; }",
        Ty::ListOfStr => "lib.mkOption { type = lib.types.listOf lib.types.str; default = [ ]; }",
        Ty::AttrsOfInt => "lib.mkOption { type = lib.types.attrsOf lib.types.int; default = { }; }",
        Ty::Sub => "lib.mkOption { type = lib.types.submodule { options = { enable = lib.mkOption { type = lib.types.bool; default = false; }; name = lib.mkOption { type = lib.types.str; default = \"x\"; }; items = lib.mkOption { type = lib.types.listOf lib.types.int; default = [ ]; }; }; }; default = { }; }",
    }
}

/// A definition as a `.nix` expression (the same draws as [`definition`]).
fn nix_definition(t: Ty, m: u64, r: &mut Rng) -> String {
    let prio = 100 + m;
    match t {
        Ty::Str => format!("lib.mkOverride {prio} \"v{}\"", r.below(10)),
        Ty::Int => format!("lib.mkOverride {prio} {}", r.below(1001)),
        Ty::Bool => format!("lib.mkOverride {prio} {}", r.below(2) == 1),
        Ty::ListOfStr => {
            let items: Vec<String> = (0..1 + r.below(3))
                .map(|k| format!("\"e{m}_{k}\""))
                .collect();
            let list = format!("[ {} ]", items.join(" "));
            match r.unit() {
                x if x < 0.2 => format!("lib.mkBefore {list}"),
                x if x < 0.4 => format!("lib.mkAfter {list}"),
                _ => list,
            }
        }
        Ty::AttrsOfInt => {
            let items: Vec<String> = (0..1 + r.below(3))
                .map(|k| format!("k{m}_{k} = {};", r.below(10)))
                .collect();
            format!("{{ {} }}", items.join(" "))
        }
        Ty::Sub => format!(
            "{{ enable = lib.mkOverride {prio} {}; items = [ {m} {} ]; }}",
            r.below(2) == 1,
            r.below(100)
        ),
    }
}

/// The same scenario as `.nix` modules in the folder `out`.
fn write_nix(out: &str, opts: &[(String, Ty)], nmods: u64, r: &mut Rng) -> std::io::Result<()> {
    let dir = std::path::Path::new(out);
    std::fs::create_dir_all(dir)?;
    let mut o = String::from("{ lib, ... }: {\n  options = {\n");
    for (name, t) in opts {
        let _ = writeln!(o, "    {name} = {};", nix_declaration(*t));
    }
    o.push_str("  };\n}\n");
    std::fs::write(dir.join("options.nix"), o)?;
    let mut top = String::from("{\n  imports = [\n    ./options.nix\n");
    for m in 0..nmods {
        let mut s = String::from("{ lib, ... }: {\n  config = {\n");
        for (name, t) in opts {
            if r.unit() < 0.33 {
                let _ = writeln!(s, "    {name} = {};", nix_definition(*t, m, r));
            }
        }
        s.push_str("  };\n}\n");
        std::fs::write(dir.join(format!("m{m}.nix")), s)?;
        let _ = writeln!(top, "    ./m{m}.nix");
    }
    top.push_str("  ];\n}\n");
    std::fs::write(dir.join("default.nix"), top)
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let nix = args.first().is_some_and(|a| a == "--nix");
    if nix {
        args.remove(0);
    }
    let parsed = (|| -> Option<(String, u64, u64, u64)> {
        Some((
            args.first()?.clone(),
            args.get(1)?.parse().ok()?,
            args.get(2)?.parse().ok()?,
            args.get(3)?.parse().ok()?,
        ))
    })();
    let Some((out, nopts, nmods, seed)) = parsed.filter(|_| args.len() == 4) else {
        eprintln!("usage: gen-scenario [--nix] OUT NOPTS NMODS SEED");
        std::process::exit(2);
    };
    let mut r = Rng(seed);
    let opts: Vec<(String, Ty)> = (0..nopts)
        .map(|i| {
            (
                format!("group{}.opt{i}", i % 50),
                TYPES[r.below(6) as usize],
            )
        })
        .collect();
    if nix {
        if let Err(e) = write_nix(&out, &opts, nmods, &mut r) {
            eprintln!("{out}: {e}");
            std::process::exit(1);
        }
        return;
    }
    let mut s = String::from("modules:\n  - name: options.yaml\n    options:\n");
    for (name, t) in &opts {
        let _ = writeln!(s, "      \"{name}\": {}", declaration(*t));
    }
    for m in 0..nmods {
        let _ = writeln!(s, "  - name: m{m}.yaml\n    config:");
        for (name, t) in &opts {
            if r.unit() < 0.33 {
                let _ = writeln!(s, "      \"{name}\": {}", definition(*t, m, &mut r));
            }
        }
    }
    if let Err(e) = std::fs::write(&out, s) {
        eprintln!("{out}: {e}");
        std::process::exit(1);
    }
}
