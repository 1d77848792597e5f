//! `just bench`: times loading, resolving and rendering a large generated scenario, and prints
//! peak memory. Run with the scenario path (see the Justfile's `bench` recipe) and optionally
//! `--runs N` (default 5; more runs steady the best-of figures when comparing changes).

use std::time::Instant;
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let path = std::env::args()
        .skip(1)
        .find(|a| a.ends_with(".yaml"))
        .unwrap_or_else(|| {
            eprintln!(
                "usage: resolve-bench SCENARIO.yaml (generate one with `cargo run --release --example gen-scenario`)"
            );
            std::process::exit(2);
        });
    let args: Vec<String> = std::env::args().collect();
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(5usize)
        .max(1);
    let mut best = (f64::MAX, f64::MAX, f64::MAX);
    let mut one_run = f64::NAN;
    for run in 0..runs {
        let t0 = Instant::now();
        let s =
            isoproof::scenario::load(path.as_ref()).unwrap_or_else(|e| panic!("{:?}", e.errors));
        let t1 = Instant::now();
        let r = isoproof::resolve::resolve(&s);
        let t2 = Instant::now();
        let out =
            isoproof::output::json(r.config.as_ref().expect("the benchmark scenario resolves"));
        let t3 = Instant::now();
        assert!(out.len() > 2);
        best.0 = best.0.min((t1 - t0).as_secs_f64());
        best.1 = best.1.min((t2 - t1).as_secs_f64());
        best.2 = best.2.min((t3 - t2).as_secs_f64());
        drop(out);
        drop(r);
        drop(s);
        if run == 0 {
            // What one `isoproof resolve` needs; later runs add what the allocator keeps cached.
            one_run = peak_rss_mb();
        }
    }
    println!("scenario: {path}");
    println!("load   (read + YAML + modules): {:>7.3} s", best.0);
    println!("merge  (resolve, all options):  {:>7.3} s", best.1);
    println!("render (JSON):                  {:>7.3} s", best.2);
    println!(
        "total:                          {:>7.3} s (best of {runs})",
        best.0 + best.1 + best.2
    );
    println!("peak memory (VmHWM), one run:   {:>7.1} MB", one_run);
    println!(
        "peak memory (VmHWM), {runs} runs: {:>9.1} MB",
        peak_rss_mb()
    );

    // The same modules as one file each, imported by a top-level module: loading imports
    // (read, parse and normalize a wave of files at once) instead of one large file.
    let Some((top, files)) = split(path.as_ref()) else {
        return;
    };
    let mut best_load = f64::MAX;
    let whole = isoproof::scenario::load(path.as_ref()).expect("loaded above");
    let want = isoproof::output::json(
        isoproof::resolve::resolve(&whole)
            .config
            .as_ref()
            .expect("resolved above"),
    );
    drop(whole);
    for _ in 0..runs {
        let t0 = Instant::now();
        let s = isoproof::scenario::load(&top).unwrap_or_else(|e| panic!("{:?}", e.errors));
        best_load = best_load.min(t0.elapsed().as_secs_f64());
        let r = isoproof::resolve::resolve(&s);
        let got = isoproof::output::json(r.config.as_ref().expect("the split scenario resolves"));
        assert!(got == want, "the split scenario resolves differently");
    }
    println!(
        "load, as {files} imported files:   {:>7.3} s (best of {runs}; same config)",
        best_load
    );
}

/// Writes each module of a generated scenario (`genbig.py`: items `  - name: mN.yaml` with
/// their fields indented by four spaces) to its own file, and a scenario that imports them all.
fn split(path: &std::path::Path) -> Option<(std::path::PathBuf, usize)> {
    let text = std::fs::read_to_string(path).ok()?;
    let dir = path.with_extension("split");
    std::fs::create_dir_all(&dir).ok()?;
    let mut names = Vec::new();
    let mut current: Option<(String, String)> = None;
    let mut flush = |m: Option<(String, String)>| -> Option<()> {
        if let Some((name, body)) = m {
            std::fs::write(dir.join(&name), body).ok()?;
            names.push(name);
        }
        Some(())
    };
    for line in text.lines().skip_while(|l| *l != "modules:").skip(1) {
        if let Some(name) = line.strip_prefix("  - name: ") {
            flush(current.take())?;
            current = Some((name.to_string(), format!("name: {name}\n")));
        } else {
            let (_, body) = current.as_mut()?;
            body.push_str(line.strip_prefix("    ")?);
            body.push('\n');
        }
    }
    flush(current.take())?;
    let top = dir.join("top.yaml");
    let list = names.join(", ");
    std::fs::write(&top, format!("modules:\n  - imports: [{list}]\n")).ok()?;
    Some((top, names.len()))
}
