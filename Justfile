# isoproof tasks. `just` lists them.

default:
    @just --list

# The whole test suite: unit, conformance, snapshots, bad input, property laws, image readers,
# golden, boots (both crates of the workspace). The live tests need the payload root first.
test: payload
    cargo test --release

# Build every scenario and boot it in every mode it turns on (SeaBIOS and OVMF; CD-ROM, USB
# stick, disk); ends with "N passed, M failed". JUnit goes to target/boot-matrix.xml.
test-boot *args:
    cargo run --release --quiet -- boot-matrix --timeout 180 --junit target/boot-matrix.xml {{args}}

# Per-mode boot times (one boot at a time) and the whole matrix's wall time (in parallel).
bench-boot:
    cargo build --release --quiet
    target/release/isoproof boot-matrix --no-retry --jobs 1
    /usr/bin/time -f "boot-matrix, all scenarios, parallel: %e s wall, %M KB peak" target/release/isoproof boot-matrix --no-retry > /dev/null

# Resolve a scenario (default: the installer combined with a host).
resolve scenario="scenarios/installer-on-host.yaml" format="yaml":
    cargo run --release --quiet -- resolve --format {{format}} {{scenario}}

# Explain one option of a scenario.
explain scenario option:
    cargo run --release --quiet -- explain {{scenario}} '{{option}}'

# Load, merge and render times and peak memory on the large generated scenario.
bench:
    cargo run --release --quiet --example gen-scenario -- target/big.yaml 10000 60 8
    cargo bench --bench resolve -- target/big.yaml
    cargo build --release --quiet
    /usr/bin/time -f "CLI isoproof resolve: %e s wall, %M KB peak" target/release/isoproof resolve target/big.yaml > /dev/null

# The same large scenario as `.nix` modules: isoproof's resolve, and, given a nixpkgs `lib/`
# folder (`just bench-nix path/to/nixpkgs/lib`), nix-instantiate evaluating it with that lib;
# both configs are compared.
bench-nix lib="":
    cargo build --release --quiet
    cargo run --release --quiet --example gen-scenario -- --nix target/big-nix 10000 60 8
    /usr/bin/time -f "isoproof resolve (.nix):              %e s wall, %M KB peak" target/release/isoproof resolve --format json target/big-nix/default.nix > target/big-nix.isoproof.json
    # One file of 20,000 definitions that each compute with `config` (the fixpoint): each is
    # evaluated when the resolver needs it, the file once per resolution.
    python3 -c 'print("{ config, lib, ... }: {\n  options.flag = lib.mkOption { type = lib.types.bool; default = true; };"); [print("  options.o%d = lib.mkOption { type = lib.types.int; };\n  config.o%d = if config.flag then %d else 0;" % (i, i, i)) for i in range(20000)]; print("}")' > target/computed.nix
    /usr/bin/time -f "isoproof resolve, 20,000 computed:    %e s wall, %M KB peak" target/release/isoproof resolve --format json target/computed.nix > /dev/null
    if [ -n "{{lib}}" ]; then \
        /usr/bin/time -f "nix-instantiate with nixpkgs lib:      %e s wall, %M KB peak" nix-instantiate --eval --strict --json --arg lib 'import {{lib}}' --arg case "$PWD/target/big-nix/default.nix" -E '{ lib, case }: let strip = v: if builtins.isAttrs v then builtins.mapAttrs (_: strip) (builtins.removeAttrs v [ "_module" ]) else if builtins.isList v then map strip v else v; in strip (lib.evalModules { modules = [ case ]; }).config' > target/big-nix.nix.json; \
        python3 -c 'import json,sys; a=json.load(open("target/big-nix.isoproof.json")); b=json.load(open("target/big-nix.nix.json")); print("configs: same" if a == b else "configs: DIFFERENT"); sys.exit(a != b)'; \
    fi

# mkiso against xorriso and cat on the same 2 GiB tree (examples/gen-tree.rs), with peak memory.
bench-iso scale="1.0":
    cargo build --release --quiet
    test -d target/bench-tree-{{scale}} || cargo run --release --quiet --example gen-tree -- target/bench-tree-{{scale}} {{scale}}
    sync
    for i in 1 2 3; do \
        rm -f target/bench.iso target/bench-xorriso.iso target/bench-cat.bin; \
        /usr/bin/time -o target/bench-time.txt -f "isoproof mkiso                         %e s wall, %M KB peak" target/release/isoproof mkiso -o target/bench.iso target/bench-tree-{{scale}} > /dev/null 2>&1; cat target/bench-time.txt; \
        /usr/bin/time -o target/bench-time.txt -f "xorriso -as mkisofs -iso-level 3 -R -J  %e s wall, %M KB peak" xorriso -as mkisofs -quiet -iso-level 3 -R -J -o target/bench-xorriso.iso target/bench-tree-{{scale}} > /dev/null 2>&1; cat target/bench-time.txt; \
        /usr/bin/time -o target/bench-time.txt -f "cat of the same files                  %e s wall, %M KB peak" sh -c 'find target/bench-tree-{{scale}} -type f -print0 | sort -z | xargs -0 cat > target/bench-cat.bin'; cat target/bench-time.txt; \
    done
    rm -f target/bench.iso target/bench-xorriso.iso target/bench-cat.bin target/bench-time.txt

# Build a scenario's image (default: the installer combined with a host).
build scenario="scenarios/installer-on-host.yaml":
    cargo run --release --quiet -- build {{scenario}}

# Rebuild every scenario and compare with golden/ (never writes manifests).
golden-check:
    cargo run --release --quiet -- golden check

# Rewrite the manifests of the given scenarios (all by default) after reviewing a change.
golden-bless *scenarios:
    cargo run --release --quiet -- golden bless {{scenarios}}

# How long `golden check` takes for every shipped scenario (best of 3).
bench-golden:
    cargo build --release --quiet
    for i in 1 2 3; do /usr/bin/time -f "golden check, all scenarios: %e s wall, %M KB peak" target/release/isoproof golden check > /dev/null; done

# Golden records of an image built by another tool: `golden bless --image` and `check --image`
# of xorriso's image of the 2 GiB tree (examples/gen-tree.rs) and of the live image (its
# initrd and squashfs listed), against sha256sum of the same image, with peak memory.
bench-record scale="1.0":
    cargo build --release --quiet
    test -d target/bench-tree-{{scale}} || cargo run --release --quiet --example gen-tree -- target/bench-tree-{{scale}} {{scale}}
    test -f target/bench-xorriso.iso || xorriso -as mkisofs -quiet -iso-level 3 -R -J -o target/bench-xorriso.iso target/bench-tree-{{scale}} > /dev/null 2>&1
    target/release/isoproof build -o target/live-minimal.iso scenarios/live-minimal.yaml > /dev/null
    rm -rf target/bench-golden
    for iso in target/bench-xorriso.iso target/live-minimal.iso; do         for i in 1 2 3; do             /usr/bin/time -f "golden bless --image $iso: %e s wall, %M KB peak" target/release/isoproof golden bless --golden target/bench-golden --image $iso --name bench > /dev/null;             /usr/bin/time -f "golden check --image $iso: %e s wall, %M KB peak" target/release/isoproof golden check --golden target/bench-golden --image $iso --name bench > /dev/null;             /usr/bin/time -f "sha256sum $iso:            %e s wall, %M KB peak" sha256sum $iso > /dev/null;         done;     done
    rm -rf target/bench-golden

# The fuzz targets (ISO, GPT and FAT readers, scenario loader) on more cases than the suite's
# 256 each; a panic is shrunk and kept in tests/fuzz.proptest-regressions.
fuzz cases="5000":
    FUZZ_CASES={{cases}} cargo test --release --test fuzz

# Time and peak memory of every hostile input (tests/hostile.rs), one at a time.
bench-hostile:
    ISOPROOF_FIGURES=1 cargo test --release --test hostile -- --test-threads 1 --nocapture

# The live payload root (payload/root) exactly as payload/lock.json pins it: apt-get download
# of each pinned package, its locked files unpacked without root, depmod, every file checked
# against its sha256 (needs apt's lists, the network and kmod; a root that matches is kept).
payload:
    cargo run --release --quiet -- payload fetch

# Re-pin payload/lock.json to the versions Debian's archive has now, and fetch them.
payload-pin:
    cargo run --release --quiet -- payload pin

# Seconds from QEMU start to the guest's exit for live-minimal in every mode, beside the
# NixOS-style anchor image (xorriso, ISOLINUX, GRUB EFI) booting the same kernel.
bench-live: payload
    cargo build --release --quiet
    target/release/isoproof build -o target/live-minimal.iso scenarios/live-minimal.yaml > /dev/null
    /usr/bin/time -f "isoproof build live-minimal: %e s wall, %M KB peak" target/release/isoproof build -o target/live-minimal.iso scenarios/live-minimal.yaml > /dev/null
    /usr/bin/time -f "isoproof build netboot-minimal: %e s wall, %M KB peak" target/release/isoproof build -o target/netboot-minimal.netboot scenarios/netboot-minimal.yaml > /dev/null
    ANCHOR_BUILD_ONLY=1 bash benches/anchor-live-iso.sh payload/root target/anchor
    bash benches/live-boot.sh target/live-minimal.iso target/anchor/anchor.iso target/netboot-minimal.netboot 3

# The merge conformance corpus (tests/conformance/nixpkgs: results computed by real Nix with
# nixpkgs' lib.evalModules), one test per case, and the project's own cases.
conformance:
    cargo test --release --test conformance

# Recompute the corpus's expected results with real Nix (nix-instantiate) and a nixpkgs lib/
# directory; compares by default, `--write` rewrites them (tests/conformance/nixpkgs/README.md).
conformance-recompute lib *args:
    python3 tests/conformance/nixpkgs/recompute.py {{lib}} {{args}}

# Recompute the Nix language corpus's expected results with the installed nix-instantiate
# (`--write` stores them; without it, lists the cases whose stored result differs).
nix-lang-recompute *args:
    python3 tests/nix-lang/recompute.py {{args}}

# What CI runs: formatting, lints, the suite.
ci:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --release -- -D warnings
    just test
