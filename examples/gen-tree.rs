//! Writes the image benchmark's source tree: at scale 1.0 about 2 GiB in 20 directories of
//! 50 files of 1 MiB, one file of 1 GiB and 5,000 small text files; a smaller scale shrinks
//! every count and size in proportion (0.05 for a quick run). Contents are pseudo-random, so
//! nothing compresses, and the same directory and scale always give the same bytes.
//!
//! usage: cargo run --release --example gen-tree -- DIR [SCALE]

use std::io::Write;
use std::path::Path;

const MIB: usize = 1 << 20;

/// splitmix64, filling buffers.
struct Rng(u64);

impl Rng {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

fn write(path: &Path, mib: usize, r: &mut Rng) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut buf = vec![0u8; MIB];
    for _ in 0..mib {
        r.fill(&mut buf);
        f.write_all(&buf)?;
    }
    f.flush()
}

fn scaled(n: f64, scale: f64) -> usize {
    ((n * scale) as usize).max(1)
}

fn run(root: &Path, scale: f64) -> std::io::Result<()> {
    let mut r = Rng(20_261_126);
    for d in 1..=20 {
        let dir = root.join(format!("d{d}"));
        std::fs::create_dir_all(&dir)?;
        for f in 1..=scaled(50.0, scale) {
            write(&dir.join(format!("f{f}.bin")), 1, &mut r)?;
        }
    }
    write(&root.join("large.bin"), scaled(1024.0, scale), &mut r)?;
    for i in 1..=scaled(5000.0, scale) {
        std::fs::write(root.join(format!("d1/s{i}.txt")), format!("small {i}\n"))?;
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let scale = match args.get(1).map(|s| s.parse::<f64>()) {
        None => Ok(1.0),
        Some(Ok(s)) if s > 0.0 && s <= 4.0 => Ok(s),
        Some(_) => Err(()),
    };
    let (Some(dir), Ok(scale), true) = (args.first(), scale, args.len() <= 2) else {
        eprintln!("usage: gen-tree DIR [SCALE]   (SCALE in (0, 4], default 1.0)");
        std::process::exit(2);
    };
    if let Err(e) = run(Path::new(dir), scale) {
        eprintln!("{dir}: {e}");
        std::process::exit(1);
    }
}
