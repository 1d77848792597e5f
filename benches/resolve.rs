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
                "usage: resolve-bench SCENARIO.yaml (generate one with shared/bench/genbig.py)"
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
}
