# isoproof tasks. `just` lists them.

default:
    @just --list

# The whole test suite: unit, conformance (shared corpus), snapshots, bad input, property laws.
test:
    cargo test --release

# Resolve a scenario (default: the installer combined with a host).
resolve scenario="scenarios/installer-on-host.yaml" format="yaml":
    cargo run --release --quiet -- resolve --format {{format}} {{scenario}}

# Explain one option of a scenario.
explain scenario option:
    cargo run --release --quiet -- explain {{scenario}} '{{option}}'

# Load, merge and render times and peak memory on the large generated scenario.
bench:
    python3 ../shared/bench/genbig.py target/big.yaml 10000 60 8
    cargo bench --bench resolve -- target/big.yaml
    cargo build --release --quiet
    /usr/bin/time -f "CLI isoproof resolve: %e s wall, %M KB peak" target/release/isoproof resolve target/big.yaml > /dev/null

# The conformance corpus through the release binary, with the corpus's own checker.
conformance:
    cargo build --release --quiet
    python3 ../shared/conformance/check.py target/release/isoproof ../shared/conformance/merge -v

# What CI runs: formatting, lints, the suite.
ci:
    cargo fmt --all -- --check
    cargo clippy --all-targets --release -- -D warnings
    just test
